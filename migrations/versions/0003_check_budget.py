"""identity-check budgets per address, app and union (webapp/budgets.py)

Revision ID: 0003_check_budget
Revises: 0002_oplog_append_only
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_check_budget"
down_revision = "0002_oplog_append_only"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_budget",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("check_budget")
