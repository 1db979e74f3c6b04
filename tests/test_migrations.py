"""`flask db upgrade` builds the whole schema on an empty database, and the models match the migrations."""
import pytest
from sqlalchemy import inspect

from webapp import create_app
from conftest import TEST_SECRET


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated_app(request, tmp_path):
    """An app whose empty database (on each engine) `flask db upgrade` built, and `flask db check` passed."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app({"TESTING": True, "SECRET_KEY": TEST_SECRET, "DATABASE_URL": url})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    yield app
    app.extensions["db_engine"].dispose()


def test_upgrade_builds_every_table(migrated_app):
    from sqlmodel import SQLModel
    import webapp.models  # noqa: F401
    tables = set(inspect(migrated_app.extensions["db_engine"]).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables


def test_operation_log_refuses_update_and_delete(migrated_app):
    import sqlalchemy as sa
    engine = migrated_app.extensions["db_engine"]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO operation_log (at, tenant, screen, event, result) "
                             "VALUES (CURRENT_TIMESTAMP, 'amami', 'SOA201', 'x', 'ok')"))
    for statement in ("UPDATE operation_log SET result = 'fail'", "DELETE FROM operation_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement))


def test_models_make_the_waiting_call_index_partial_on_each_engine(app):
    """create_all (the tests' schema) makes the (phone, pool number) index unique among waiting
    attempts only, on PostgreSQL as on SQLite, though the model names PostgreSQL's where= only when
    the table is created there (callauth/models.py: not loading that dialect into SQLite workers)."""
    from sqlalchemy import text

    engine = app.extensions["db_engine"]
    catalog = ("SELECT indexdef FROM pg_indexes WHERE indexname = :name" if engine.dialect.name == "postgresql"
               else "SELECT sql FROM sqlite_master WHERE name = :name")
    with engine.connect() as conn:
        definition = conn.execute(text(catalog), {"name": "uq_call_attempt_waiting_phone_number"}).scalar_one()
    assert "UNIQUE" in definition.upper() and "WHERE" in definition.upper() and "'waiting'" in definition
