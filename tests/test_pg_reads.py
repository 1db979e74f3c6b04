"""On PostgreSQL a request's reads before its first write (the maintenance windows, the flow, the ④
poll) share one pooled connection in autocommit (db.plain, read by db.plain_rows on the DB-API): no
BEGIN before them, no ROLLBACK after, one checkout, where each read took its own connection and
transaction (issue 13). The connection goes back to the pool as it came: the next writer's statements
are in a transaction. The pool pings a connection only when it sat idle or the server ended it."""
from __future__ import annotations

import contextlib
import time

from sqlalchemy import text

from webapp import db, messages
from sql_support import cursors_of


@contextlib.contextmanager
def _watched(app):
    """What the request does on the database: the pool checkouts (their DB-API connections) and, for
    each statement psycopg was given (through SQLAlchemy or straight on the DB-API), whether its
    connection was in autocommit (psycopg then sends no BEGIN). The pool's pings are left out."""
    import psycopg

    engine = app.extensions["db_engine"]
    seen = {"checkouts": [], "statements": []}

    class Watching(psycopg.Cursor):
        def execute(self, query, *args, **kwargs):
            sql = " ".join(str(query).split())
            if sql != "SELECT 1":
                seen["statements"].append((sql, self.connection.autocommit))
            return super().execute(query, *args, **kwargs)

    with cursors_of(engine, Watching, on_checkout=seen["checkouts"].append):
        yield seen


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


# --- the pool's ping: only for a connection that sat idle ------------------------------------------

@contextlib.contextmanager
def _pings(app):
    """Counts the pool's pings (`SELECT 1` before a checkout)."""
    dialect = app.extensions["db_engine"].dialect
    counted = []
    ping = dialect.do_ping

    def counting(dbapi_connection):
        counted.append(dbapi_connection)
        return ping(dbapi_connection)

    dialect.do_ping = counting
    try:
        yield counted
    finally:
        del dialect.do_ping


def _end_pooled_connections(app) -> int:
    """The server ends every connection of the app's pool (as a restart or fail-over would)."""
    import psycopg

    url = app.config["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with psycopg.connect(url, autocommit=True) as conn:
        ended = len(conn.execute(f"SELECT pg_terminate_backend(pid) {others}").fetchall())
        for _ in range(200):  # the backends go a moment after they are told to
            if conn.execute(f"SELECT count(*) {others}").fetchone()[0] == 0:
                return ended
            time.sleep(0.01)
    raise AssertionError("the server's backends did not end")


def test_a_connection_given_back_a_moment_ago_is_not_pinged_one_idle_for_a_second_is(amami_on_postgres, monkeypatch):
    amami = amami_on_postgres
    amami.start()
    with _pings(amami.app) as pinged:
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600)
        for _ in range(3):
            assert amami.get("flow/account").status_code == 200
        assert pinged == []  # under load every checkout finds a connection used just now: no round trip
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0)
        assert amami.get("flow/account").status_code == 200
        assert len(pinged) == 1  # one checkout, one ping


def test_a_connection_the_server_ended_while_it_sat_idle_is_replaced_before_use(amami_on_postgres, monkeypatch):
    amami = amami_on_postgres
    amami.start()
    assert amami.get("flow/account").status_code == 200
    assert _end_pooled_connections(amami.app) >= 1
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0)  # the pooled one has sat idle long enough
    with _pings(amami.app) as pinged:
        assert amami.get("flow/account").status_code == 200  # the customer sees nothing of it
    assert len(pinged) == 1


def test_a_connection_the_server_ended_a_moment_ago_is_replaced_before_use(amami_on_postgres, monkeypatch):
    """Given back just now, so not pinged for its age; but the server's goodbye waits on its socket."""
    amami = amami_on_postgres
    amami.start()
    assert amami.get("flow/account").status_code == 200
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600)
    assert _end_pooled_connections(amami.app) >= 1
    with _pings(amami.app) as pinged:
        assert amami.get("flow/account").status_code == 200
    assert len(pinged) == 1


def test_a_connection_lost_without_a_word_within_the_second_costs_one_request_a_503(amami_on_postgres, monkeypatch):
    """What the ping not sent then misses (a connection a network dropped silently, its socket showing
    nothing): that request gets the unavailable page, as while the database is away, never a 500,
    and the pool's connections are replaced, so the next request works."""
    amami = amami_on_postgres
    amami.start()
    engine = amami.app.extensions["db_engine"]
    with engine.connect(), engine.connect():
        pass  # two connections in the pool now
    assert amami.get("flow/account").status_code == 200
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600)
    monkeypatch.setattr(db, "_readable", lambda _connection: False)
    assert _end_pooled_connections(amami.app) == 2
    refused = amami.get("flow/account")
    assert refused.status_code == 503 and messages.UNAVAILABLE in refused.get_data(as_text=True)
    # the other pooled connection, gone the same way, is replaced, not handed to the next request
    assert amami.get("flow/account").status_code == 200
    assert amami.get("flow/account").status_code == 200


# --- prepared statements: no ROLLBACK on a customer's way --------------------------------------------

def test_a_whole_flow_and_its_first_api_call_roll_no_transaction_back(amami_on_postgres, monkeypatch):
    """psycopg prepares a statement on a connection after its fifth run there, and forgets all of them
    at every ROLLBACK of an open transaction (DEALLOCATE ALL); one such ROLLBACK a flow (④'s read of
    its new attempt, once) kept most statements from ever being prepared under load (bench/README,
    round 23). A customer going through ①–⑥, the provider's webhook, the token exchange and the
    app's first call end every transaction they open with a COMMIT."""
    import psycopg
    from psycopg.pq import TransactionStatus

    from test_callauth_support import call_from_registered_phone, to_call_screen
    from test_oauth_support import allow, exchange, pin, query

    amami = amami_on_postgres
    rolled_back = []
    rollback = psycopg.Connection.rollback

    def watched(self):
        if self.info.transaction_status != TransactionStatus.IDLE:  # psycopg sends ROLLBACK only then
            rolled_back.append(self.info.transaction_status)
        return rollback(self)

    with amami.app.extensions["db_engine"].connect():
        pass  # the engine's first connection: SQLAlchemy rolls back what it read to set its dialect up
    monkeypatch.setattr(psycopg.Connection, "rollback", watched)
    page = to_call_screen(amami)  # ①, ② and ③ with their GETs and POSTs, ④'s first GET
    assert call_from_registered_phone(amami, page).status_code == 200
    assert amami.post("flow/call", {}).status_code == 303
    assert amami.get("flow/pin").status_code == 200
    assert pin(amami).status_code == 303
    assert amami.get("flow/consent").status_code == 200
    granted = allow(amami)
    assert granted.status_code == 303
    answer = exchange(amami, query(granted.headers["Location"])["code"])
    assert answer.status_code == 200
    accounts = amami.client.get("/amami/api/v1/accounts",
                                headers={"Authorization": f"Bearer {answer.get_json()['access_token']}"})
    assert accounts.status_code == 200
    assert rolled_back == []
