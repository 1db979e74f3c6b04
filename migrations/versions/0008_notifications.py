"""notifications: expiry reminders share the mail outbox (one mail per flow, kind and consent, `send_before`),
the webhook event outbox, the unions' signing keys, the apps' webhook URLs, and the index of the
reminders' scan (webapp/mail/reminders.py, webapp/webhooks)

Revision ID: 0008_notifications
Revises: 0007_links
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
import webapp.db


revision: str = '0008_notifications'
down_revision: Union[str, None] = "0007_links"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('signing_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('secret_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('private_jwk_encrypted', sa.Text(), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kid'),
    sa.UniqueConstraint('tenant', 'secret_id', name='uq_signing_key_tenant_secret')
    )
    op.create_table('webhook_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('consent_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('occurred_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claim_token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('webhook_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_outbox_client_id'), ['client_id'], unique=False)
        batch_op.create_index('ix_webhook_outbox_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_outbox_tenant'), ['tenant'], unique=False)

    # 0007 made (flow_id, consent_id) unique; a reminder shares the completion mail's flow and consent
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_before', webapp.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint('uq_mail_outbox_flow_consent', type_='unique')
        batch_op.create_unique_constraint('uq_mail_outbox_flow_kind_consent', ['flow_id', 'kind', 'consent_id'])

    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_url', sa.String(length=2000), nullable=True))

    with op.batch_alter_table('oauth_consent', schema=None) as batch_op:
        batch_op.create_index('ix_oauth_consent_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_consent', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_consent_expires_at')

    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('webhook_url')

    op.execute("DELETE FROM mail_outbox WHERE kind = 'consent_expiring'")  # one mail per flow and consent again
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_constraint('uq_mail_outbox_flow_kind_consent', type_='unique')
        batch_op.create_unique_constraint('uq_mail_outbox_flow_consent', ['flow_id', 'consent_id'])
        batch_op.drop_column('send_before')

    with op.batch_alter_table('webhook_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_outbox_tenant'))
        batch_op.drop_index('ix_webhook_outbox_due')
        batch_op.drop_index(batch_op.f('ix_webhook_outbox_client_id'))

    op.drop_table('webhook_outbox')
    op.drop_table('signing_key')
