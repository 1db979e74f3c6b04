"""`flask db upgrade` builds the whole schema on an empty database, and the models match the migrations."""
import pytest
from sqlalchemy import inspect

from webapp import create_app
from webapp.migrate import alembic_config
from conftest import TEST_SECRET


def _migrated_app(url):
    app = create_app({"TESTING": True, "SECRET_KEY": TEST_SECRET, "DATABASE_URL": url})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    return app


def _assert_all_tables(app):
    from sqlmodel import SQLModel
    import webapp.models  # noqa: F401
    tables = set(inspect(app.extensions["db_engine"]).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables


def test_upgrade_builds_every_table_on_sqlite(tmp_path):
    app = _migrated_app(f"sqlite:///{tmp_path / 'm.db'}")
    _assert_all_tables(app)
    app.extensions["db_engine"].dispose()


@pytest.mark.postgres
def test_upgrade_builds_every_table_on_postgres(pg_url):
    app = _migrated_app(pg_url)
    _assert_all_tables(app)
    app.extensions["db_engine"].dispose()


def _assert_operation_log_is_append_only(app):
    import sqlalchemy as sa
    engine = app.extensions["db_engine"]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO operation_log (at, tenant, screen, event, result) "
                             "VALUES (CURRENT_TIMESTAMP, 'amami', 'SOA201', 'x', 'ok')"))
    for statement in ("UPDATE operation_log SET result = 'fail'", "DELETE FROM operation_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement))


def test_operation_log_refuses_update_and_delete_on_sqlite(tmp_path):
    app = _migrated_app(f"sqlite:///{tmp_path / 'm.db'}")
    _assert_operation_log_is_append_only(app)
    app.extensions["db_engine"].dispose()


@pytest.mark.postgres
def test_operation_log_refuses_update_and_delete_on_postgres(pg_url):
    app = _migrated_app(pg_url)
    _assert_operation_log_is_append_only(app)
    app.extensions["db_engine"].dispose()
