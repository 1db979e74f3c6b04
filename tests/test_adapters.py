"""The external systems behind their interfaces (README, Layout): which implementation answers is
chosen once by configuration, and what the rest of the code gets is the interface's own types —
core banking's AccountSummary, the telephony provider's report and answer, the mail transport's
sandbox outbox."""
from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import Session

from webapp import callauth, db
from webapp.callauth.sandbox import SandboxTelephony
from webapp.callauth.telephony import Malformed, NotSigned
from webapp.callauth.twilio import TwilioTelephony, compute_signature
from webapp.corebanking import AccountKey, AccountSummary, core
from webapp.mail import MailOutbox, send_pending
from webapp.mail.sandbox import SandboxTransport
from webapp.mail.smtp import SmtpTransport
from webapp.mail.transport import transport

from conftest import DEMO, TEST_SECRET, make_app
from test_mail import completed_flow, queue

URL = "https://renkei.test/telephony/inbound"
TOKEN = "test-telephony-token"


def test_core_banking_answers_with_its_own_account_summary_not_a_table_row(app, customers):
    c = DEMO["amami"]
    with app.test_request_context():
        found = core().account(AccountKey("amami", c["branch"], c["account_type"], c["number"]))
        unknown = core().account(AccountKey("amami", c["branch"], c["account_type"], "9999999"))
    assert found == AccountSummary(name_kana=c["name_kana"], status="active")
    assert unknown is None


def test_sandbox_mode_has_the_sandbox_provider_and_transport(app):
    with app.app_context():
        assert type(callauth.provider()) is SandboxTelephony
        assert type(transport()) is SandboxTransport  # conftest: MAIL_SUPPRESS_SEND


def test_production_settings_get_the_real_provider_and_smtp(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'real.sqlite3'}", SANDBOX=False, MAIL_SUPPRESS_SEND=False,
                   SECRET_KEY=TEST_SECRET)
    with app.app_context():
        assert type(callauth.provider()) is TwilioTelephony
        assert type(transport()) is SmtpTransport
        with pytest.raises(NotImplementedError):  # real calls come from real phones
            callauth.provider().simulated_call("+819011113333", "+81120111001", "CA" + "0" * 32)


def test_the_real_provider_reads_only_signed_posts_with_a_call_id():
    provider = TwilioTelephony(lambda: TOKEN)
    form = [("CallSid", "CA" + "1" * 32), ("From", "+819011113333"), ("To", "+81120111001"),
            ("Direction", "inbound"), ("From", "+819099999999")]
    signed = {"X-Twilio-Signature": compute_signature(URL, form, TOKEN)}

    call = provider.read_inbound(URL, form, signed)

    assert (call.call_sid, call.caller, call.dialled, call.direction) == (
        "CA" + "1" * 32, "+819011113333", "+81120111001", "inbound")  # a repeated field: its first value
    with pytest.raises(NotSigned):
        provider.read_inbound(URL, form, {})
    with pytest.raises(NotSigned):
        TwilioTelephony(lambda: None).read_inbound(URL, form, signed)  # no token configured: nothing is signed
    no_sid = [(k, v) for k, v in form if k != "CallSid"]
    with pytest.raises(Malformed, match="CallSid missing or malformed"):
        provider.read_inbound(URL, no_sid, {"X-Twilio-Signature": compute_signature(URL, no_sid, TOKEN)})
    answer = provider.reject_call()
    assert (answer.status, answer.mimetype, answer.body) == (
        200, "text/xml", '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>')


def test_a_simulated_call_is_what_the_real_provider_reads():
    sandbox = SandboxTelephony(lambda: TOKEN, lambda: "https://renkei.test")
    simulated = sandbox.simulated_call("+819011113333", "+81120111001", "CA" + "2" * 32)

    call = TwilioTelephony(lambda: TOKEN).read_inbound("https://renkei.test" + simulated.path,
                                                       list(simulated.form.items()), simulated.headers)

    assert (call.call_sid, call.caller, call.dialled, call.direction) == (
        "CA" + "2" * 32, "+819011113333", "+81120111001", "inbound")


def test_sandbox_mail_keeps_what_it_would_have_sent_and_marks_the_row_sent(app):
    queue(app, completed_flow(app, "amami", "taro@example.jp"))

    report = send_pending_in(app)

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    with app.app_context():
        [mail] = transport().delivered
    assert mail.recipient == "taro@example.jp"
    assert mail.subject == "【奄美信用組合】API連携認証完了のお知らせ"
    assert "API連携" in mail.body


def test_sandbox_mail_refuses_a_header_no_server_could_carry_for_good(app):
    row_id = queue(app, completed_flow(app, "amami", "taro@example.jp"))
    with app.app_context(), Session(db.engine()) as s:
        s.execute(update(MailOutbox).where(MailOutbox.id == row_id).values(recipient="taro@example.jp\r\nBcc: x@y"))
        s.commit()

    report = send_pending_in(app)

    assert (report.sent, report.failed) == (0, 1)
    with app.app_context(), Session(db.engine()) as s:
        row = s.get(MailOutbox, row_id)
        assert row.state == "failed" and row.last_error.startswith("BadHeaderError")
        assert not transport().delivered


def send_pending_in(app):
    with app.app_context():
        return send_pending()
