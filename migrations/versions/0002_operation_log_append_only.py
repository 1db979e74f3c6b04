"""operation log is append-only: the database itself refuses UPDATE and DELETE

Revision ID: 0002_oplog_append_only
Revises: 0001_initial
"""
from alembic import op

revision = "0002_oplog_append_only"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION operation_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'operation_log is append-only'; END $$;
        """)
        op.execute("""
            CREATE TRIGGER operation_log_append_only BEFORE UPDATE OR DELETE ON operation_log
            FOR EACH ROW EXECUTE FUNCTION operation_log_append_only();
        """)
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER operation_log_no_{action.lower()} BEFORE {action} ON operation_log
                BEGIN SELECT RAISE(ABORT, 'operation_log is append-only'); END;
            """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER operation_log_append_only ON operation_log")
        op.execute("DROP FUNCTION operation_log_append_only()")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER operation_log_no_{action}")
