"""On PostgreSQL a request's reads before its first write (the maintenance windows, the flow, the ④
poll, the account API's) share one pooled connection in autocommit (db.reads): no BEGIN before them,
no ROLLBACK after, one pre-ping, where each read took its own connection and transaction (issue 13).
The connection goes back to the pool as it came: the next writer's statements are in a transaction."""
from __future__ import annotations

import contextlib

from sqlalchemy import event, text


@contextlib.contextmanager
def _watched(app):
    """What the request does on the database: the pool checkouts (their DB-API connections) and, for
    each statement, whether its connection was in autocommit (psycopg then sends no BEGIN)."""
    engine = app.extensions["db_engine"]
    seen = {"checkouts": [], "statements": []}

    def checkout(dbapi_connection, _record, _proxy):
        seen["checkouts"].append(dbapi_connection)

    def statement(conn, _cursor, sql, *_args):
        seen["statements"].append((" ".join(sql.split()), conn.connection.driver_connection.autocommit))

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", statement)


def test_a_screen_get_reads_the_windows_and_the_flow_on_one_connection_in_autocommit(amami_on_postgres):
    amami = amami_on_postgres
    amami.start()
    with _watched(amami.app) as seen:
        assert amami.get("flow/account").status_code == 200
    assert len(seen["checkouts"]) == 1
    assert [s[0].split(" FROM ")[-1].split()[0] for s in seen["statements"]] == ["maintenance_window", "flow"]
    assert all(autocommit for _sql, autocommit in seen["statements"])


def test_the_call_status_poll_reads_on_one_connection_in_autocommit(amami_on_postgres):
    amami = amami_on_postgres
    amami.start()
    with _watched(amami.app) as seen:
        response = amami.client.get("/amami/flow/call/status", headers={"HX-Request": "true"})
    assert response.status_code < 400  # the flow is at ①: the poll sends the browser there
    assert len(seen["checkouts"]) == 1 and len(seen["statements"]) == 2
    assert all(autocommit for _sql, autocommit in seen["statements"])


def test_a_post_still_writes_in_a_transaction_after_its_reads(amami_on_postgres):
    amami = amami_on_postgres
    amami.start()
    with _watched(amami.app) as seen:
        assert amami.account().status_code == 303
    writes = [autocommit for sql, autocommit in seen["statements"] if sql.startswith(("INSERT", "UPDATE"))]
    assert writes and not any(writes)


def test_the_read_connection_goes_back_to_the_pool_out_of_autocommit(amami_on_postgres):
    amami = amami_on_postgres
    amami.start()
    with _watched(amami.app) as seen:
        amami.get("flow/account")
    used = seen["checkouts"][0]
    engine = amami.app.extensions["db_engine"]
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is used  # the pool hands back the one connection it holds idle
        assert conn.connection.driver_connection.autocommit is False
        conn.execute(text("CREATE TEMPORARY TABLE scratch (x int)"))
        conn.rollback()  # in a transaction: the table goes with it
        assert conn.execute(text("SELECT to_regclass('pg_temp.scratch')")).scalar() is None
