"""連携中のアプリ (CONTRACT §10): a flow's purpose (an app's authorization request, or the
customer's own links page, which has no client), and one outbox mail per (flow, consent) so a
links session can send a notice for each app it ends

Revision ID: 0007_links
Revises: 0006_fapi
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_links"
down_revision = "0006_fapi"
branch_labels = None
depends_on = None

# SQLite keeps 0001's UNIQUE (flow_id) unnamed: batch mode finds it by this convention.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _flow_id_unique() -> str:
    return "mail_outbox_flow_id_key" if op.get_bind().dialect.name == "postgresql" else "uq_mail_outbox_flow_id"


def upgrade() -> None:
    with op.batch_alter_table("flow") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=16), nullable=False, server_default="authorize"))
        batch.alter_column("client_id", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column("redirect_uri", existing_type=sa.String(length=2000), nullable=True)
    with op.batch_alter_table("mail_outbox", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(_flow_id_unique(), type_="unique")
        batch.create_unique_constraint("uq_mail_outbox_flow_consent", ["flow_id", "consent_id"])


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint("uq_mail_outbox_flow_consent", type_="unique")
        batch.create_unique_constraint(_flow_id_unique(), ["flow_id"])
    with op.batch_alter_table("flow") as batch:
        batch.alter_column("redirect_uri", existing_type=sa.String(length=2000), nullable=False)
        batch.alter_column("client_id", existing_type=sa.String(length=64), nullable=False)
        batch.drop_column("purpose")
