"""operation_log: drop the three single-column indexes no query uses (at, tenant, flow_id)

Every query of the log leads with the union and then the filter's column and `at` (the four
composite indexes of 0004: the staff console's search and its dashboard, the lockout's report, the
consents' last use, `flask log show`). The single-column indexes of 0001 served none of them, and
every log row (each step of every flow, every account API call) paid for them on insert: three of
the table's eight B-trees (bench/README.md, round 16).

Revision ID: 0009_operation_log_indexes
Revises: 0008_notifications
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0009_operation_log_indexes'
down_revision: Union[str, None] = "0008_notifications"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_UNUSED = (('ix_operation_log_at', ['at']), ('ix_operation_log_flow_id', ['flow_id']),
           ('ix_operation_log_tenant', ['tenant']))


def upgrade() -> None:
    # Plain DROP INDEX, never a batch copy of the table: that would drop its append-only triggers (0002).
    for name, _columns in _UNUSED:
        op.drop_index(name, table_name='operation_log')


def downgrade() -> None:
    for name, columns in _UNUSED:
        op.create_index(name, 'operation_log', columns, unique=False)
