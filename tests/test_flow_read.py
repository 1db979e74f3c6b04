"""The screens' flow read (state.load, state.load_with_client) is a Core SELECT whose rows become
detached objects (issue 13): they must hold what an ORM read of the same rows holds."""
import collections

import pytest
from sqlmodel import Session, select

from conftest import text_of
from webapp import db
from webapp.flow import state
from webapp.flow.models import Flow
from webapp.oauth.models import OAuthClient

COLUMNS_OF = {Flow: [c.key for c in Flow.__table__.c], OAuthClient: [c.key for c in OAuthClient.__table__.c]}


def _read_as_the_browser(app, client, tenant="amami"):
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    with app.test_request_context(f"/{tenant}/flow/account", headers={"Cookie": f"{cookie.key}={cookie.value}"}):
        from flask import g

        g.tenant = app.extensions["tenants"][tenant]
        try:
            return state.load(), state.load_with_client()
        finally:
            db.session().close()


def test_the_flow_and_its_client_hold_what_the_orm_reads(app, client, amami):
    amami.start()
    assert amami.account().status_code == 303  # some columns set, some still NULL
    flow, (same_flow, app_client) = _read_as_the_browser(app, client)
    with Session(app.extensions["db_engine"]) as s:
        stored = s.exec(select(Flow)).one()
        stored_client = s.exec(select(OAuthClient).where(OAuthClient.client_id == stored.client_id)).one()
        for loaded in (flow, same_flow):
            assert {k: getattr(loaded, k) for k in COLUMNS_OF[Flow]} == {k: getattr(stored, k) for k in COLUMNS_OF[Flow]}
        assert {k: getattr(app_client, k) for k in COLUMNS_OF[OAuthClient]} == \
            {k: getattr(stored_client, k) for k in COLUMNS_OF[OAuthClient]}
    assert flow.branch and flow.oauth_request["scope"] == "accounts" and flow.name_kana is None
    assert flow.created_at.tzinfo is not None  # aware, as UTCDateTime gives it
    assert flow.step == "customer" and app_client.operator


def test_a_flow_with_no_app_reads_with_no_client(app, client, amami):
    amami.start()
    with Session(app.extensions["db_engine"]) as s:
        s.exec(select(Flow)).one().client_id = None
        s.commit()
    flow, (same_flow, app_client) = _read_as_the_browser(app, client)
    assert flow is not None and same_flow.id == flow.id and app_client is None


def test_no_flow_for_a_browser_without_one(app, client, amami):
    client.get("/amami/faq")
    with app.test_request_context("/amami/flow/account"):
        from flask import g

        g.tenant = app.extensions["tenants"]["amami"]
        assert state.load() is None and state.load_with_client() == (None, None)


def test_screen_gets_read_without_an_orm_session(app, client, amami, monkeypatch):
    """A screen GET only reads (issue 13): its flow, ②/⑤'s standing lock and ④'s attempt on the request's
    plain connection (db.plain), no ORM session built, begun and closed. Only ④'s first GET, which opens
    the call attempt, writes; a POST reads its flow the same way and builds its session to write."""
    import flask

    from test_callauth_support import call_from_registered_phone, poll
    from test_oauth_support import pin

    built = []

    class Recorded(db.Session):
        def __init__(self, *args, **kwargs):
            built.append((flask.request.method, flask.request.path, flask.request.headers.get("HX-Request")))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(db, "Session", Recorded)

    def screen(step, **kw):
        page = amami.get(f"flow/{step}", **kw)
        assert page.status_code == 200, (step, page.status_code)
        return page

    amami.start()
    screen("account", headers={"HX-Request": "true"})
    assert amami.account().status_code == 303
    assert amami.customer().status_code == 303  # its GET first
    screen("phone")
    assert amami.post("flow/phone", {}).status_code == 303
    first = screen("call")  # opens the attempt: the one GET that writes
    again = screen("call")
    assert poll(amami).status_code == 200
    assert call_from_registered_phone(amami, again).status_code == 200
    final = poll(amami)  # the call seen: the whole of ④ once more
    assert final.headers["HX-Retarget"] == "#screen" and "確定する" in text_of(final)
    assert amami.post("flow/call", {}).status_code == 303
    screen("pin")
    assert pin(amami).status_code == 303
    screen("consent")
    gets = [(path, htmx) for method, path, htmx in built if method == "GET" and "/oauth/" not in path]
    assert gets == [("/amami/flow/call", None)], gets
    assert ("POST", "/amami/flow/account", None) in built and first.status_code == 200


def test_the_shown_attempt_holds_what_the_orm_reads(app, client, amami):
    """④ shows its attempt from a Core row (callauth.shown_attempt): the same values as the ORM object."""
    from test_callauth_support import attempts, to_call_screen
    from webapp.callauth import service

    to_call_screen(amami)
    (stored,) = attempts(app)
    with app.test_request_context():
        shown = service.shown_attempt(stored.flow_id)
        assert service.shown_attempt(stored.flow_id + 1) is None
    keys = ("id", "pool_number", "state", "expires_at", "withheld_call_at", "attempts")
    assert {k: getattr(shown, k) for k in keys} == {k: getattr(stored, k) for k in keys}
    assert shown.expires_at.tzinfo is not None
    assert service.status_of(shown) == service.status_of(stored)
    assert service.renewals_left(shown) == service.renewals_left(stored)


def test_a_plain_read_gives_what_a_core_read_gives(app, client, amami):
    """db.first_read (on SQLite a plain DB-API SELECT with each column's own result processor) gives the
    values and names SQLAlchemy's execution of the same statement gives, None for no row; its connection
    goes back to the pool when a session opens and at the request's end."""
    import flask

    amami.start()
    assert amami.account().status_code == 303
    with Session(app.extensions["db_engine"]) as s:
        stored = s.exec(select(Flow)).one()
    statement = state._LIVE[True]
    found = {"handle_hash": stored.handle_hash, "tenant": "amami"}
    with app.test_request_context():
        plain = db.first_read(statement, found)
        assert db.first_read(statement, {**found, "tenant": "maruhachi"}) is None
        with db.engine().connect() as conn:
            core = conn.execute(statement, found).first()
        assert tuple(plain) == tuple(core) and plain.branch == core.branch
        assert plain.created_at.tzinfo is not None and plain.oauth_request["scope"] == "accounts"
        if db.engine().dialect.name == "sqlite":
            db.session()  # a request that goes on to write reads in its session from then on
            assert "db_plain" not in flask.g
            assert tuple(db.first_read(statement, found)) == tuple(core)  # now read in the session's transaction
            assert "db_plain" not in flask.g
    with app.test_request_context():
        db.first_read(statement, found)
        held = flask.g.get("db_plain")
    if db_is_sqlite(app):  # the thread's own (test_sqlite_reads_keep_a_connection_a_thread), not the pool's
        assert held.dbapi_connection is not None and app.extensions["db_engine"].pool.checkedout() == 0
    else:
        assert held is None or held.dbapi_connection is None  # given back at the request's end


def db_is_sqlite(app) -> bool:
    return app.extensions["db_engine"].dialect.name == "sqlite"


def test_sqlite_reads_keep_a_connection_a_thread(app, client, amami):
    """On SQLite a request's plain reads run on its thread's own connection, kept from one request to
    the next (db._ThreadReads): the same one for the thread's next request, another for another
    thread, none taken from the pool; after the engine is disposed a new one, the old one closed."""
    import sqlite3
    import threading

    import flask
    from sqlalchemy import event

    if not db_is_sqlite(app):
        pytest.skip("PostgreSQL's plain connection is the pool's, given back each request")
    amami.start()
    engine = app.extensions["db_engine"]

    def read_on():
        with app.test_request_context():
            assert db.first_read(state._LIVE[True], {"handle_hash": "none", "tenant": "amami"}) is None
            return flask.g.db_plain.dbapi_connection

    first = read_on()
    taken = []
    listener = lambda *_args: taken.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        assert read_on() is first and engine.pool.checkedout() == 0
        assert amami.get("flow/account").status_code == 200 and read_on() is first  # a screen's reads too
        assert taken == []  # none from the pool, not even given back and taken again
    finally:
        event.remove(engine, "checkout", listener)
    other = []
    thread = threading.Thread(target=lambda: other.append(read_on()))
    thread.start()
    thread.join()
    assert other[0] is not first
    engine.dispose()
    renewed = read_on()
    assert renewed is not first and read_on() is renewed
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")  # closed when it was replaced


def test_a_screen_get_and_a_poll_take_one_connection_from_the_pool(app, client, amami):
    """The maintenance windows, the flow and what a screen shows are read on one connection a request
    (db.plain: on PostgreSQL taken from the pool), not one each; on SQLite the thread's own plain
    connection, which none of them takes from the pool."""
    from sqlalchemy import event

    from test_callauth_support import poll, to_call_screen

    engine = app.extensions["db_engine"]
    to_call_screen(amami)
    taken = []
    listener = lambda *_args: taken.append(1)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        for request in (lambda: amami.get("flow/call"), lambda: poll(amami),
                        lambda: amami.get("flow/call", headers={"HX-Request": "true"})):
            taken.clear()
            assert request().status_code == 200
            assert len(taken) == (0 if db_is_sqlite(app) else 1)
    finally:
        event.remove(engine, "checkout", listener)


class _OtherConnection:
    """Writes maintenance windows on connections of its own, as the staff console's request would."""

    def __init__(self, app, at):
        from sqlalchemy import insert

        from webapp.staff.models import StaffAccount

        self.engine, self.at = app.extensions["db_engine"], at
        with self.engine.begin() as conn:
            self.staff_id = conn.execute(insert(StaffAccount).values(
                tenant="amami", email="m@example.jp", role="admin", created_at=at)).inserted_primary_key[0]

    def add(self, start, end) -> int:
        from sqlalchemy import insert

        from webapp.maintenance import MaintenanceWindow
        with self.engine.begin() as conn:
            return conn.execute(insert(MaintenanceWindow).values(
                tenant="amami", starts_at=start, ends_at=end, reason="r", created_by=self.staff_id,
                created_at=self.at)).inserted_primary_key[0]

    def cancel(self, window_id: int) -> None:
        from sqlalchemy import update

        from webapp.maintenance import MaintenanceWindow
        with self.engine.begin() as conn:
            conn.execute(update(MaintenanceWindow).where(MaintenanceWindow.id == window_id)
                         .values(cancelled_at=self.at, cancelled_by=self.staff_id))


def test_a_threads_maintenance_windows_are_the_querys_and_read_again_after_a_window_changes(app):
    """On SQLite the union's live windows are read once and used again while no window changes
    (maintenance_changes, counted by the database's triggers) and the clock does not go back; each
    answer is what the query itself gives at that moment, as time moves either way and rows are
    added and cancelled by another connection. Commits to other tables (a customer's step, the
    account API's log) do not make it read again."""
    import datetime as dt

    from sqlalchemy import insert

    from webapp import clock, maintenance
    from webapp.oplog import OperationLog

    if not db_is_sqlite(app):
        pytest.skip("PostgreSQL reads the windows every time")
    engine = app.extensions["db_engine"]
    t0 = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.timezone.utc)
    hour = dt.timedelta(hours=1)
    other = _OtherConnection(app, t0)
    add, cancel = other.add, other.cancel

    def queried(now):
        with engine.connect() as conn:
            return sorted((s.replace(tzinfo=dt.timezone.utc), e.replace(tzinfo=dt.timezone.utc)) for s, e in
                          conn.execute(maintenance._LIVE, {"tenant": "amami", "now": now}).all())

    with app.test_request_context():
        plain = db.plain()
        statements = []
        plain.dbapi_connection.set_trace_callback(statements.append)
        try:
            def check(now, *, read_again: bool):
                clock.set_now(now)
                statements.clear()
                ours = sorted((r.period[0].astimezone(dt.timezone.utc), r.period[1].astimezone(dt.timezone.utc))
                              for r in maintenance.adhoc_rules("amami"))
                assert ours == queried(now), now
                assert any("maintenance_window" in s for s in statements) == read_again, (now, statements)
                return ours

            assert check(t0, read_again=True) == []
            assert check(t0 + hour, read_again=False) == []
            with engine.begin() as conn:  # another table: the windows are still those read
                conn.execute(insert(OperationLog).values(at=t0, tenant="amami", screen="API", event="x", result="ok"))
            assert check(t0 + hour, read_again=False) == []
            first = add(t0 + 2 * hour, t0 + 3 * hour)
            assert len(check(t0 + hour, read_again=True)) == 1  # another connection committed
            assert len(check(t0 + 2.5 * hour, read_again=False)) == 1  # inside it: the same rows
            assert check(t0 + 4 * hour, read_again=False) == []  # over: left out without a read
            add(t0 + 5 * hour, t0 + 6 * hour)
            assert len(check(t0 + 4 * hour, read_again=True)) == 1  # read at 4 h: the first one is over
            assert len(check(t0 + 2.5 * hour, read_again=True)) == 2  # the clock went back before that read
            assert len(check(t0 + 2.75 * hour, read_again=False)) == 2
            cancel(first)
            assert len(check(t0 + 2.5 * hour, read_again=True)) == 1
            assert len(check(t0 + 5.5 * hour, read_again=False)) == 1
        finally:
            plain.dbapi_connection.set_trace_callback(None)
            clock.set_now(None)


def test_the_service_hours_answer_is_the_calendars_at_every_moment_and_kept_only_within_a_minute(app):
    """maintenance.window_now answers what service_hours.maintenance_window_at(rules_for(…)) answers,
    at every moment of a sweep in 7-second steps across a calendar window, an ad hoc window on whole
    minutes and one with seconds, as another connection adds and cancels windows. On SQLite the
    answer is kept for the rest of its minute while no window changes, and only when no rule starts
    or ends inside that minute: counting the calls of maintenance_window_at shows when."""
    import dataclasses
    import datetime as dt

    from webapp import clock, maintenance, service_hours

    jst = dt.timezone(dt.timedelta(hours=9))
    t0 = dt.datetime(2026, 12, 5, 10, 0, tzinfo=jst)
    calendar = service_hours.validate([{"kind": "daily", "start": "10:05", "end": "10:07"}])
    tenant = dataclasses.replace(app.extensions["tenants"]["amami"], maintenance=calendar)
    other = _OtherConnection(app, t0)
    add, cancel = other.add, other.cancel

    minute = dt.timedelta(minutes=1)
    stock = service_hours.maintenance_window_at
    worked_out = []

    def counted(*args):
        worked_out.append(args)
        return stock(*args)

    with app.test_request_context(), pytest.MonkeyPatch.context() as patched:
        patched.setattr(service_hours, "maintenance_window_at", counted)
        try:
            def sweep(start, end, step=dt.timedelta(seconds=7)):
                """Every answer against the rules' own; how many times each minute worked it out."""
                times, at = collections.Counter(), start
                while at < end:
                    clock.set_now(at)
                    before = len(worked_out)
                    ours = maintenance.window_now(tenant)
                    times[at.minute] += len(worked_out) - before
                    assert ours == stock(maintenance.rules_for(tenant, at), at), at
                    at += step
                return times

            assert sweep(t0, t0 + 10 * minute)  # the calendar's 10:05–10:07 closes, then opens again
            clock.set_now(t0 + 6 * minute)
            assert maintenance.window_now(tenant).end == t0 + 7 * minute
            whole = add(t0 + 12 * minute, t0 + 14 * minute)  # 10:12–10:14
            add(t0 + 16 * minute + dt.timedelta(seconds=20), t0 + 17 * minute + dt.timedelta(seconds=40))
            times = sweep(t0 + 11 * minute, t0 + 19 * minute)
            cancel(whole)
            clock.set_now(t0 + 13 * minute)
            assert maintenance.window_now(tenant) is None  # the cancel is a commit: applies at once
            again = sweep(t0 + 13 * minute + dt.timedelta(seconds=1), t0 + 14 * minute)
            clock.set_now(t0 + 20 * minute + dt.timedelta(seconds=10))
            assert maintenance.window_now(tenant) is None  # kept for 10:20 from here
            add(t0 + 20 * minute, t0 + 25 * minute)  # announced in the same minute, live already
            clock.set_now(t0 + 20 * minute + dt.timedelta(seconds=11))
            assert maintenance.window_now(tenant).end == t0 + 25 * minute
            if db_is_sqlite(app):
                # once a minute, except while the 10:16:20–10:17:40 window has a boundary inside the
                # minute: every call of 10:16 (9), of 10:17 until it is over (:04 … :39, and :46, the
                # first call without it, whose answer :53 gets)
                assert {m: n for m, n in times.items() if n != 1} == {16: 9, 17: 7}, times
                assert set(times) == set(range(11, 19))
                assert again == {13: 0}  # kept since the read right after the cancel
            else:
                assert set(times.values()) == {9} or set(times.values()) == {8, 9}  # every call
        finally:
            clock.set_now(None)
