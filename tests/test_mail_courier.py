"""The mails requests kick go out from the process's sender thread (webapp/mail/courier.py): a slow
or hung mail server holds no request thread, mails queued together share one connection, a full
queue or an exiting process loses nothing. Against a real SMTP server on loopback."""
from __future__ import annotations

import logging
import pathlib
import subprocess
import sys
import textwrap
import threading

import pytest

from webapp.mail import kick, send_pending
from webapp.mail.courier import Courier
from webapp.mail.sender import send_quietly
from webapp.mail.transport import MailTransport

from mail_support import app_config, smtp, smtp_port  # noqa: F401  (fixtures: SMTP on loopback)
from mail_support import completed_flow, outbox, queue

ROOT = pathlib.Path(__file__).resolve().parent.parent


class HeldServer(MailTransport):
    """The app's mail server behind a gate: a connection waits until `release()`, as a hung relay
    holds its client. Records which threads connected."""

    def __init__(self, real: MailTransport):
        self.real = real
        self.gate = threading.Event()
        self.waiting = threading.Semaphore(0)
        self.threads: list[str] = []

    def connect(self):
        self.threads.append(threading.current_thread().name)
        self.waiting.release()
        assert self.gate.wait(30), "never released"
        return self.real.connect()

    def release(self):
        self.gate.set()


@pytest.fixture
def held(app):
    server = HeldServer(app.extensions["mail_transport"])
    app.extensions["mail_transport"] = server
    yield server
    server.release()


@pytest.fixture
def kicking(app):
    """GET /_test/kick/<row>: what ⑥ does after its commit; the response must be closed to kick."""

    @app.get("/_test/kick/<int:row_id>")
    def kick_row(row_id):
        kick(row_id)
        return "", 303, {"Location": "https://app.example/cb?code=x"}

    client = app.test_client()

    def request(row_id: int) -> None:
        with client.get(f"/_test/kick/{row_id}") as response:
            assert response.status_code == 303

    return request


def in_thread(work) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def rows(app, count: int) -> list[int]:
    return [queue(app, completed_flow(app, email_address=f"c{n}@example.jp")) for n in range(count)]


def test_a_hung_mail_server_holds_no_request_thread(app, smtp, held, kicking):
    first, second = rows(app, 2)

    # With the mail server hung, each request's response still closes: the send is not on its thread.
    for row_id in (first, second):
        closing = in_thread(lambda: kicking(row_id))
        closing.join(10)
        assert not closing.is_alive(), "the request's thread waited for the mail server"
    assert held.waiting.acquire(timeout=10)  # the sender thread is the one waiting
    assert held.threads == ["mail-courier"]
    assert smtp.messages == [] and {r.state for r in outbox(app)} == {"pending"}

    held.release()
    assert app.extensions["mail_courier"].join(timeout=30)
    assert sorted(rcpt for e in smtp.handler.envelopes for rcpt in e.rcpt_tos) == ["c0@example.jp", "c1@example.jp"]
    assert {r.state for r in outbox(app)} == {"sent"}


def test_mails_queued_while_the_sender_is_busy_go_out_over_one_connection(app, smtp, held, kicking):
    first, *later = rows(app, 4)
    kicking(first)
    assert held.waiting.acquire(timeout=10)  # the sender is held on the first mail's connection
    for row_id in later:
        kicking(row_id)

    held.release()
    assert app.extensions["mail_courier"].join(timeout=30)

    assert held.threads == ["mail-courier", "mail-courier"]  # the first alone, then the three queued together
    assert len(smtp.messages) == 4
    assert [(r.state, r.attempts) for r in outbox(app)] == [("sent", 1)] * 4


def test_a_full_queue_leaves_the_mail_pending_for_the_scheduled_run(app, smtp, held, kicking, caplog):
    app.extensions["mail_courier"] = Courier(lambda ids: send_quietly(app, ids), size=1)
    sending, queued, overflow = rows(app, 3)
    kicking(sending)
    assert held.waiting.acquire(timeout=10)  # taken off the queue, held at the mail server
    kicking(queued)  # fills the queue

    with caplog.at_level(logging.WARNING, logger="webapp.mail.courier"):
        kicking(overflow)  # the customer's redirect is unaffected (kicking checks the 303)

    assert f"mail {overflow}: the send queue is full" in caplog.text
    held.release()
    assert app.extensions["mail_courier"].join(timeout=30)
    assert {r.id: (r.state, r.attempts) for r in outbox(app)} == {
        sending: ("sent", 1), queued: ("sent", 1), overflow: ("pending", 0)}

    with app.app_context():
        assert send_pending().sent == 1
    assert len(smtp.messages) == 3


def test_the_sender_thread_ends_when_idle_and_a_later_kick_starts_another(app, smtp):
    courier = Courier(lambda ids: send_quietly(app, ids), idle_seconds=0.05)
    first, second = rows(app, 2)

    def courier_threads():
        return [t for t in threading.enumerate() if t.name == "mail-courier" and t._target.__self__ is courier]

    courier.put(first)
    assert courier.join(timeout=30)
    for thread in courier_threads():
        thread.join(10)
    assert courier_threads() == []

    courier.put(second)
    assert courier.join(timeout=30)
    assert [r.state for r in outbox(app)] == ["sent", "sent"]


EXIT_RIGHT_AFTER_KICKS = textwrap.dedent("""\
    import sys
    sys.path.insert(0, "tests")
    import conftest
    from mail_support import completed_flow, queue

    app = conftest.make_app(sys.argv[1], MAIL_SUPPRESS_SEND=False, MAIL_SERVER="127.0.0.1",
                            MAIL_PORT=int(sys.argv[2]), MAIL_TIMEOUT_SECONDS=5)
    for n in range(3):
        app.extensions["mail_courier"].put(queue(app, completed_flow(app, email_address=f"c{n}@example.jp")))
    sys.exit(0)  # as a gunicorn worker leaves after a graceful stop
""")


def test_a_process_exiting_cleanly_sends_what_it_had_queued_first(app, smtp, smtp_port, database_url):
    result = subprocess.run([sys.executable, "-c", EXIT_RIGHT_AFTER_KICKS, database_url, str(smtp_port)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)

    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(rcpt for e in smtp.handler.envelopes for rcpt in e.rcpt_tos) == [
        "c0@example.jp", "c1@example.jp", "c2@example.jp"]
    assert [r.state for r in outbox(app)] == ["sent"] * 3


def test_a_server_found_down_ends_the_batch_and_leaves_the_rest_untouched(app, smtp, held, kicking):
    first, *later = rows(app, 4)
    kicking(first)
    assert held.waiting.acquire(timeout=10)
    for row_id in later:
        kicking(row_id)
    smtp.stop()

    held.release()
    assert app.extensions["mail_courier"].join(timeout=30)

    # One try for the first mail, one for the batch: its first mail's attempt is counted, the rest wait untried.
    assert held.threads == ["mail-courier", "mail-courier"]
    assert [(r.state, r.attempts) for r in outbox(app)] == [("pending", 1), ("pending", 1), ("pending", 0),
                                                            ("pending", 0)]
