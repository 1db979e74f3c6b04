"""The account API's per-call work made cheaper (issue 13, round 5) answers exactly as before.

- The per-app limit is counted by the views themselves (views.per_app_limit, Limiter.count_limits),
  not by Flask-Limiter's decorator, before-request pass and after-request hook: every answer
  (status, headers, body bytes) is the one Flask-Limiter's own path gives, the 429 and its
  Retry-After included, but for its Retry-After on answers that ask nobody to wait; the calls are
  counted on Flask-Limiter's keys.
- The API reads on the request's plain connection (db.plain_rows), not an ORM session: a call builds
  no session and still logs its row; a session opened later in a request takes the reads over.
- The sandbox's transactions page is read with the DB-API cursor: the same rows as SQLAlchemy's
  (on SQLite and PostgreSQL), and on SQLite the same page bytes, first and next.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json

import flask
import flask_limiter
import pytest

from webapp import db, extensions
from webapp.corebanking import Transaction, sandbox

from test_api_service import api_log
from test_api_support import ApiActions, add_transactions, api, daily_rows, sandbox_account_id  # noqa: F401

TODAY = dt.date(2026, 11, 18)  # conftest's QUIET_TIME
TIMES = ("x-ratelimit-reset", "retry-after")  # seconds of the limiter's own clock, not the app's


@contextlib.contextmanager
def flask_limiters_own_path(app):
    """The API's per-app limit counted as Flask-Limiter itself counts a view's limits, for the block:
    its decorator (`limiter.limit(rate_limit, key_func=per_client)`, what the views carried before
    they counted it themselves) where views.per_app_limit counts, its own before-request pass over
    every endpoint, and its own after-request hook writing the X-RateLimit-* headers."""
    from webapp.api import views

    limiter = extensions.limiter
    manager = limiter.limit_manager
    hints, decorated = ({name: type(kept)(kept) for name, kept in mapping.items()}
                        for mapping in (manager._endpoint_hints, manager._decorated_limits))

    def counted_by_flask_limiter():  # its own name: the decorator keeps its limits by qualified name
        return None  # nothing for _interaction_and_log to write: Flask-Limiter's hook writes them

    stock_view = limiter.limit(views.rate_limit, key_func=views.per_client)(counted_by_flask_limiter)
    saved = list(app.before_request_funcs[None])
    ours = limiter._check_request_limit
    stock = functools.partial(flask_limiter.Limiter._check_request_limit, limiter)
    app.before_request_funcs[None] = [stock if f == ours else f for f in saved]
    assert app.before_request_funcs[None] != saved
    limiter._check_request_limit = stock  # what the decorator calls (through its weak proxy)
    limiter.count_limits = lambda text, *identifiers: stock_view()
    limiter._limit_headers = functools.partial(flask_limiter.Limiter._Limiter__inject_headers, limiter)
    limited = app.extensions.pop("rate_limited_endpoints", None)
    app.extensions["rate_limited_endpoints"] = extensions.ALL  # no endpoint filtered out before the decorator
    try:
        yield
    finally:
        app.before_request_funcs[None] = saved
        del limiter._check_request_limit, limiter.count_limits, limiter._limit_headers
        app.extensions.pop("rate_limited_endpoints")
        # the decorator left its limit, and the API's endpoints a hint of it, in the limiter every
        # later app shares: Flask-Limiter would resolve them on each call from then on
        manager._endpoint_hints, manager._decorated_limits = hints, decorated
        if limited is not None:
            app.extensions["rate_limited_endpoints"] = limited


def answer_of(response) -> tuple:
    """Status, every header and the body; the interaction id (new each call) and the limiter's
    times reduced to their names. Headers by name: where in the list the limiter's are written is
    no part of HTTP's meaning (RFC 9110 §5.3: only the order of fields with the same name is)."""
    headers = sorted((name, "-" if name.lower() in TIMES + ("x-fapi-interaction-id",) else value)
                     for name, value in response.headers.items())
    return response.status_code, headers, response.get_data()


def test_the_api_answers_as_with_flask_limiters_own_counting(api):
    app = api.app
    app.config["API_RATE_LIMIT"] = "2 per minute"
    add_transactions(app, sandbox_account_id(app), daily_rows(dt.date(2026, 11, 1), TODAY, 40))
    app.config["API_PAGE_SIZE"] = 300
    first = api.transactions().get_json()
    account_id = api.account_id()
    calls = {
        "accounts": lambda: api.get("accounts"),
        "balances": lambda: api.get("accounts/balances", accountId=account_id),
        "transactions": lambda: api.transactions(),
        "next page": lambda: api.transactions(nextItemKey=first["nextItemKey"]),
        "another account": lambda: api.get("accounts/balances", accountId="0" * len(account_id)),
        "bad date": lambda: api.transactions(dateFrom="2026-13-01"),
        "no token": lambda: api.get("accounts", token=None),
        "unknown token": lambda: api.get("accounts", token="no-such-token"),
        "openapi": lambda: api.get("openapi.json"),
        "over the limit": lambda: [api.get("accounts") for _ in range(3)][-1],
        "balances over the limit": lambda: [api.get("accounts/balances", accountId=account_id)
                                            for _ in range(3)][-1],
        "transactions over the limit": lambda: [api.transactions() for _ in range(3)][-1],
        "two windows": lambda: with_limit(app, "5 per hour; 2 per minute", lambda: api.get("accounts")),
        "two windows, the smaller passed": lambda: with_limit(
            app, "5 per hour; 2 per minute", lambda: [api.get("accounts") for _ in range(3)][-1]),
        "two windows, the larger passed": lambda: with_limit(
            app, "2 per hour; 5 per minute", lambda: [api.get("accounts") for _ in range(3)][-1]),
        "both passed, every limit counted": lambda: with_limit(
            app, "2 per hour; 2 per minute", lambda: [api.get("accounts") for _ in range(3)][-1],
            fail_on_first_breach=False),
    }
    statuses = {}
    for what, call in calls.items():
        extensions.limiter.reset()
        ours = call()
        extensions.limiter.reset()
        with flask_limiters_own_path(app):
            stock = call()
        if ours.status_code not in (429, 503) and "X-RateLimit-Limit" in stock.headers:
            # Flask-Limiter's hook writes Retry-After on every answer; ours only where it means something
            assert "Retry-After" in stock.headers and "Retry-After" not in ours.headers, what
            del stock.headers["Retry-After"]
        assert answer_of(ours) == answer_of(stock), what
        for name in TIMES:  # the same, within the second the two calls may straddle
            assert abs(float(ours.headers.get(name, "0")) - float(stock.headers.get(name, "0"))) <= 1, what
        statuses[what] = ours.status_code
    assert statuses == {"accounts": 200, "balances": 200, "transactions": 200, "next page": 200,
                        "another account": 404, "bad date": 400, "no token": 401, "unknown token": 401,
                        "openapi": 200, "over the limit": 429, "balances over the limit": 429,
                        "transactions over the limit": 429, "two windows": 200,
                        "two windows, the smaller passed": 429, "two windows, the larger passed": 429,
                        "both passed, every limit counted": 429}


def with_limit(app, limit: str, call, fail_on_first_breach: bool = True):
    """`call()` with API_RATE_LIMIT = `limit` (and RATELIMIT_FAIL_ON_FIRST_BREACH as given)."""
    saved = app.config["API_RATE_LIMIT"]
    app.config["API_RATE_LIMIT"] = limit
    extensions.limiter._fail_on_first_breach = fail_on_first_breach
    try:
        return call()
    finally:
        app.config["API_RATE_LIMIT"] = saved
        extensions.limiter._fail_on_first_breach = True


def test_the_api_limit_is_counted_without_flask_limiters_resolution_and_parsed_once(api, monkeypatch):
    """The per-app limit is counted by views.per_app_limit (Flask-Limiter's check resolves the
    exemption scope and the default, application, blueprint and decorated limits on every call),
    and its string is parsed once per value, not on every call."""
    stock, parsed = [], []
    real_check, real_parse = flask_limiter.Limiter._check_request_limit, extensions.parse_many
    monkeypatch.setattr(flask_limiter.Limiter, "_check_request_limit",
                        lambda self, *a, **k: stock.append(a) or real_check(self, *a, **k))
    monkeypatch.setattr(extensions, "parse_many", lambda text: parsed.append(text) or real_parse(text))
    extensions._sorted_limits.cache_clear()
    api.app.config["API_RATE_LIMIT"] = "7 per minute"
    assert [api.get("accounts").status_code for _ in range(8)] == [200] * 7 + [429]
    assert stock == [] and parsed == ["7 per minute"]
    api.app.config["API_RATE_LIMIT"] = "9 per minute"  # a new value is read (and parsed) at once
    assert api.get("accounts").headers["X-RateLimit-Limit"] == "9"
    assert parsed == ["7 per minute", "9 per minute"]


def test_the_invalid_token_limit_is_parsed_once_per_value(api, monkeypatch):
    from webapp.api import auth

    parsed = []
    real = auth.parse_limit
    monkeypatch.setattr(auth, "parse_limit", lambda text: parsed.append(text) or real(text))
    api.app.config["API_AUTH_FAILURES_PER_IP"] = "3 per 7 minutes"
    statuses = [api.get("accounts", token="not-a-token-we-issued").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429] and api.get("accounts").status_code == 429
    assert parsed == ["3 per 7 minutes"]


def test_the_api_limit_still_counts_every_call(api):
    api.app.config["API_RATE_LIMIT"] = "3 per minute"
    assert [api.get("accounts").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert api.get("accounts").headers["X-RateLimit-Remaining"] == "0"


def test_the_rate_limit_headers_come_from_the_calls_own_count_without_reading_the_storage_again(api, monkeypatch):
    """The per-app limit's hit leaves its count and its window's end (fixed windows, in memory on
    SQLite's run, in Redis on PostgreSQL's: one script, no GET and TTL after it); the X-RateLimit-*
    headers show them."""
    import time

    storage = type(extensions.limiter.limiter.storage)
    reads = []
    for name in ("get", "get_expiry"):
        real = getattr(storage, name)
        monkeypatch.setattr(storage, name, functools.partialmethod(
            lambda self, key, _name, _real: reads.append(_name) or _real(self, key), _name=name, _real=real))

    api.app.config["API_RATE_LIMIT"] = "3 per minute"
    answers = [api.get("accounts") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert reads == ["get"] * 4  # each call's invalid-token test only: no window read after the hit
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert {r.headers["X-RateLimit-Limit"] for r in answers} == {"3"}
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in answers}
    assert len(resets) == 1 and 0 < resets.pop() - time.time() <= 61  # the one window's end


def test_an_api_call_reads_without_an_orm_session_and_logs_its_row(api):
    with api.client:
        assert api.get("accounts").status_code == 200
        assert "db_session" not in flask.g and "db_plain" not in flask.g  # given back before the log
    assert [(row.event, row.result) for row in api_log(api.app)][-1] == ("accounts", "ok")


def test_a_session_opened_after_reads_takes_them_over(app):
    from sqlalchemy import bindparam, select

    from webapp.oauth.models import OAuthClient

    stmt = select(OAuthClient.client_id).where(OAuthClient.tenant == bindparam("tenant"))
    with app.test_request_context("/"):
        assert db.first_read(stmt, {"tenant": "nowhere"}) is None
        plain = flask.g.db_plain
        assert db.plain_dbapi() is plain and db.plain() is plain  # one connection for the request's reads
        session = db.session()
        assert "db_plain" not in flask.g
        assert db.plain_dbapi() is session.connection().connection.driver_connection
        assert db.first_read(stmt, {"tenant": "nowhere"}) is None and "db_plain" not in flask.g


def sqlalchemys_page(conn, stmt, params) -> list[Transaction]:
    """The page as the PostgreSQL path reads it, through SQLAlchemy."""
    return list(map(Transaction._make, conn.execute(stmt, params).all()))


def test_the_page_has_sqlalchemys_rows(api):
    """The transactions page as the sandbox reads it (SQLite: its own DB-API read; PostgreSQL:
    db.plain_rows made into Transactions) against SQLAlchemy's execution of the same statement."""
    from webapp.corebanking import AccountKey, core

    from conftest import DEMO

    add_transactions(api.app, sandbox_account_id(api.app),
                     daily_rows(dt.date(2026, 9, 1), TODAY, 7) + [(dt.date(2026, 9, 1), 9_000)])
    c = DEMO["amami"]
    key = AccountKey("amami", c["branch"], c["account_type"], c["number"])
    with api.app.test_request_context("/"):
        conn = db.engine().connect()
        params = {**sandbox._key_params(key), "date_from": dt.date(2026, 9, 1), "date_to": TODAY, "limit": 200}
        first = core().transactions(key, dt.date(2026, 9, 1), TODAY, None, 200)
        assert first == sqlalchemys_page(conn, sandbox._PAGE, params) and len(first) == 200
        after = first[-1].position
        second = core().transactions(key, dt.date(2026, 9, 1), TODAY, after, 200)
        expected = sqlalchemys_page(conn, sandbox._NEXT_PAGE,
                                    {**params, "after_date": after[0], "after_seq": after[1]})
        assert second == expected and second[0].seq < first[-1].seq
        assert all(type(t) is Transaction and type(t.date) is dt.date and type(t.value_date) is dt.date
                   for t in first + second)
        conn.close()


# Remarks the sandbox loader would refuse, written straight to the table: each one JSON must escape,
# or must not (kana, an emoji, U+2028), as orjson does.
# (NUL only on SQLite: PostgreSQL's text cannot hold it.)
AWKWARD_REMARKS = ('ﾌﾘｺﾐ "ﾃﾞ-ﾀ"', "back\\slash", "tab\tnew\nline\r", "\x01\x08\x0c\x1f\x7f", "絵文字🏦",
                   "\u2028\u2029", "</script>", "")


def test_the_sqlite_pages_write_the_same_bytes_as_sqlalchemys_rows(api, monkeypatch):
    """The transactions pages three ways, byte for byte: SQLite writing each row's JSON
    (transactions_json), the Transactions read by the DB-API cursor (_sqlite_page) made into dicts,
    and the Transactions SQLAlchemy reads, as on PostgreSQL. First and next pages, a window, the last
    page short of the page size, an empty day; awkward remarks and amounts up to a 64-bit integer."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from webapp.corebanking.models import SandboxTransaction

    account = sandbox_account_id(api.app)
    add_transactions(api.app, account, daily_rows(dt.date(2026, 10, 1), dt.date(2026, 11, 10), 12))
    with api.app.app_context(), Session(db.engine()) as s:
        on_sqlite = db.engine().dialect.name == "sqlite"
        awkward = AWKWARD_REMARKS + (("nul\x00",) if on_sqlite else ())
        s.execute(insert(SandboxTransaction), [
            {"account_id": account, "seq": 10_000 + i, "date": dt.date(2026, 11, 12),
             "value_date": dt.date(2026, 11, 13), "type": "2", "amount": 2**63 - 1 - i, "remarks": remarks,
             "balance": -(2**63) + i}
            for i, remarks in enumerate(awkward)])
        s.commit()
    api.app.config["API_PAGE_SIZE"] = 240  # 41 days of 12 rows and the awkward ones: 240, 240, the rest

    def pages():
        pages = [api.transactions()]
        while pages[-1].get_json()["hasNext"]:  # to the last page, short of the page size
            pages.append(api.transactions(nextItemKey=pages[-1].get_json()["nextItemKey"]))
        pages += [api.transactions(dateFrom="2026-11-01", dateTo="2026-11-12"),
                  api.transactions(dateFrom="2026-11-11", dateTo="2026-11-11")]
        assert all(page.status_code == 200 for page in pages)
        return [page.get_data() for page in pages]

    statements = []
    rows_read = sandbox._sqlite_rows
    monkeypatch.setattr(sandbox, "_sqlite_rows", lambda conn, stmt, params: statements.append(stmt) or
                        rows_read(conn, stmt, params))
    ours = pages()
    if on_sqlite:
        assert set(statements) == {sandbox._PAGE_JSON, sandbox._NEXT_PAGE_JSON}
    monkeypatch.setattr(sandbox.SandboxCoreBanking, "transactions_json", lambda *args: None)
    before = len(statements)
    assert pages() == ours
    if on_sqlite:
        assert set(statements[before:]) == {sandbox._PAGE, sandbox._NEXT_PAGE}

    def through_sqlalchemy(_dbapi_connection, stmt, params):
        with db.engine().connect() as conn:
            return sqlalchemys_page(conn, stmt, params)

    monkeypatch.setattr(sandbox, "_sqlite_page", through_sqlalchemy)
    assert pages() == ours
    written = b"".join(ours)
    assert b'"transactionDate":"2026-11-12","valueDate":"2026-11-13"' in written
    assert '"remarks":"ﾌﾘｺﾐ \\"ﾃﾞ-ﾀ\\""'.encode() in written and b'"remarks":"tab\\tnew\\nline\\r"' in written
    counts = [(json.loads(page)["hasNext"], json.loads(page)["count"]) for page in ours]
    assert counts[:-2] == [(True, 240), (True, 240), (False, 41 * 12 + len(awkward) - 480)]
    assert counts[-2] == (False, 10 * 12 + len(awkward)) and counts[-1] == (False, 0)
    assert ours[-1].endswith(b'"count":0,"transactions":[]}')


def test_the_sqlite_log_insert_stores_what_sqlalchemy_stores(app):
    """db.insert_committed (plain DB-API on SQLite) against the same rows through SQLAlchemy, read
    back as SQLite keeps them (the text of every column), and the write gate left open after a
    good batch and a failed one."""
    from sqlalchemy import text

    from webapp import clock, oplog

    with app.test_request_context("/amami/api/v1/accounts", headers={"User-Agent": "アプリ/1.0"}):
        engine = db.engine()
        if engine.dialect.name != "sqlite":
            pytest.skip("the plain DB-API insert is SQLite's")
        clock.set_now(dt.datetime(2026, 11, 18, 1, 2, 3, 456789, tzinfo=clock.JST))
        rows = [oplog._row(tenant="amami", screen="API", event="accounts", result="ok", detail="status=200",
                           client_id="client-1", branch="115", account_type="1", account_number="1100026"),
                oplog._row(tenant="amami", screen="API", event="balances", result="refused", detail=None)]
        rows.append(dict(rows[1], at=rows[1]["at"].replace(microsecond=0)))  # stored with its ".000000" too
        db.insert_committed(engine, oplog._INSERT, rows)
        with engine.begin() as conn:
            conn.execute(oplog._INSERT, rows)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT * FROM operation_log ORDER BY id").all()
        assert [tuple(r)[1:] for r in stored[:3]] == [tuple(r)[1:] for r in stored[3:]]
        assert stored[0].at == "2026-11-17 16:02:03.456789" and stored[0].user_agent == "アプリ/1.0"
        assert stored[2].at == "2026-11-17 16:02:03.000000"

        with pytest.raises(Exception):  # tenant is NOT NULL: the whole batch is refused
            db.insert_committed(engine, oplog._INSERT, [rows[0], dict(rows[1], tenant=None)])
        gate = db._WRITE_GATES[engine]
        assert gate._owner is None and not gate._lock.locked()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM operation_log")).scalar() == 6


def test_an_announced_window_closes_the_api_read_on_the_calls_own_connection(api):
    """The ad hoc windows are read on the call's plain connection (db.plain): one announced by staff
    answers 503 with its Retry-After at once, its cancelling reopens the API at once."""
    from sqlmodel import Session, select

    from webapp import clock, maintenance
    from webapp.staff.models import StaffAccount

    from staff_support import add_staff

    add_staff(api.app, "amami", "ops@amami.example")
    now = clock.now()
    with api.app.app_context(), Session(db.engine()) as s:
        staff_id = s.exec(select(StaffAccount.id)).first()
        window_id = maintenance.add(s, "amami", now - dt.timedelta(minutes=1), now + dt.timedelta(minutes=10),
                                    "臨時メンテナンス", staff_id).id
        s.commit()
    response = api.get("accounts")
    assert (response.status_code, response.get_json()["errorCode"]) == (503, "maintenance")
    assert response.headers["Retry-After"] == "600"
    with api.app.app_context(), Session(db.engine()) as s:
        assert maintenance.cancel(s, "amami", window_id, staff_id)
        s.commit()
    assert api.get("accounts").status_code == 200



def test_the_id_keys_are_derived_once_per_secret_and_follow_a_rotation(app):
    """accountId and nextItemKey's keys: the same bytes as deriving them on every call, and a new
    API_ID_KEY (or SECRET_KEY when it is unset) gives new ids at once."""
    import hashlib
    import hmac

    from webapp.api import keys
    from webapp.corebanking import AccountKey

    account = AccountKey("amami", "115", "1", "1100026")
    with app.app_context():
        secret = str(app.config.get("API_ID_KEY") or app.config["SECRET_KEY"])
        for purpose in (b"account-id/v1", b"next-item-key/v1"):
            assert keys._key(purpose) == hmac.new(secret.encode(), b"renkei/api/" + purpose, hashlib.sha256).digest()
        before, saved = keys.account_id("client-1", account), app.config.get("API_ID_KEY")
        app.config["API_ID_KEY"] = "rotated-" + secret
        try:
            after = keys.account_id("client-1", account)
            assert after != before and keys.same_account_id(after, "client-1", account)
        finally:
            app.config["API_ID_KEY"] = saved
        assert keys.account_id("client-1", account) == before
