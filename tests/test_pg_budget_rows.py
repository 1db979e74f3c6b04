"""On PostgreSQL the identity checks' budget rows are locked only by statements of their own.

Every ② and ⑤ of a union writes the union's budget row (and every check of an app, the app's). A row
written in a transaction stays locked until that transaction ends, so when the budgets were taken and
given back inside the check's transactions, every other check of the union waited for the account's
lock, the flow's update, the log row and the COMMIT of the one ahead of it: at 16 customers ② took
129–155 ms at the median and 333–404 ms at p99 (bench/README, round 28). Here a second connection
asks for those rows with NOWAIT at each statement the check's transactions run, and at their COMMIT:
none may find them locked. What the budgets count is tested on both engines in test_flow_writes.py
and test_security_attacks.py (parallel checks)."""
from __future__ import annotations

import contextlib

import psycopg
from sqlalchemy import event
from sqlmodel import Session, select

from conftest import text_of
from test_oauth_support import at_pin, latest_flow, pin
from webapp.budgets import CheckBudget


@contextlib.contextmanager
def _probing_budget_rows(app):
    """Probes a second connection makes, inside the app's transactions, for the union's and the apps'
    budget rows: a list of (what the app was about to run, whether the rows were locked)."""
    url = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    engine = app.extensions["db_engine"]
    probes: list[tuple[str, bool]] = []
    with psycopg.connect(url, autocommit=True) as other:

        def probe(label: str) -> None:
            try:
                with other.transaction():
                    other.execute("SELECT key FROM check_budget WHERE key LIKE 'union:%' OR key LIKE 'client:%'"
                                  " FOR UPDATE NOWAIT")
            except psycopg.errors.LockNotAvailable:
                probes.append((label, True))
            else:
                probes.append((label, False))

        def before_statement(conn, _cursor, statement, *_rest):
            if conn.in_transaction() and not conn.connection.driver_connection.autocommit:
                probe(" ".join(statement.split()[:3]))

        def before_commit(_conn):
            probe("COMMIT")

        event.listen(engine, "before_cursor_execute", before_statement)
        event.listen(engine, "commit", before_commit)
        try:
            yield probes
        finally:
            event.remove(engine, "before_cursor_execute", before_statement)
            event.remove(engine, "commit", before_commit)


def _budget_rows(app) -> dict:
    with Session(app.extensions["db_engine"]) as s:
        return {b.key.split(":")[0]: b.used for b in s.exec(select(CheckBudget)).all()}


def test_a_failed_and_a_passed_customer_check_hold_no_budget_row_locked(amami_on_postgres):
    amami = amami_on_postgres
    amami.start()
    amami.account()
    assert amami.customer(birth_year="1999").status_code == 200  # the rows made (a row not yet committed is not seen)
    with _probing_budget_rows(amami.app) as probes:
        assert amami.customer(birth_year="1998").status_code == 200  # a mismatch: its slots stay taken
    assert {"INSERT INTO account_lock", "COMMIT"} <= {label for label, _ in probes}
    assert [label for label, locked in probes if locked] == []
    assert _budget_rows(amami.app) == {"ip": 2, "client": 2, "union": 2}

    with _probing_budget_rows(amami.app) as probes:
        response = amami.customer()  # passed: its failure slots given back
    assert response.status_code == 303, text_of(response)[:800]
    assert {"INSERT INTO account_lock", "INSERT INTO operation_log", "UPDATE flow SET", "COMMIT"} <= {
        label for label, _ in probes}
    assert [label for label, locked in probes if locked] == []
    assert _budget_rows(amami.app) == {"ip": 3, "client": 2, "union": 2}


def test_a_passed_pin_check_holds_no_budget_row_locked(amami_on_postgres):
    amami = amami_on_postgres
    at_pin(amami)
    with _probing_budget_rows(amami.app) as probes:
        response = pin(amami)
    assert response.status_code == 303, text_of(response)[:800]
    assert {"INSERT INTO account_lock", "UPDATE account_lock SET", "COMMIT"} <= {label for label, _ in probes}
    assert [label for label, locked in probes if locked] == []
    assert _budget_rows(amami.app) == {"ip": 2, "client": 0, "union": 0}


def test_a_budget_row_held_past_the_lock_timeout_answers_the_unavailable_page_and_loses_nothing(amami_on_postgres):
    """Someone else holds the union's budget row (a long staff query, a stuck session) past the
    database's lock_timeout: ② answers No.4 (503), not a 500, the flow stays on ② with nothing of the
    check written, and the connection the statement ran on is back in the pool."""
    from webapp import messages
    from webapp.lockout import AccountLock

    amami = amami_on_postgres
    app = amami.app
    amami.start()
    amami.account()
    assert amami.customer(birth_year="1999").status_code == 200  # the budget rows made
    url = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    engine = app.extensions["db_engine"]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {psycopg.sql.Identifier(admin.info.dbname).as_string(admin)} "
                      "SET lock_timeout = '300ms'")
    engine.dispose()  # the app's next connections start with that setting
    with psycopg.connect(url) as other:
        other.execute("SELECT key FROM check_budget WHERE key LIKE 'union:%' FOR UPDATE")
        response = amami.customer(name_kana="ﾍﾞﾂ ﾅﾏｴ")
        other.rollback()
    assert response.status_code == 503
    assert messages.UNAVAILABLE in text_of(response)
    assert engine.pool.checkedout() == 0
    flow = latest_flow(app)
    assert (flow.step, flow.name_kana) == ("customer", "ﾃﾞｰﾀ ﾀﾛｳ")  # what the first check saved
    assert _budget_rows(app) == {"ip": 1, "client": 1, "union": 1}
    with Session(engine) as s:
        assert [lock.failures for lock in s.exec(select(AccountLock)).all()] == [1]

    assert amami.customer().status_code == 303  # the row free again: the same browser passes ②
