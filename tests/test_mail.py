"""Completion mail (SPEC §2 ⑥, §5): one notice per completed flow, from the union's sender, never
lost while the mail server is down, never sent twice. Against a real SMTP server on loopback."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import socket
import threading
import time
import types
from email.utils import parseaddr

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from webapp import clock, db
from webapp.flow.models import Flow
from webapp.mail import MailOutbox, kick, queue_completion_mail
from webapp.mail import sender as mail_sender
from webapp.oauth.models import Consent, OAuthClient

from conftest import DEMO, QUIET_TIME
from mail_support import app_config, smtp, smtp_port  # noqa: F401  (fixtures: SMTP on loopback)
from mail_support import completed_flow, outbox, queue, send
from sql_support import writes_during

MINUTE = dt.timedelta(minutes=1)


# --- what the customer receives ---------------------------------------------------------------------

def test_completion_mail_reaches_the_address_from_screen_2_from_the_unions_sender(app, smtp):
    queue(app, completed_flow(app, "amami", "taro@example.jp"))

    report = send(app)

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [envelope] = smtp.handler.envelopes
    assert envelope.mail_from == "noreply@webcenter.anser.or.jp"
    assert envelope.rcpt_tos == ["taro@example.jp"]
    [msg] = smtp.messages
    assert parseaddr(msg["From"]) == ("奄美信用組合 API連携認証", "noreply@webcenter.anser.or.jp")
    assert msg["To"] == "taro@example.jp"
    assert msg["Subject"] == "【奄美信用組合】API連携認証完了のお知らせ"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Message-ID"].endswith("@webcenter.anser.or.jp>")
    [row] = outbox(app)
    assert row.state == "sent" and row.sent_at == clock.now() and row.attempts == 1


def test_completion_mail_names_the_app_the_masked_account_the_period_and_how_to_revoke(app, smtp):
    queue(app, completed_flow(app, "amami"))
    send(app)

    body = smtp.messages[0].get_content()
    assert "しんくみアプリwith CRECO" in body
    assert "アイ・ティ・リアライズ株式会社" in body
    assert "店番 115 普通預金 ****026" in body
    assert "口座情報・明細情報へのアクセス" in body
    # QUIET_TIME is 2026-11-18 14:00 JST; the consent lasts 30 days
    assert "2026年11月18日 14:00 ～ 2026年12月18日 14:00（30日間）" in body
    assert "連携を解除" in body and "企画部 ITシステム課" in body
    assert "0997-52-7111" in body and "平日の午前9時～17時" in body
    assert "お心当たりのない場合" in body and "破棄" in body and "至急下記お問い合わせ先までお電話ください" in body


def test_completion_mail_never_carries_the_pin_the_phone_or_the_full_account_number(app, smtp):
    queue(app, completed_flow(app, "amami"))
    send(app)

    raw = smtp.handler.envelopes[0].content.decode("ascii")
    text = smtp.messages[0].as_string() + smtp.messages[0].get_content()
    for secret in (DEMO["amami"]["pin"], DEMO["amami"]["phone"], "9011113333", "1100026", "ﾃﾞｰﾀ ﾀﾛｳ"):
        assert secret not in text and secret not in raw
    with app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(MailOutbox)).one()
        assert DEMO["amami"]["pin"] not in row.body and DEMO["amami"]["phone"] not in row.body


def test_each_union_sends_its_own_notice(app, smtp):
    queue(app, completed_flow(app, "maruhachi", "hanako@example.jp"))
    send(app)

    [msg] = smtp.messages
    assert msg["Subject"] == "【丸八信用組合】API連携認証完了のお知らせ"
    assert parseaddr(msg["From"])[0] == "丸八信用組合 API連携認証"
    body = msg.get_content()
    assert "店番 201 普通預金 ****345" in body
    assert "管理課" in body and "0120-7584-08" in body and "kanri@maruhachi-shinkumi.jp" in body
    assert "奄美" not in body


# --- queued with the consent, once ------------------------------------------------------------------

def test_a_rolled_back_consent_leaves_no_mail(app, smtp):
    queue(app, completed_flow(app), commit=False)

    assert outbox(app) == []
    assert send(app).sent == 0 and smtp.messages == []


def test_queueing_the_same_flow_twice_keeps_one_mail(app, smtp):
    flow_id = completed_flow(app)

    first, second = queue(app, flow_id), queue(app, flow_id)

    assert first == second and len(outbox(app)) == 1
    send(app)
    send(app)
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_parallel_queueing_of_one_flow_keeps_one_mail(engine, request, smtp):
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    flow_id = completed_flow(app)
    start = threading.Barrier(4)
    ids, errors = [], []

    def consent_retry():
        try:
            start.wait()
            ids.append(queue(app, flow_id))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=consent_retry) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(set(ids)) == 1 and len(outbox(app)) == 1


# --- the mail server is down -------------------------------------------------------------------------

def test_smtp_outage_loses_no_mail_and_schedules_a_retry(app, smtp):
    smtp.stop()
    queue(app, completed_flow(app))

    report = send(app)

    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    [row] = outbox(app)
    assert row.state == "pending" and row.attempts == 1
    assert row.next_attempt_at == clock.now() + MINUTE
    assert row.claimed_until is None
    assert "ConnectionRefusedError" in row.last_error


def test_mail_is_delivered_exactly_once_when_the_server_is_back(app, smtp):
    smtp.stop()
    queue(app, completed_flow(app))
    send(app)
    message_id = outbox(app)[0].message_id
    smtp.start()

    assert send(app).sent == 0  # not due before its back-off ends
    clock.set_now(QUIET_TIME + MINUTE)
    assert send(app).sent == 1
    clock.set_now(QUIET_TIME + dt.timedelta(hours=2))
    assert send(app).sent == 0

    [msg] = smtp.messages
    assert msg["Message-ID"] == message_id
    [row] = outbox(app)
    assert row.state == "sent" and row.attempts == 2 and row.sent_at == QUIET_TIME + MINUTE


def test_temporary_refusal_is_retried_later(app, smtp):
    smtp.handler.refuse_rcpt = "451 4.3.0 Try again later"
    queue(app, completed_flow(app))

    assert send(app).retrying == 1
    [row] = outbox(app)
    assert row.state == "pending" and "451" in row.last_error

    smtp.handler.refuse_rcpt = None
    clock.set_now(QUIET_TIME + MINUTE)
    assert send(app).sent == 1 and len(smtp.messages) == 1


def test_back_off_doubles_up_to_one_hour_and_gives_up_after_20_attempts(app, smtp, caplog):
    smtp.stop()
    queue(app, completed_flow(app))
    delays = []

    for _ in range(19):
        send(app)
        [row] = outbox(app)
        delays.append(row.next_attempt_at - clock.now())
        clock.set_now(row.next_attempt_at)

    assert [d // MINUTE for d in delays] == [1, 2, 4, 8, 16, 32] + [60] * 13
    assert row.state == "pending"
    with caplog.at_level(logging.ERROR, logger="webapp.mail.sender"):
        assert send(app).failed == 1
    [row] = outbox(app)
    assert row.state == "failed" and row.attempts == 20
    assert any("given up after 20" in r.getMessage() for r in caplog.records)
    clock.set_now(clock.now() + dt.timedelta(days=1))
    assert (send(app).sent, send(app).retrying) == (0, 0)


def test_a_recipient_the_server_refuses_for_good_is_failed_at_once(app, smtp, caplog):
    smtp.handler.refuse_rcpt = "550 5.1.1 No such user"
    queue(app, completed_flow(app))

    with caplog.at_level(logging.ERROR, logger="webapp.mail.sender"):
        report = send(app)

    assert (report.sent, report.retrying, report.failed) == (0, 0, 1)
    [row] = outbox(app)
    assert row.state == "failed" and row.attempts == 1 and "550" in row.last_error
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_a_silent_mail_server_times_out_quickly_and_the_mail_waits(app, smtp_port):
    app.config["MAIL_TIMEOUT_SECONDS"] = 0.5
    silent = socket.socket()  # accepts connections in the kernel, never says a word
    silent.bind(("127.0.0.1", smtp_port))
    silent.listen(8)
    try:
        queue(app, completed_flow(app))
        started = time.monotonic()
        report = send(app)
        elapsed = time.monotonic() - started
    finally:
        silent.close()

    assert report.retrying == 1 and elapsed < 3
    [row] = outbox(app)
    assert row.state == "pending" and "timed out" in row.last_error.lower()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_outage_stops_the_run_without_counting_against_the_other_mails(engine, request, smtp):
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    smtp.stop()
    for address in ("a@example.jp", "b@example.jp", "c@example.jp"):
        queue(app, completed_flow(app, email_address=address))

    report = send(app)

    assert (report.sent, report.retrying) == (0, 1)
    assert [row.attempts for row in outbox(app)] == [1, 0, 0]


# --- parallel senders -------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_parallel_senders_send_each_mail_once(engine, request, smtp):
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    addresses = [f"customer{i}@example.jp" for i in range(24)]
    for address in addresses:
        queue(app, completed_flow(app, email_address=address))
    start = threading.Barrier(6)
    reports, errors = [], []

    def sender():
        try:
            start.wait()
            reports.append(send(app))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.sent for r in reports) == 24
    delivered = sorted(rcpt for e in smtp.handler.envelopes for rcpt in e.rcpt_tos)
    assert delivered == sorted(addresses)
    assert all(row.state == "sent" and row.attempts == 1 for row in outbox(app))


def test_a_mail_held_by_a_sender_that_died_is_retried_after_its_lease(app, smtp):
    queue(app, completed_flow(app))
    with app.app_context(), db.engine().connect() as conn:
        assert mail_sender._claim(conn) is not None  # a sender took it, then its process died

    assert send(app).sent == 0
    clock.set_now(QUIET_TIME + dt.timedelta(seconds=mail_sender.LEASE_SECONDS))
    assert send(app).sent == 1
    [row] = outbox(app)
    assert row.state == "sent" and row.attempts == 2 and len(smtp.messages) == 1



@pytest.mark.parametrize("subject", [
    "【奄美信用組合】API連携認証完了のお知らせ",
    "【丸八信用組合】API連携認証の有効期限が近づいています（しんくみアプリwith CRECO、アイ・ティ・リアライズ株式会社）",
    "plain ASCII", "an ASCII subject long enough to be folded by any mail writer that keeps to 78 columns"])
@pytest.mark.parametrize("sender", ["奄美信用組合 API連携認証 <noreply@webcenter.anser.or.jp>", "noreply@example.jp"])
def test_the_mail_on_the_wire_is_byte_for_byte_what_flask_mails_smtp_policy_writes(app, subject, sender):
    """_Base64Message writes headers with compat32 (already encoded: nothing to parse back): the
    bytes must stay those of Flask-Mail's own SMTP policy, CRLF line ends, lines of at most 78."""
    from flask_mail import Message

    from webapp.mail.smtp import _message
    from webapp.mail.transport import OutgoingMail

    mail = OutgoingMail(sender=sender, recipient="taro@example.jp", subject=subject,
                        body="データ 太郎 様\n\n" + "本文です。" * 40 + "\n", message_id="<x@example.jp>")
    with app.app_context():
        message = _message(mail)
        ours = message.as_bytes()
        flask_mails = Message._message(message).as_bytes()

    assert ours == flask_mails
    lines = ours.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and max(len(line) for line in lines) <= 78
    assert email.message_from_bytes(ours, policy=email.policy.default)["Subject"] == subject

# --- sending right after the consent ------------------------------------------------------------------

def test_kick_sends_once_the_response_has_gone_out(app, smtp):
    flow_id = completed_flow(app)

    @app.get("/_test/consented")
    def consented():
        s = db.session()
        flow = s.get(Flow, flow_id)
        consent = s.exec(select(Consent).where(Consent.flow_id == flow_id)).one()
        client = s.exec(select(OAuthClient).where(OAuthClient.client_id == flow.client_id)).one()
        row = queue_completion_mail(s, tenant=app.extensions["tenants"]["amami"], flow=flow, consent=consent,
                                    client=client)
        s.commit()
        kick(row)
        return "", 303, {"Location": "https://app.example/cb?code=x"}

    with app.test_client().get("/_test/consented") as response:
        assert response.status_code == 303
        assert smtp.messages == []  # the redirect did not wait for the mail server

    assert app.extensions["mail_courier"].join(timeout=30)  # the process's sender thread sent it
    assert len(smtp.messages) == 1
    assert outbox(app)[0].state == "sent"


def test_kick_with_the_server_down_leaves_the_mail_for_the_scheduled_run(app, smtp):
    smtp.stop()
    row_id = queue(app, completed_flow(app))

    with app.app_context():
        kick(row_id)  # does not raise

    [row] = outbox(app)
    assert row.state == "pending" and row.attempts == 1


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_couriers_batch_sends_each_of_its_mails_once_over_one_connection(engine, request, smtp):
    """What the sender thread does with the rows queued together (send_these): each of them that is
    due, none twice, none it was not given; a row another sender holds or sent is left alone."""
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    ids = [queue(app, completed_flow(app, email_address=f"c{i}@example.jp")) for i in range(4)]
    other = queue(app, completed_flow(app, email_address="other@example.jp"))
    with app.app_context():
        with db.engine().connect() as conn:
            held = mail_sender._claim(conn, only_id=ids[1])  # another sender is on it
        assert held is not None
        assert mail_sender.send_these([ids[0]]).sent == 1

        report = mail_sender.send_these(ids)

    assert (report.sent, report.retrying, report.failed) == (2, 0, 0)
    assert len(smtp.handler.envelopes) == 3 and smtp.handler.peers[1] == smtp.handler.peers[2]  # one connection
    assert sorted(e.rcpt_tos[0] for e in smtp.handler.envelopes) == ["c0@example.jp", "c2@example.jp", "c3@example.jp"]
    rows = {r.id: r for r in outbox(app)}
    assert [rows[i].state for i in ids] == ["sent", "pending", "sent", "sent"] and rows[other].state == "pending"
    assert [rows[i].attempts for i in ids] == [1, 1, 1, 1] and rows[ids[1]].claim_token == held.token


def test_the_courier_greets_with_the_hosts_name_found_once_not_looked_up_at_each_connection(app, smtp, monkeypatch):
    """smtplib finds its EHLO name with socket.getfqdn() (a reverse DNS lookup) at every connection it
    opens without one; the courier gives it the same name, found once a process."""
    import socket
    import sys

    from webapp.mail import smtp as smtp_transport

    name = socket.getfqdn()
    smtp_transport.ehlo_name.cache_clear()
    lookups = []  # the module of each caller of socket.getfqdn
    real = socket.getfqdn
    monkeypatch.setattr(socket, "getfqdn", lambda *a: lookups.append(sys._getframe(1).f_globals["__name__"]) or real(*a))
    ids = [queue(app, completed_flow(app, email_address=f"c{i}@example.jp")) for i in range(2)]
    with app.app_context():
        for mail_id in ids:  # one run, one connection, each
            assert mail_sender.send_these([mail_id]).sent == 1
    assert smtp.handler.peers[0] != smtp.handler.peers[1]
    assert smtp.handler.greetings == [name, name]
    assert (lookups.count("smtplib"), lookups.count("webapp.mail.smtp")) == (0, 1)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_couriers_batch_stops_at_an_outage_and_leaves_the_rest_untouched(engine, request, smtp):
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    smtp.stop()
    ids = [queue(app, completed_flow(app, email_address=f"c{i}@example.jp")) for i in range(3)]

    with app.app_context():
        report = mail_sender.send_these(ids)

    assert (report.sent, report.retrying) == (0, 1)
    rows = {r.id: r for r in outbox(app)}
    assert [(rows[i].attempts, rows[i].claimed_until) for i in ids] == [(1, None), (0, None), (0, None)]
    assert "pending" == rows[ids[0]].state and rows[ids[0]].next_attempt_at > clock.now()


def test_kick_sends_only_its_own_mail(app, smtp):
    other = queue(app, completed_flow(app, email_address="other@example.jp"))
    mine = queue(app, completed_flow(app, email_address="mine@example.jp"))

    with app.app_context():
        kick(mine)

    assert [e.rcpt_tos for e in smtp.handler.envelopes] == [["mine@example.jp"]]
    assert {r.id: r.state for r in outbox(app)} == {other: "pending", mine: "sent"}



def test_kick_writes_only_its_claim_and_the_sent_mark(app, smtp):
    """The mail sent right after ⑥ costs two short write transactions, no scan of the outbox."""
    mine = queue(app, completed_flow(app))

    def kick_it():
        with app.app_context():
            kick(mine)

    assert writes_during(app, kick_it) == ["UPDATE", "UPDATE"]
    assert len(smtp.messages) == 1 and outbox(app)[0].state == "sent"


def test_retries_are_not_sent_before_they_are_due(app, smtp):
    queue(app, completed_flow(app))
    with app.app_context(), Session(db.engine()) as s:
        s.execute(update(MailOutbox).values(next_attempt_at=clock.now() + MINUTE))
        s.commit()

    assert send(app).sent == 0
    clock.set_now(QUIET_TIME + MINUTE)
    assert send(app).sent == 1


def test_cli_send_pending_every_keeps_sending_until_stopped(app, smtp, runner, monkeypatch):
    from webapp import deliveries

    queue(app, completed_flow(app))
    naps = []

    def nap(seconds):  # the worker's pause; the second one is where the operator stops it
        naps.append(seconds)
        if len(naps) == 1:
            queue(app, completed_flow(app, email_address="later@example.jp"))
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(deliveries, "time", types.SimpleNamespace(sleep=nap))
    result = runner.invoke(args=["mail", "send-pending", "--every", "60"])

    assert result.exit_code == 0, result.output
    assert naps == [60, 60]
    assert result.output.splitlines() == ["sent 1, retrying 0, failed 0"] * 2
    assert len(smtp.messages) == 2
