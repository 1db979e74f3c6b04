"""operation_log_spool: how far each spool file of the account API's log rows has been drained

On SQLite an account API call appends its log row to a file beside the database and a drain moves
the file's lines into operation_log (webapp/logspool.py). A file's drained length moves in the
transaction that inserts its rows, so no line is inserted twice or lost between two drains.

Before a downgrade past this revision, stop the web workers and drain what they left (any reader of
the log drains first: `flask log show --tenant amami --limit 1`): code before it never reads the
files, and their rows would wait there.

Revision ID: 0012_operation_log_spool
Revises: 0011_changes_random_start
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012_operation_log_spool"
down_revision: Union[str, None] = "0011_changes_random_start"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "operation_log_spool",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("drained", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("operation_log_spool")
