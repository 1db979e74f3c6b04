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


def _changes_counted(engine, statements) -> list[int]:
    """maintenance_changes' total (0: no row yet) after each statement, each committed alone, counted
    from the row's first total (random, migration 0011) as 1."""
    import sqlalchemy as sa
    totals = []
    for statement in statements:
        with engine.begin() as conn:
            conn.execute(sa.text(statement) if isinstance(statement, str) else statement)
        with engine.connect() as conn:
            totals.append(conn.execute(sa.text("SELECT coalesce(max(total), 0) FROM maintenance_changes")).scalar())
    first = next((t for t in totals if t), 1)
    assert 1 <= first <= 2**30
    return [t and t - first + 1 for t in totals]


def _window_writes() -> tuple:
    import datetime as dt

    from sqlalchemy import insert

    from webapp.staff.models import StaffAccount
    return (insert(StaffAccount).values(id=7, tenant="amami", email="o@example.jp", role="admin",
                                        created_at=dt.datetime.now(dt.timezone.utc)),) + _WINDOW_WRITES


_WINDOW_WRITES = (
    "INSERT INTO maintenance_window (tenant, starts_at, ends_at, reason, created_by, created_at) "
    "VALUES ('amami', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'r', 7, CURRENT_TIMESTAMP)",
    "INSERT INTO operation_log (at, tenant, screen, event, result) VALUES (CURRENT_TIMESTAMP, 'amami', 'API', 'x', 'ok')",
    "UPDATE maintenance_window SET cancelled_at = CURRENT_TIMESTAMP, cancelled_by = 7",
    "UPDATE maintenance_window SET reason = 'r' WHERE id = -1",  # a statement that changes no row
    "DELETE FROM maintenance_window",
)


def test_the_database_counts_each_change_of_the_maintenance_windows(migrated_app):
    """Migration 0010's triggers (with 0011's first total): every statement that writes
    maintenance_window moves the count, in its own transaction; writes to other tables do not
    (webapp/maintenance.py keeps what it read until it moves)."""
    totals = _changes_counted(migrated_app.extensions["db_engine"], _window_writes())
    dialect = migrated_app.extensions["db_engine"].dialect.name
    # SQLite's triggers fire for each row written, PostgreSQL's for each statement, even one of no rows
    assert totals == ([0, 1, 1, 2, 3, 4] if dialect == "postgresql" else [0, 1, 1, 2, 2, 3])


def _first_totals_after_deletions(engine, times: int = 10) -> list[int]:
    """The total a window's change gives a maintenance_changes row deleted by hand before it, `times`."""
    import sqlalchemy as sa

    _changes_counted(engine, _window_writes()[:1])  # the staff member the windows name
    firsts = []
    for _ in range(times):
        with engine.begin() as conn:
            conn.execute(sa.text(_WINDOW_WRITES[0]))
            firsts.append(conn.execute(sa.text("SELECT total FROM maintenance_changes")).scalar())
            conn.execute(sa.text("DELETE FROM maintenance_changes"))
    return firsts


def test_a_count_row_deleted_by_hand_starts_again_from_a_random_total(migrated_app):
    """Migration 0011: a thread that kept the total it read must not meet it again after the row is
    deleted and the next change makes it anew (webapp/maintenance.py would keep changed windows).
    Each new row starts at a random total: ten deletions give ten different ones, none of them 1."""
    firsts = _first_totals_after_deletions(migrated_app.extensions["db_engine"])
    assert len(set(firsts)) == 10 and 1 not in firsts and all(1 <= t <= 2**30 for t in firsts)


def test_the_models_schema_starts_a_count_row_at_a_random_total_too(app):
    firsts = _first_totals_after_deletions(app.extensions["db_engine"])
    assert len(set(firsts)) == 10 and 1 not in firsts and all(1 <= t <= 2**30 for t in firsts)


def test_the_models_schema_counts_them_as_the_migrations_do(app):
    """The tests' schema (db.create_all) has the same triggers as the migrations' (maintenance.py)."""
    dialect = app.extensions["db_engine"].dialect.name
    totals = _changes_counted(app.extensions["db_engine"], _window_writes())
    assert totals == ([0, 1, 1, 2, 3, 4] if dialect == "postgresql" else [0, 1, 1, 2, 2, 3])


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
