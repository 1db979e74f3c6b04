"""maintenance_changes: the database counts every change to maintenance_window

One row, kept by triggers in the transaction that inserts, updates or deletes windows, whoever
writes them. A worker thread on SQLite keeps what it read of the windows, and the answer it worked
out from them, until this count moves (webapp/maintenance.py): before, any commit to any table made
every thread read them again, so under customers' and the account API's writes it hardly ever
kept them. Not backfilled: no row means no change yet.

Revision ID: 0010_maintenance_changes
Revises: 0009_operation_log_indexes
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010_maintenance_changes"
down_revision: Union[str, None] = "0009_operation_log_indexes"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_COUNT_A_CHANGE = ("INSERT INTO maintenance_changes (id, total) VALUES (1, 1)"
                   " ON CONFLICT (id) DO UPDATE SET total = maintenance_changes.total + 1")
_ACTIONS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "maintenance_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION maintenance_window_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
                   f" BEGIN {_COUNT_A_CHANGE}; RETURN NULL; END $$")
        op.execute("CREATE TRIGGER maintenance_window_changed AFTER INSERT OR UPDATE OR DELETE ON maintenance_window"
                   " FOR EACH STATEMENT EXECUTE FUNCTION maintenance_window_changed()")
    else:
        for action in _ACTIONS:
            op.execute(f"CREATE TRIGGER maintenance_window_{action} AFTER {action.upper()} ON maintenance_window"
                       f" BEGIN {_COUNT_A_CHANGE}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER maintenance_window_changed ON maintenance_window")
        op.execute("DROP FUNCTION maintenance_window_changed()")
    else:
        for action in _ACTIONS:
            op.execute(f"DROP TRIGGER maintenance_window_{action}")
    op.drop_table("maintenance_changes")
