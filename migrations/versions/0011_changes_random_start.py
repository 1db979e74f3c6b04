"""maintenance_changes: a new row starts at a random total, not at 1

The row counts the changes to maintenance_window (migration 0010), and a worker thread keeps what it
read of the windows until the count moves (webapp/maintenance.py). Were the row deleted by hand, the
next change would make it again at 1, and a thread that had kept total 1 before the deletion would
read the same total and keep windows that have changed. A random start in 1 … 2**30 makes meeting a
kept total again a chance of 1 in 2**30. A row that exists keeps its total.

Revision ID: 0011_changes_random_start
Revises: 0010_maintenance_changes
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0011_changes_random_start"
down_revision: Union[str, None] = "0010_maintenance_changes"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ACTIONS = ("insert", "update", "delete")
_FIRST_TOTAL = {"sqlite": "abs(random() % 1073741824) + 1",
                "postgresql": "floor(random() * 1073741824)::integer + 1"}


def _count_a_change(first_total: str) -> str:
    return (f"INSERT INTO maintenance_changes (id, total) VALUES (1, {first_total})"
            " ON CONFLICT (id) DO UPDATE SET total = maintenance_changes.total + 1")


def _make_triggers(first_total: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION maintenance_window_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
                   f" BEGIN {_count_a_change(first_total)}; RETURN NULL; END $$")
    else:
        for action in _ACTIONS:
            op.execute(f"DROP TRIGGER maintenance_window_{action}")
            op.execute(f"CREATE TRIGGER maintenance_window_{action} AFTER {action.upper()} ON maintenance_window"
                       f" BEGIN {_count_a_change(first_total)}; END")


def upgrade() -> None:
    _make_triggers(_FIRST_TOTAL[op.get_bind().dialect.name])


def downgrade() -> None:
    _make_triggers("1")
