"""FAPI 2.0 Security Profile: a client's profile and JWK Set, pushed authorization requests
(RFC 9126), the jti replay cache (RFC 7523 client assertions, RFC 9449 DPoP proofs), and the DPoP
key a token is bound to (webapp/oauth)

Revision ID: 0006_fapi
Revises: 0005_call_attempt_renewals
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
import webapp.db


revision: str = '0006_fapi'
down_revision: Union[str, None] = '0005_call_attempt_renewals'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('oauth_pushed_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_uri_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_uri_hash')
    )
    with op.batch_alter_table('oauth_pushed_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_pushed_request_expires_at'), ['expires_at'], unique=False)

    op.create_table('oauth_seen_jti',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('oauth_seen_jti', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_seen_jti_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('profile', sa.String(length=16), server_default='oauth2', nullable=False))
        batch_op.add_column(sa.Column('jwks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('jwks_uri', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))

    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))

    with op.batch_alter_table('oauth_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('oauth_code', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')

    with op.batch_alter_table('oauth_token', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')

    with op.batch_alter_table('oauth_client', schema=None) as batch_op:
        batch_op.drop_column('jwks_uri')
        batch_op.drop_column('jwks')
        batch_op.drop_column('profile')

    with op.batch_alter_table('oauth_seen_jti', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_seen_jti_expires_at'))

    op.drop_table('oauth_seen_jti')
    with op.batch_alter_table('oauth_pushed_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_pushed_request_expires_at'))

    op.drop_table('oauth_pushed_request')
