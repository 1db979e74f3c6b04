"""staff console: staff accounts, setup links, sessions, ad hoc maintenance windows; the
operation log's staff column and the indexes its search needs (webapp/staff)

Revision ID: 0004_staff
Revises: 0003_check_budget
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
import webapp.db


revision: str = '0004_staff'
down_revision: Union[str, None] = '0003_check_budget'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('staff_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('totp_secret', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('enrolled_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'email', name='uq_staff_account_email')
    )
    with op.batch_alter_table('staff_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_account_tenant'), ['tenant'], unique=False)

    op.create_table('maintenance_window',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('starts_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cancelled_by'], ['staff_account.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['staff_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('maintenance_window', schema=None) as batch_op:
        batch_op.create_index('ix_maintenance_window_tenant_end', ['tenant', 'ends_at'], unique=False)

    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_staff_id'), ['staff_id'], unique=False)

    op.create_table('staff_setup_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('staff_setup_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_setup_token_staff_id'), ['staff_id'], unique=False)

    # Plain ALTER/CREATE INDEX, never a batch copy of the table: that would drop its append-only triggers (0002).
    op.add_column('operation_log', sa.Column('staff_id', sa.Integer(), nullable=True))
    op.create_index('ix_operation_log_account_at', 'operation_log', ['tenant', 'branch', 'account_type', 'account_number', 'at'], unique=False)
    op.create_index('ix_operation_log_client_at', 'operation_log', ['tenant', 'client_id', 'at'], unique=False)
    op.create_index('ix_operation_log_event_at', 'operation_log', ['tenant', 'event', 'at'], unique=False)
    op.create_index('ix_operation_log_tenant_at_id', 'operation_log', ['tenant', 'at', 'id'], unique=False)



def downgrade() -> None:
    for name in ('ix_operation_log_tenant_at_id', 'ix_operation_log_event_at', 'ix_operation_log_client_at',
                 'ix_operation_log_account_at'):
        op.drop_index(name, table_name='operation_log')
    op.drop_column('operation_log', 'staff_id')  # SQLite 3.35+ drops a column in place

    with op.batch_alter_table('staff_setup_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_setup_token_staff_id'))

    op.drop_table('staff_setup_token')
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_session_staff_id'))

    op.drop_table('staff_session')
    with op.batch_alter_table('maintenance_window', schema=None) as batch_op:
        batch_op.drop_index('ix_maintenance_window_tenant_end')

    op.drop_table('maintenance_window')
    with op.batch_alter_table('staff_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_account_tenant'))

    op.drop_table('staff_account')
