"""call_attempt.attempts: how many windows a flow has had on ④ (「もう一度電話番号認証を行う」)

Revision ID: 0005_call_attempt_renewals
Revises: 0004_staff
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_call_attempt_renewals"
down_revision = "0004_staff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempt") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("1")))


def downgrade() -> None:
    with op.batch_alter_table("call_attempt") as batch:
        batch.drop_column("attempts")
