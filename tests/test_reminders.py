"""Expiry reminders: seven days before a consent's 30 days end, one mail to the address given at ②
(which app, when it ends, how to renew), through the outbox with the completion mail's guarantees.
Against a real SMTP server on loopback; time moves by the test clock."""
from __future__ import annotations

import datetime as dt
import threading
from email.utils import parseaddr

import pytest
from sqlmodel import Session, select

from webapp import clock, db
from webapp.mail import queue_expiry_reminders
from webapp.oauth.consents import revoke_consent
from webapp.oauth.models import Consent, OAuthClient

from conftest import DEMO, QUIET_TIME
from mail_support import app_config, smtp, smtp_port  # noqa: F401  (fixtures: SMTP on loopback)
from mail_support import completed_flow, outbox, queue, send

DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)
SEVEN_DAYS_LEFT = QUIET_TIME + 23 * DAY  # the consents below are granted at QUIET_TIME, for 30 days


def remind(app) -> int:
    with app.app_context():
        return queue_expiry_reminders()


def reminders(app):
    return [row for row in outbox(app) if row.kind == "consent_expiring"]


def consent_of(app, flow_id: int) -> Consent:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(Consent).where(Consent.flow_id == flow_id)).one()


def revoke(app, flow_id: int) -> None:
    with app.app_context(), Session(db.engine()) as s:
        revoke_consent(s, s.exec(select(Consent).where(Consent.flow_id == flow_id)).one())
        s.commit()


# --- what the customer receives ---------------------------------------------------------------------

def test_seven_days_before_the_end_the_address_from_screen_2_gets_a_reminder(app, smtp):
    completed_flow(app, "amami", "taro@example.jp")
    clock.set_now(SEVEN_DAYS_LEFT)

    assert remind(app) == 1
    report = send(app)

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [envelope] = smtp.handler.envelopes
    assert envelope.rcpt_tos == ["taro@example.jp"]
    [msg] = smtp.messages
    assert parseaddr(msg["From"]) == ("奄美信用組合 API連携認証", "noreply@webcenter.anser.or.jp")
    assert msg["Subject"] == "【奄美信用組合】API連携の認可期間終了のお知らせ"
    assert msg["Message-ID"].endswith("@webcenter.anser.or.jp>")


def test_the_reminder_names_the_app_the_end_in_jst_and_how_to_renew(app, smtp):
    completed_flow(app, "amami")
    clock.set_now(SEVEN_DAYS_LEFT)
    remind(app)
    send(app)

    body = smtp.messages[0].get_content()
    assert "しんくみアプリwith CRECO" in body and "アイ・ティ・リアライズ株式会社" in body
    assert "■認可期間の終了日時\n　2026年12月18日 14:00\n" in body  # QUIET_TIME 2026-11-18 14:00 JST + 30 days
    assert "アプリから改めてAPI連携認証を行ってください" in body
    assert "店番 115 普通預金 ****026" in body
    assert "企画部 ITシステム課" in body and "0997-52-7111" in body


def test_the_reminder_never_carries_the_pin_the_phone_or_the_full_account_number(app, smtp):
    completed_flow(app, "amami")
    clock.set_now(SEVEN_DAYS_LEFT)
    remind(app)
    send(app)

    raw = smtp.handler.envelopes[0].content.decode("ascii")
    text = smtp.messages[0].as_string() + smtp.messages[0].get_content()
    for secret in (DEMO["amami"]["pin"], DEMO["amami"]["phone"], "9011113333", "1100026", "ﾃﾞｰﾀ ﾀﾛｳ"):
        assert secret not in text and secret not in raw


def test_each_union_sends_its_own_reminder(app, smtp):
    completed_flow(app, "maruhachi", "hanako@example.jp")
    clock.set_now(SEVEN_DAYS_LEFT)
    remind(app)
    send(app)

    [msg] = smtp.messages
    assert msg["Subject"] == "【丸八信用組合】API連携の認可期間終了のお知らせ"
    body = msg.get_content()
    assert "店番 201 普通預金 ****345" in body and "0120-7584-08" in body and "奄美" not in body


# --- when, and only once ------------------------------------------------------------------------------

def test_no_reminder_while_more_than_seven_days_remain(app, smtp):
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT - MINUTE)

    assert remind(app) == 0
    assert reminders(app) == []


def test_a_consent_is_reminded_once_however_often_the_scan_runs(app, smtp):
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)

    assert [remind(app), remind(app)] == [1, 0]
    send(app)
    for later in (DAY, 3 * DAY, 6 * DAY):
        clock.set_now(SEVEN_DAYS_LEFT + later)
        assert remind(app) == 0
        assert send(app).sent == 0
    assert len(smtp.messages) == 1 and len(reminders(app)) == 1


def test_the_completion_mail_and_the_reminder_are_two_mails_of_one_flow(app, smtp):
    flow_id = completed_flow(app)
    queue(app, flow_id)
    clock.set_now(SEVEN_DAYS_LEFT)
    remind(app)
    send(app)

    assert sorted(m["Subject"] for m in smtp.messages) == [
        "【奄美信用組合】API連携の認可期間終了のお知らせ", "【奄美信用組合】API連携認証完了のお知らせ"]


def test_a_revoked_consent_is_never_reminded(app, smtp):
    flow_id = completed_flow(app)
    revoke(app, flow_id)
    clock.set_now(SEVEN_DAYS_LEFT)

    assert remind(app) == 0
    assert send(app).sent == 0 and smtp.messages == []


def test_an_expired_consent_is_never_reminded(app, smtp):
    completed_flow(app)
    clock.set_now(QUIET_TIME + 30 * DAY)

    assert remind(app) == 0 and reminders(app) == []


def test_a_consent_the_customer_has_renewed_is_not_reminded(app, smtp):
    first = completed_flow(app)
    clock.set_now(QUIET_TIME + 20 * DAY)
    renewed = completed_flow(app)  # the same app and account, linked again: 30 days from now
    with app.app_context(), Session(db.engine()) as s:  # completed_flow registers the app anew; make it one app
        old, new = s.get(Consent, consent_of(app, first).id), s.get(Consent, consent_of(app, renewed).id)
        new.client_id = old.client_id
        s.commit()
    clock.set_now(SEVEN_DAYS_LEFT)

    assert remind(app) == 0
    assert reminders(app) == []


def test_an_app_no_longer_registered_gets_no_reminder_for(app, smtp):
    flow_id = completed_flow(app)
    with app.app_context(), Session(db.engine()) as s:
        client = s.exec(select(OAuthClient).where(OAuthClient.client_id == consent_of(app, flow_id).client_id)).one()
        client.revoked_at = clock.now()
        s.commit()
    clock.set_now(SEVEN_DAYS_LEFT)

    assert remind(app) == 0


# --- the mail server is down --------------------------------------------------------------------------

def test_smtp_outage_keeps_the_reminder_and_sends_it_once_when_back(app, smtp):
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)
    smtp.stop()
    remind(app)

    assert send(app).retrying == 1
    [row] = reminders(app)
    assert row.state == "pending" and row.attempts == 1 and row.next_attempt_at == SEVEN_DAYS_LEFT + MINUTE
    assert "ConnectionRefusedError" in row.last_error

    smtp.start()
    assert send(app).sent == 0  # not before its back-off ends
    clock.set_now(SEVEN_DAYS_LEFT + MINUTE)
    assert send(app).sent == 1
    clock.set_now(SEVEN_DAYS_LEFT + 2 * DAY)
    assert remind(app) == 0 and send(app).sent == 0
    assert len(smtp.messages) == 1
    [row] = reminders(app)
    assert row.state == "sent" and row.attempts == 2


def test_a_reminder_waiting_through_an_outage_is_cancelled_when_the_consent_is_revoked(app, smtp):
    flow_id = completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)
    smtp.stop()
    remind(app)
    send(app)

    revoke(app, flow_id)
    smtp.start()
    clock.set_now(SEVEN_DAYS_LEFT + DAY)

    assert send(app).sent == 0 and smtp.messages == []
    [row] = reminders(app)
    assert row.state == "cancelled"


def test_a_reminder_still_unsent_when_the_consent_ends_is_never_sent(app, smtp):
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)
    smtp.stop()
    remind(app)
    send(app)
    smtp.start()
    clock.set_now(QUIET_TIME + 30 * DAY)

    assert send(app).sent == 0 and smtp.messages == []
    assert reminders(app)[0].state == "cancelled"



def test_a_reminder_past_its_end_is_not_sent_by_an_immediate_send_either(app, smtp):
    """`kick`/`send_these` (after ⑥) leave cancelling to the scheduled run, but never send an overdue
    mail or count an attempt on it."""
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)
    smtp.stop()
    remind(app)
    send(app)  # one failed attempt, retried later
    smtp.start()
    clock.set_now(QUIET_TIME + 30 * DAY)
    [row] = reminders(app)

    with app.app_context():
        assert kick_and_report(row.id) is None
    assert smtp.messages == []
    [row] = reminders(app)
    assert (row.state, row.attempts) == ("pending", 1)

    assert send(app).sent == 0 and smtp.messages == []
    assert reminders(app)[0].state == "cancelled"


def kick_and_report(row_id: int):
    from webapp.mail import kick

    return kick(row_id)

# --- parallel workers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_parallel_workers_remind_each_consent_once(engine, request, smtp):
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    addresses = [f"customer{i}@example.jp" for i in range(12)]
    for address in addresses:
        completed_flow(app, email_address=address)
    clock.set_now(SEVEN_DAYS_LEFT)
    start = threading.Barrier(4)
    queued, errors = [], []

    def worker():  # what `mail send-pending` does each round: scan, then send
        try:
            start.wait()
            queued.append(remind(app))
            send(app)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(queued) == 12
    delivered = sorted(rcpt for e in smtp.handler.envelopes for rcpt in e.rcpt_tos)
    assert delivered == sorted(addresses)
    assert all(row.state == "sent" and row.attempts == 1 for row in reminders(app))


# --- the commands -------------------------------------------------------------------------------------

def test_cli_remind_queues_and_reports(app, smtp, runner):
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)

    first = runner.invoke(args=["mail", "remind"])
    second = runner.invoke(args=["mail", "remind"])

    assert (first.exit_code, second.exit_code) == (0, 0)
    assert (first.output.strip(), second.output.strip()) == ("queued 1 reminder(s)", "queued 0 reminder(s)")
    assert smtp.messages == []  # queued only; the sender sends


def test_the_mail_worker_queues_due_reminders_and_sends_them(app, smtp, runner):
    completed_flow(app)
    clock.set_now(SEVEN_DAYS_LEFT)

    result = runner.invoke(args=["mail", "send-pending"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["queued 1 reminder(s)", "sent 1, retrying 0, failed 0"]
    assert len(smtp.messages) == 1
