"""Faults, each through the real server (gunicorn as the Procfile runs it, bench/harness.py),
driven over HTTP as a customer's browser without JavaScript would drive it: forms read from the
served page (CSRF on), the flow started by a registered app's authorization request, ④'s call
reported by the telephony provider's signed webhook.

- core banking slow past its timeout, then down, then back: No.4, the flow kept, no lock slot spent;
- SMTP down at consent: the consent stands, the mail is sent once after recovery;
- a worker killed, then the whole server killed and started again while the customer waits on ④;
- the server killed after ⑤ committed but before its answer left: the handle ⑤ rotated away stays
  refused (No-valid-procedure), by decision;
- the database refusing connections for a moment (PostgreSQL), at a request's start and while ②
  waits on core banking: No.4 as a 503, the flow not moved, nothing half-written but the lock's slot.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import http.server
import json
import os
import pathlib
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import text, update

from webapp import clock, messages
from webapp.mail.models import MailOutbox

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402

TENANT = "amami"
BRANCH, ACCOUNT_TYPE, NUMBER = "115", "1", "1100026"
NAME, BIRTH, PHONE, PIN = "ﾃﾞｰﾀ ﾀﾛｳ", dt.date(1980, 1, 1), "09011113333", "1234"
MAIL = "taro@example.jp"
REDIRECT_URI = "https://app.example/cb"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TITLE = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)


@pytest.fixture(autouse=True)
def real_clock(quiet_clock):
    """The server runs on the real clock: seed and read with real times too."""
    clock.set_now(None)


# --- the server, its database, the app that sends the customer -----------------------------------

def server_args(database_url: str | None = None, workers: int = 1) -> argparse.Namespace:
    return argparse.Namespace(database_url=database_url, workers=workers, threads=4)


@contextlib.contextmanager
def prepared(args: argparse.Namespace, **settings):
    """A harness workspace whose database has the schema, the customer and a registered app: (ws, app)."""
    from sqlmodel import Session

    from webapp import create_app, db
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount

    with harness.workspace(args, **settings) as ws:
        app = create_app(ws.app_config())
        db.create_all(app)
        with app.app_context(), Session(db.engine()) as s:
            key = AccountKey(TENANT, BRANCH, ACCOUNT_TYPE, NUMBER)
            s.add(SandboxAccount(tenant=TENANT, branch=BRANCH, account_type=ACCOUNT_TYPE, number=NUMBER,
                                 name_kana=NAME, birth_date=BIRTH, phone=PHONE, pin_hash=pin_hash(key, PIN),
                                 cash_card=True, status="active", balance=1_000_000))
            s.commit()
        result = app.test_cli_runner().invoke(args=[
            "clients", "add", "--tenant", TENANT, "--name", "しんくみアプリwith CRECO",
            "--operator", "アイ・ティ・リアライズ株式会社", "--redirect-uri", REDIRECT_URI])
        assert result.exit_code == 0, result.output
        app.extensions["db_engine"].dispose()
        yield ws, json.loads(result.output)


@contextlib.contextmanager
def serving(ws, args, log: pathlib.Path):
    """harness.serve with gunicorn's and the app's output in `log`; afterwards, no traceback in it
    (whatever the fault, the customer never met an unexpected failure)."""
    with harness.serve(ws, args, "--error-logfile", str(log), "--capture-output") as server:
        yield server
    logged = log.read_text(errors="replace")
    assert "Traceback" not in logged, logged[-3000:]


def write(ws, statement) -> None:
    from webapp import db

    engine = db.make_engine(ws.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    finally:
        engine.dispose()


def query(ws, sql: str, **params) -> list:
    from webapp import db

    engine = db.make_engine(ws.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


# --- the customer's browser --------------------------------------------------------------------

class Browser:
    """One customer's browser over HTTP: its cookie jar, and the CSRF token of the last page."""

    def __init__(self, origin: str):
        self.origin, self.http, self.csrf = origin, requests.Session(), None
        self.verifier, self.state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)

    def get(self, path: str, **kw) -> requests.Response:
        response = self.http.get(self.origin + path, timeout=30, **kw)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        return self.http.post(self.origin + path, data={"csrf_token": self.csrf, **(data or {})}, timeout=30,
                              allow_redirects=False)

    def poll(self) -> requests.Response:
        """④'s status area as htmx fetches it every 2 s."""
        return self.http.get(f"{self.origin}/{TENANT}/flow/call/status", timeout=10, allow_redirects=False,
                             headers={"HX-Request": "true", "HX-Target": "call-status"})

    def start(self, client_id: str) -> None:
        """The app sends the customer to ① (authorization code + PKCE S256)."""
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                           "scope": "accounts", "state": self.state, "code_challenge": challenge,
                           "code_challenge_method": "S256"})
        assert title(self.get(f"/{TENANT}/oauth/authorize?{query}")) == "API連携認証（ご利用口座情報入力）"

    def account(self) -> None:
        response = self.post(f"/{TENANT}/flow/account", {"branch": BRANCH, "account_type": ACCOUNT_TYPE,
                                                         "account_number": NUMBER})
        assert response.status_code == 303, response.text[:500]
        assert title(self.get(f"/{TENANT}/flow/customer")) == "API連携認証（お客様情報入力）"

    def customer(self) -> requests.Response:
        """② with the registered details, 次へ: the answer as it comes (303 to ③ when it passed)."""
        return self.post(f"/{TENANT}/flow/customer", {
            "name_kana": NAME, "birth_year": str(BIRTH.year), "birth_month": f"{BIRTH.month:02d}",
            "birth_day": f"{BIRTH.day:02d}", "phone": PHONE, "email": MAIL, "email_confirm": MAIL})

    def to_call_screen(self, client_id: str) -> str:
        """From the app to ④; the pool number to call, as the screen shows it (national digits)."""
        self.start(client_id)
        self.account()
        assert self.customer().status_code == 303
        self.get(f"/{TENANT}/flow/phone")
        assert self.post(f"/{TENANT}/flow/phone").status_code == 303
        page = self.get(f"/{TENANT}/flow/call")
        assert title(page) == "API連携認証（電話番号認証）"
        return re.search(r'class="button call-button" href="tel:([0-9]+)"', page.text).group(1)

    def confirm_call(self) -> requests.Response:
        """④ 「確定する」."""
        return self.post(f"/{TENANT}/flow/call")


def title(response: requests.Response) -> str | None:
    found = TITLE.search(response.text)
    return " ".join(found.group(1).split()) if found else None


def call_from_registered_phone(ws, pool_number: str) -> None:
    """The telephony provider reports the customer's call to the pool number (signed webhook)."""
    from webapp.callauth.twilio import compute_signature

    url = ws.origin + "/telephony/inbound"
    params = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + secrets.token_hex(16),
              "From": "+81" + PHONE[1:], "To": "+81" + pool_number[1:], "CallStatus": "ringing",
              "Direction": "inbound"}
    signature = compute_signature(url, params.items(), harness.TOKEN)
    response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
    assert response.status_code == 200 and "<Reject" in response.text


def assert_unavailable_page(response: requests.Response) -> None:
    """SPEC §3 No.4, as a page of its own with the union's contact, never a trace."""
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert messages.UNAVAILABLE in response.text
    assert "0997-52-7111" in response.text  # the union's contact, in the main content
    assert "Traceback" not in response.text


# --- 1. core banking slow, down, back -----------------------------------------------------------

class FakeGateway:
    """The union's core-banking gateway (webapp/corebanking/gateway.py's protocol) as a tiny HTTP
    server in a thread, knowing the one customer; `delay` makes it slow, stop()/start() take it away
    and bring it back on the same port."""

    def __init__(self):
        self.port, self.delay, self.calls, self.server = harness.free_port(), 0.0, 0, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.calls += 1
                time.sleep(gateway.delay)
                if self.path != "/identity/check":
                    self.send_error(404)
                    return
                same = (asked["number"], asked["birthDate"], asked["phone"]) == (NUMBER, BIRTH.isoformat(), PHONE)
                body = json.dumps({"result": "ok", "phone": PHONE} if same else {"result": "mismatch"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the product gave up waiting, as it should

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def test_core_banking_slow_or_down_shows_no4_keeps_the_flow_and_spends_no_lock_slot(tmp_path):
    gateway = FakeGateway()
    gateway.start()
    args = server_args()
    try:
        with prepared(args, CORE_BANKING_URL=gateway.url, CORE_BANKING_TIMEOUT_SECONDS=1) as (ws, client), \
                serving(ws, args, tmp_path / "server.log"):
            browser = Browser(ws.origin)
            browser.start(client["client_id"])
            browser.account()

            gateway.delay = 3.0  # slow: answers after 3 s, past the product's 1 s timeout
            started = time.monotonic()
            slow = browser.customer()
            assert_unavailable_page(slow)
            assert time.monotonic() - started < 2.9  # the worker was not held for the gateway's 3 s

            gateway.stop()  # down: the connection is refused
            assert_unavailable_page(browser.customer())

            # The flow stands on ② and no slot of the account's lock was spent.
            assert title(browser.get(f"/{TENANT}/flow/customer")) == "API連携認証（お客様情報入力）"
            assert query(ws, "SELECT failures FROM account_lock")[0].failures == 0

            gateway.delay = 0.0
            gateway.start()  # back: the same browser goes on from ② to ③
            passed = browser.customer()
            assert passed.status_code == 303 and passed.headers["Location"].endswith(f"/{TENANT}/flow/phone")
            assert title(browser.get(f"/{TENANT}/flow/phone")) == "API連携認証（電話番号の確認）"
            checks = query(ws, "SELECT result, detail FROM operation_log WHERE event = 'identity_check' ORDER BY id")
            assert [(r.result, r.detail) for r in checks] == [("error", "core_unavailable")] * 2 + [("ok", None)]
            assert gateway.calls == 2  # the slow call and the good one; nothing reached it while down
    finally:
        gateway.stop()


# --- 2. SMTP down at consent ----------------------------------------------------------------------

class Mailbox:
    """An SMTP server (aiosmtpd) keeping what it receives; not running until start()."""

    def __init__(self, port: int):
        self.port, self.received, self.controller = port, [], None
        self.answer_after = 0.0  # seconds a message waits for the server's 250 (a slow relay)
        self.receiving = threading.Event()  # set when a message's data has arrived

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        self.receiving.set()
        await asyncio.sleep(self.answer_after)
        self.received.append(envelope)
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def send_pending(ws) -> str:
    """`flask --app webapp mail send-pending` once, as cron runs it, against the server's database."""
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "mail", "send-pending"],
                            cwd=harness.ROOT, env=ws.server_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def wait_for(what, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while not (found := what()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def at_consent(ws, client) -> Browser:
    """A customer's browser through ① to ⑤ (the call made from the registered phone), on ⑥."""
    browser = Browser(ws.origin)
    pool_number = browser.to_call_screen(client["client_id"])
    call_from_registered_phone(ws, pool_number)
    assert browser.confirm_call().status_code == 303
    browser.get(f"/{TENANT}/flow/pin")
    assert browser.post(f"/{TENANT}/flow/pin", {"pin": PIN}).status_code == 303
    assert title(browser.get(f"/{TENANT}/flow/consent")) == "API連携認証（情報連携認可）"
    return browser


def test_smtp_down_at_consent_the_consent_stands_and_the_mail_goes_once_after_recovery(tmp_path):
    args = server_args()
    mailbox = Mailbox(harness.free_port())  # nothing listens there yet: SMTP is down
    with prepared(args, MAIL_SERVER="127.0.0.1", MAIL_PORT=mailbox.port, MAIL_TIMEOUT_SECONDS=2) as (ws, client), \
            serving(ws, args, tmp_path / "server.log"):
        browser = at_consent(ws, client)

        allowed = browser.post(f"/{TENANT}/flow/consent", {"agree": "y"})  # 許可する

        # The consent stands: back to the app with a code that buys a token.
        assert allowed.status_code == 303
        back = urlsplit(allowed.headers["Location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
        answer = parse_qs(back.query)
        assert answer["state"] == [browser.state]
        token = requests.post(f"{ws.origin}/{TENANT}/oauth/token", auth=(client["client_id"], client["client_secret"]),
                              data={"grant_type": "authorization_code", "code": answer["code"][0],
                                    "redirect_uri": REDIRECT_URI, "code_verifier": browser.verifier}, timeout=30)
        assert token.status_code == 200 and token.json()["access_token"]

        # The send right after the consent met the closed port: the mail waits in the outbox.
        row = wait_for(lambda: [r for r in query(ws, "SELECT state, attempts, last_error, message_id FROM mail_outbox")
                                if r.last_error])
        assert row and (row[0].state, row[0].attempts) == ("pending", 1) and "ConnectionRefused" in row[0].last_error
        message_id = row[0].message_id

        mailbox.start()  # SMTP is back
        try:
            assert send_pending(ws) == "sent 0, retrying 0, failed 0"  # its back-off minute has not passed
            write(ws, update(MailOutbox).values(next_attempt_at=clock.now()))  # … now it has
            assert send_pending(ws) == "sent 1, retrying 0, failed 0"
            assert send_pending(ws) == "sent 0, retrying 0, failed 0"
        finally:
            mailbox.stop()
        assert len(mailbox.received) == 1
        assert mailbox.received[0].rcpt_tos == [MAIL]
        assert f"Message-ID: {message_id}" in mailbox.received[0].content.decode("ascii", "replace")
        assert [r.state for r in query(ws, "SELECT state FROM mail_outbox")] == ["sent"]


def test_smtp_hung_at_consent_holds_no_request_thread(tmp_path):
    """One worker with one thread: were the mail sent on a request's thread, the hung server would
    hold it for MAIL_TIMEOUT_SECONDS and the app's token request would wait as long."""
    import socket

    hung = socket.socket()  # accepts connections (the kernel's backlog) and never says a word
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    args = argparse.Namespace(database_url=None, workers=1, threads=1)
    try:
        with prepared(args, MAIL_SERVER="127.0.0.1", MAIL_PORT=hung.getsockname()[1], MAIL_TIMEOUT_SECONDS=120) \
                as (ws, client), serving(ws, args, tmp_path / "server.log"):
            browser = at_consent(ws, client)

            allowed = browser.post(f"/{TENANT}/flow/consent", {"agree": "y"})  # 許可する

            assert allowed.status_code == 303
            code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
            # The only thread answers the app at once while the mail waits on the hung server.
            token = requests.post(f"{ws.origin}/{TENANT}/oauth/token", auth=(client["client_id"], client["client_secret"]),
                                  data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                                        "code_verifier": browser.verifier}, timeout=30)
            assert token.status_code == 200 and token.json()["access_token"]
            assert browser.get(f"/{TENANT}/faq").status_code == 200
            [row] = query(ws, "SELECT state, attempts FROM mail_outbox")
            assert (row.state, row.attempts) == ("pending", 1)  # claimed by the sender thread, still waiting
    finally:
        hung.close()


def test_a_worker_stopping_finishes_the_mail_it_is_sending_first(tmp_path):
    """gunicorn stopped (SIGTERM) while the worker's sender waits for a slow relay's answer: the
    worker gives it time (webapp/mail/courier.py DRAIN_SECONDS), so the row is marked sent."""
    args = server_args()
    mailbox = Mailbox(harness.free_port())
    mailbox.answer_after = 2.0
    mailbox.start()
    try:
        with prepared(args, MAIL_SERVER="127.0.0.1", MAIL_PORT=mailbox.port, MAIL_TIMEOUT_SECONDS=30) as (ws, client):
            with serving(ws, args, tmp_path / "server.log"):
                browser = at_consent(ws, client)
                assert browser.post(f"/{TENANT}/flow/consent", {"agree": "y"}).status_code == 303
                assert mailbox.receiving.wait(10)  # the relay has the message and has not answered yet
            # leaving `serving` stopped gunicorn and waited for it
            assert [r.rcpt_tos for r in mailbox.received] == [[MAIL]]
            assert [(r.state, r.attempts) for r in query(ws, "SELECT state, attempts FROM mail_outbox")] == [("sent", 1)]
    finally:
        mailbox.stop()


# --- 3. a worker killed, the server restarted, while the customer waits on ④ ------------------------

def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def kill_server(master) -> None:
    """SIGKILL gunicorn's master first (so it cannot start a worker to replace one killed), then
    the workers it had: no process is left holding the listening socket."""
    workers = children(master.pid)
    os.kill(master.pid, signal.SIGKILL)
    master.wait(timeout=10)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Poller:
    """④'s status area polled from the customer's browser all along, in a thread: what each poll got."""

    def __init__(self, browser: Browser):
        self.browser, self.seen, self.running = browser, [], True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                response = self.browser.poll()
                self.seen.append((response.status_code, response.text))
            except requests.RequestException as e:
                self.seen.append((type(e).__name__, ""))
            time.sleep(0.05)

    def stop(self) -> list:
        self.running = False
        self.thread.join(timeout=15)
        return self.seen


def test_worker_killed_and_server_restarted_while_waiting_on_call_the_customer_goes_on(tmp_path):
    from webapp.callauth.service import CALL_SEEN, WAITING_TEXT

    args = server_args(workers=2)
    with prepared(args) as (ws, client):
        with serving(ws, args, tmp_path / "first.log") as first:
            browser = Browser(ws.origin)
            pool_number = browser.to_call_screen(client["client_id"])
            poller = Poller(browser)
            assert wait_for(lambda: len(poller.seen) >= 5)

            workers = wait_for(lambda: len(children(first.pid)) == 2 and children(first.pid))
            os.kill(workers[0], signal.SIGKILL)  # one worker dies mid-poll; the master starts another
            assert wait_for(lambda: len(set(children(first.pid)) - set(workers)) == 1)
            polled = len(poller.seen)
            assert wait_for(lambda: len(poller.seen) >= polled + 5)

            kill_server(first)  # then the whole server, as a host crash
            assert wait_for(lambda: poller.seen[-1][0] == "ConnectionError")

        with serving(ws, args, tmp_path / "again.log"):  # started again: same port, same database
            assert wait_for(lambda: poller.seen[-1][0] == 200, seconds=30)
            again = browser.get(f"/{TENANT}/flow/call")  # a reload shows the same attempt, same number
            assert title(again) == "API連携認証（電話番号認証）" and f'href="tel:{pool_number}"' in again.text

            call_from_registered_phone(ws, pool_number)
            assert wait_for(lambda: CALL_SEEN in poller.seen[-1][1])
            seen = poller.stop()

            confirmed = browser.confirm_call()  # 「確定する」
            assert confirmed.status_code == 303 and confirmed.headers["Location"].endswith(f"/{TENANT}/flow/pin")
            assert title(browser.get(f"/{TENANT}/flow/pin")) == "API連携認証（キャッシュカード暗証番号認証）"

    answers = [status for status, _ in seen]
    assert "ConnectionError" in answers  # the customer's polls that found no server
    # never a 5xx; a poll the SIGKILL cut off mid-answer ends in ChunkedEncodingError, like one that found no server
    assert all(status in (200, "ConnectionError", "ChunkedEncodingError") for status in answers), set(answers)
    assert all(WAITING_TEXT in page or CALL_SEEN in page for status, page in seen if status == 200)



def test_worker_killed_after_a_stage_committed_the_handle_it_rotated_away_stays_refused(tmp_path):
    """A stage's answer lost after its commit leaves the browser with the flow handle the stage
    rotated away. That handle stays refused, by decision (README, Faults): accepting it until the
    new one is first used would let anyone else holding it (a handle fixed in the customer's browser
    by someone polling with it) race the customer to the next screen after the customer's own PIN.
    The customer reads No-valid-procedure and starts again from the app; the flow is where its
    commit left it, and the old handle never reaches ⑤ or ⑥."""
    # ⑤'s answer leaves IDENTITY_CHECK_SECONDS after the request came in: here 2 s after the PIN
    # check committed the move to ⑥, a window wide enough to kill the server in.
    args = server_args()
    with prepared(args, IDENTITY_CHECK_SECONDS=2) as (ws, client):
        with serving(ws, args, tmp_path / "first.log") as first:
            browser = Browser(ws.origin)
            call_from_registered_phone(ws, browser.to_call_screen(client["client_id"]))
            assert browser.confirm_call().status_code == 303
            browser.get(f"/{TENANT}/flow/pin")
            answers = []
            pressing = threading.Thread(target=lambda: answers.append(_quietly(
                lambda: browser.post(f"/{TENANT}/flow/pin", {"pin": PIN}))))
            pressing.start()
            assert wait_for(lambda: query(ws, "SELECT step FROM flow")[0].step == "consent")
            kill_server(first)
            pressing.join(timeout=10)
            assert answers == ["ConnectionError"]  # the customer never got ⑤'s answer
        with serving(ws, args, tmp_path / "again.log"):
            # The customer reloads, then tries ⑥ by hand: the cookie still holds the handle from before ⑤.
            for screen in ("pin", "consent"):
                page = browser.get(f"/{TENANT}/flow/{screen}")
                assert page.status_code == 400 and messages.NO_FLOW in page.text
                assert title(page) != "API連携認証（情報連携認可）"
            assert [tuple(row) for row in query(ws, "SELECT step, ended_at FROM flow")] == [("consent", None)]


def _quietly(request) -> object:
    try:
        return request()
    except requests.RequestException as e:
        return type(e).__name__

# --- 4. the database refusing connections for a moment --------------------------------------------

@contextlib.contextmanager
def database_refusing_connections(url: str):
    """PostgreSQL refuses new connections to the server's database and ends the ones it has, until the
    block ends (as during a fail-over or a restart of the database server)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    maintenance = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    try:
        yield
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.postgres
def test_database_unavailable_for_a_moment_gives_a_clear_page_and_no_half_written_rows(pg_url, tmp_path):
    args = server_args(database_url=pg_url)
    with prepared(args) as (ws, client), serving(ws, args, tmp_path / "server.log"):
        browser = Browser(ws.origin)
        pool_number = browser.to_call_screen(client["client_id"])
        call_from_registered_phone(ws, pool_number)

        def state():
            flow = query(ws, "SELECT f.step, a.state FROM flow f JOIN call_attempt a ON a.flow_id = f.id")
            confirms = query(ws, "SELECT result FROM operation_log WHERE event = 'call_confirm'")
            return [tuple(r) for r in flow], [r.result for r in confirms]

        assert state() == ([("call", "confirmed")], [])
        with database_refusing_connections(ws.database_url):
            refused = browser.confirm_call()  # 「確定する」 while the database is away
            polled = browser.poll()
        assert_unavailable_page(refused)
        # ④'s status area says why, and keeps polling (htmx swaps 503s: base.html's htmx-config).
        assert polled.status_code == 503 and messages.UNAVAILABLE in polled.text
        assert 'id="call-status"' in polled.text and 'hx-trigger="every 2s"' in polled.text
        assert state() == ([("call", "confirmed")], [])  # nothing of that request was written

        confirmed = browser.confirm_call()  # the same button again, the database back
        assert confirmed.status_code == 303 and confirmed.headers["Location"].endswith(f"/{TENANT}/flow/pin")
        assert state() == ([("pin", "used")], ["ok"])


@pytest.mark.postgres
def test_database_lost_during_the_core_banking_call_gives_a_clear_page_and_the_flow_stays_on_customer(
        pg_url, tmp_path):
    gateway = FakeGateway()
    gateway.start()
    args = server_args(database_url=pg_url)
    try:
        with prepared(args, CORE_BANKING_URL=gateway.url) as (ws, client), \
                serving(ws, args, tmp_path / "server.log"):
            browser = Browser(ws.origin)
            browser.start(client["client_id"])
            browser.account()
            gateway.delay = 2.0
            answers = []
            pressing = threading.Thread(target=lambda: answers.append(browser.customer()))
            pressing.start()  # 次へ on ②: the lock's slot is taken, then core banking is asked …
            assert wait_for(lambda: gateway.calls == 1)
            with database_refusing_connections(ws.database_url):  # … and the database goes away meanwhile
                pressing.join(timeout=30)
            assert_unavailable_page(answers[0])

            def rows():
                return (query(ws, "SELECT step FROM flow")[0].step,
                        [r.result for r in query(ws, "SELECT result FROM operation_log WHERE event = 'identity_check'")],
                        query(ws, "SELECT failures FROM account_lock")[0].failures)

            # The flow did not move and no check was logged; the slot taken before core banking was
            # asked could not be given back (README, Faults: known limits).
            assert rows() == ("customer", [], 1)
            gateway.delay = 0.0
            assert browser.customer().status_code == 303  # the same browser, ② again: on to ③
            assert rows() == ("phone", ["ok"], 1)
    finally:
        gateway.stop()
