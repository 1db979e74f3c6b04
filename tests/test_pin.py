"""⑤ SOA211 キャッシュカード暗証番号認証: the PIN, checked under the same lock as ②, never kept anywhere."""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from conftest import DEMO, FlowActions, add_account, text_of
from test_oauth_support import CHALLENGE, allow, at_pin, exchange, latest_flow, pin, query, set_step
from webapp import db, lockout, messages
from webapp.corebanking import AccountKey
from webapp.oplog import OperationLog

KEY = AccountKey("amami", "115", "1", "1100026")


def test_pin_screen_shows_the_manual_text_and_a_masked_numeric_field(amami):
    html = text_of(at_pin(amami))
    assert "API連携認証（キャッシュカード暗証番号認証）" in html
    assert "キャッシュカード暗証番号での認証を行います。" in html
    assert "画面ID : SOA211" in html
    field = re.search(r"<input id=\"pin\"[^>]*>", html).group(0)
    assert 'type="password"' in field and 'inputmode="numeric"' in field and 'autocomplete="off"' in field
    assert re.search(r'<label for="pin">.*キャッシュカードの暗証番号</label>', html)
    assert "中止する" in html and "次へ" in html


def test_pin_screen_is_refused_before_the_call_step(amami):
    amami.start()
    amami.account()
    amami.customer()
    response = amami.get("flow/pin")
    assert response.status_code == 303
    assert not response.headers["Location"].endswith("/flow/pin")


def test_correct_pin_leads_to_consent(amami):
    at_pin(amami)
    response = pin(amami)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/amami/flow/consent")
    assert "（情報連携認可）" in text_of(amami.get("flow/consent"))


def test_full_width_pin_is_accepted(amami):
    at_pin(amami)
    assert pin(amami, "１２３４").status_code == 303


def test_wrong_pin_gets_error_2(amami):
    at_pin(amami)
    response = pin(amami, "9999")
    assert response.status_code == 200
    assert messages.IDENTITY_MISMATCH in text_of(response)
    assert latest_flow(amami.app).step == "pin"


def test_wrong_pin_is_never_echoed(amami):
    at_pin(amami)
    for entered in ("9876", "98a7", "98765"):
        html = text_of(pin(amami, entered))
        assert entered not in html
        assert not re.search(r'<input id="pin"[^>]*value=', html)


def test_missing_pin_shows_the_error_dialog(amami):
    at_pin(amami)
    html = text_of(pin(amami, ""))
    assert "<dialog open" in html and "エラー" in html
    assert messages.MISSING_FIELDS in html and messages.REQUIRED in html


def test_pin_with_letters_gets_a_format_message(amami):
    at_pin(amami)
    html = text_of(pin(amami, "12ab"))
    assert "半角数字4桁で入力して下さい。" in html
    assert messages.IDENTITY_MISMATCH not in html


def test_htmx_pin_error_gets_only_the_partial(amami):
    at_pin(amami)
    response = pin(amami, "9999", htmx=True)
    html = text_of(response)
    assert html.lstrip().startswith('<div id="screen"') and "<html" not in html
    assert messages.IDENTITY_MISMATCH in html


def test_success_on_customer_screen_keeps_the_count_so_the_third_wrong_pin_locks(amami):
    amami.start(code_challenge=CHALLENGE)
    amami.account()
    for _ in range(2):
        assert messages.IDENTITY_MISMATCH in text_of(amami.customer(birth_year="1999"))
    assert amami.customer().status_code == 303  # a passed ② does not reset the count ...
    set_step(amami.app, "pin")
    amami.get("flow/pin")
    for _ in range(2):
        assert messages.IDENTITY_MISMATCH in text_of(pin(amami, "9999"))
    html = text_of(pin(amami, "9999"))  # ... so the 5th consecutive failure (2 on ②, 3 on ⑤) locks
    assert messages.LOCKED_NOW in html
    html = text_of(pin(amami, DEMO["amami"]["pin"]))
    assert messages.LOCKED in html and messages.LOCKED_REASON in html


def test_correct_pin_resets_the_count(amami):
    at_pin(amami)
    for _ in range(4):
        assert messages.IDENTITY_MISMATCH in text_of(pin(amami, "9999"))
    assert pin(amami).status_code == 303
    with amami.app.app_context():
        assert db.session().exec(select(lockout.AccountLock)).one().failures == 0


def test_failures_on_customer_screen_and_pin_screen_add_up_to_the_lock(app, client, customers):
    # One flow stands at ⑤; another flow on the same account fails ② three times; two wrong PINs lock.
    at_five = FlowActions(app, client, "amami")
    at_pin(at_five)
    other = FlowActions(app, app.test_client(), "amami")
    other.start()
    other.account()
    for _ in range(3):
        assert messages.IDENTITY_MISMATCH in text_of(other.customer(birth_year="1999"))
    assert messages.IDENTITY_MISMATCH in text_of(pin(at_five, "9999"))
    assert messages.LOCKED_NOW in text_of(pin(at_five, "9999"))
    with app.app_context():
        assert lockout.is_locked(db.session(), KEY, 5)
    html = text_of(other.customer())
    assert messages.LOCKED in html and messages.LOCKED_REASON in html


def test_sixth_wrong_pin_gets_b84_and_the_core_is_not_asked(amami):
    at_pin(amami)
    for _ in range(5):
        pin(amami, "9999")
    calls = []
    core = amami.app.extensions["core_banking"]
    original = core.check_pin
    core.check_pin = lambda *a: calls.append(a) or original(*a)
    try:
        html = text_of(pin(amami, DEMO["amami"]["pin"]))
    finally:
        core.check_pin = original
    assert messages.LOCKED in html and messages.LOCKED_REASON in html
    assert calls == []
    assert latest_flow(amami.app).step == "pin"


class CountingCore:
    """Wraps the sandbox core banking and counts the PIN checks that reach it."""

    def __init__(self, inner):
        self.inner, self.pin_checks, self._lock = inner, 0, threading.Lock()

    def check_pin(self, key, pin):
        with self._lock:
            self.pin_checks += 1
        return self.inner.check_pin(key, pin)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _parallel_wrong_pins(app, n=100):
    app.config["IDENTITY_CHECKS_PER_IP"] = "10000 per minute"
    app.config["GLOBAL_REQUEST_LIMIT"] = "10000 per second"
    actions = FlowActions(app, app.test_client(), "amami")
    at_pin(actions)
    counting = CountingCore(app.extensions["core_banking"])
    app.extensions["core_banking"] = counting
    cookie = actions.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    barrier = threading.Barrier(n)

    def attempt(_):
        c = app.test_client()
        c.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        barrier.wait()
        return c.post("/amami/flow/pin", data={"csrf_token": actions.csrf, "pin": "9999"}).get_data(as_text=True)

    with ThreadPoolExecutor(max_workers=n) as pool:
        pages = list(pool.map(attempt, range(n)))
    app.extensions["core_banking"] = counting.inner
    return counting.pin_checks, pages


def test_parallel_wrong_pins_evaluate_at_most_five_on_sqlite(app, customers):
    checks, pages = _parallel_wrong_pins(app)
    assert checks <= 5
    assert sum(messages.LOCKED_REASON in p for p in pages) >= 95
    assert sum(messages.LOCKED_NOW in p for p in pages) == 1


@pytest.mark.postgres
def test_parallel_wrong_pins_evaluate_at_most_five_on_postgres(pg_app):
    for tenant, c in DEMO.items():
        add_account(pg_app, tenant, **c)
    checks, pages = _parallel_wrong_pins(pg_app)
    assert checks <= 5
    assert sum(messages.LOCKED_REASON in p for p in pages) >= 95
    assert sum(messages.LOCKED_NOW in p for p in pages) == 1


UNUSUAL_PIN = "7391"  # no timestamp, id or amount of a test run contains it


@pytest.fixture
def unusual_customer(app):
    c = dict(DEMO["amami"], number="7700001", pin=UNUSUAL_PIN)
    add_account(app, "amami", **c)
    return c


def _db_bytes(app) -> bytes:
    """All the database holds: the SQLite file and its WAL; on PostgreSQL, every row of every table."""
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        with app.app_context(), Session(db.engine()) as s:
            tables = s.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
            return b"\n".join(row.encode() for table in tables
                              for row in s.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t')).scalars())
    path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    app.extensions["db_engine"].dispose()  # checkpoint nothing away: read the file and its WAL as they are
    data = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def test_pin_is_never_stored_logged_or_put_in_the_session(app, client, unusual_customer, caplog):
    caplog.set_level(logging.DEBUG)
    actions = FlowActions(app, client, "amami")
    actions.start(code_challenge=CHALLENGE)
    actions.account(number=unusual_customer["number"])
    assert actions.customer().status_code == 303
    set_step(app, "pin")
    actions.get("flow/pin")
    wrong = "7390"
    pin(actions, wrong)
    assert pin(actions, UNUSUAL_PIN).status_code == 303
    actions.get("flow/consent")
    code = query(allow(actions).headers["Location"])["code"]
    assert exchange(actions, code).status_code == 200

    standalone = re.compile(rb"(?<![0-9A-Za-z])(%s|%s)(?![0-9A-Za-z])" % (UNUSUAL_PIN.encode(), wrong.encode()))
    stored = _db_bytes(app)
    assert unusual_customer["number"].encode() in stored  # it did read the customer's rows
    assert not standalone.search(stored)
    with app.app_context(), Session(db.engine()) as s:
        for table in ("flow", "operation_log", "oauth_consent", "oauth_code", "oauth_token", "mail_outbox"):
            for row in s.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    assert not (isinstance(value, str) and standalone.search(value.encode())), (table, value)
        assert s.exec(select(OperationLog).where(OperationLog.screen == "SOA211")).all()
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    payload = cookie.split(".")[1] if cookie.startswith(".") else cookie.split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    session_json = zlib.decompress(raw) if cookie.startswith(".") else raw
    assert UNUSUAL_PIN.encode() not in session_json and wrong.encode() not in session_json
    json.loads(session_json)
    for record in caplog.records:
        assert UNUSUAL_PIN not in record.getMessage() and wrong not in record.getMessage()
