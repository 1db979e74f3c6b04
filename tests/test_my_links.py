"""連携中のアプリ (CONTRACT §10): the customer proves who they are with the flow's own steps, sees
every app linked to the account and ends one at once (tokens stop, refresh fails, a notice is
queued to the address given at ②); only the proven account's links can be ended."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session, select

from conftest import DEMO, FlowActions, add_account, text_of
from test_oauth_support import exchange, later, latest_flow, pin, refresh, set_step, authorized
from webapp import clock, db, messages
from webapp.flow.models import Flow
from webapp.mail.models import MailOutbox
from webapp.oauth.models import Consent, Token
from webapp.oplog import OperationLog

APP_NAME = "しんくみアプリwith CRECO"
OPERATOR = "アイ・ティ・リアライズ株式会社"


def rows(app, model, *where):
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(model).where(*where)))


def linked(actions) -> dict:
    """The app authorizes (①–⑥, 許可する) and exchanges its code: the token response."""
    code = authorized(actions)["code"]
    response = exchange(actions, code)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def at_links(actions, email: str = "links@example.jp", customer=None):
    """「本人確認へ進む」, ① ② (③ ④ moved past in the database, as test_oauth_support does), ⑤:
    the page 連携中のアプリ. `customer`: another account's DEMO-like record."""
    c = customer or DEMO[actions.tenant]
    start = actions.get("my/links")
    assert start.status_code == 200 and messages.LINKS_START in text_of(start)
    response = actions.post("my/links/start", {})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/{actions.tenant}/flow/account")
    actions.get("flow/account")
    actions.account(number=c["number"])
    response = actions.customer(email=email, email_confirm=email, phone=c["phone"])
    assert response.status_code == 303, text_of(response)[:800]
    set_step(actions.app, "pin")
    actions.get("flow/pin")
    response = pin(actions, c["pin"])
    assert response.status_code == 303, text_of(response)[:800]
    assert response.headers["Location"].endswith(f"/{actions.tenant}/my/links")
    return actions.get("my/links")


def api_get(actions, token: str):
    return actions.client.get(f"/{actions.tenant}/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})


def revoke(actions, consent_id: int, confirm: bool = True, **kw):
    return actions.post(f"my/links/{consent_id}/revoke", {"confirm": "yes"} if confirm else {}, **kw)


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_the_page_lists_each_linked_app_with_operator_dates_and_last_use(app, client, customers, tenant):
    actions = FlowActions(app, client, tenant)
    tokens = linked(actions)
    later(seconds=90)
    assert api_get(actions, tokens["access_token"]).status_code == 200
    later(seconds=300)
    html = text_of(at_links(actions))
    assert f"<h1 class=\"screen-title\">{messages.LINKS_TITLE}</h1>" in html
    assert f"<title>{messages.LINKS_TITLE}｜" in html
    (consent,) = rows(app, Consent)
    section = re.search(rf'<article class="box link" aria-labelledby="link-{consent.id}-title link-{consent.id}-granted">(.*?)</article>',
                        html, re.S).group(1)
    assert APP_NAME in section and OPERATOR in section
    assert f"連携を許可した日時</dt><dd id=\"link-{consent.id}-granted\">2026年11月18日 14:00" in section
    assert "認可期間の終了</dt><dd>2026年12月18日 14:00" in section
    assert "最後に利用された日時</dt><dd>2026年11月18日 14:01" in section
    assert f">{messages.LINK_REVOKE}</button>" in section
    c = DEMO[tenant]
    assert f"店番 {c['branch']} 普通預金 {c['number']}" in html


def test_an_app_not_used_yet_says_so_and_no_other_accounts_links_are_shown(app, client, customers):
    other = dict(DEMO["amami"], number="2200037", phone="09022224444", pin="4321")
    add_account(app, "amami", **other)
    linked(FlowActions(app, app.test_client(), "amami"))  # the demo account's app, used by nobody yet
    html = text_of(at_links(FlowActions(app, client, "amami")))
    assert messages.LINKS_NEVER_USED in html

    html = text_of(at_links(FlowActions(app, app.test_client(), "amami"), customer=other))
    assert messages.LINKS_NONE in html and APP_NAME not in html


def test_the_same_app_linked_twice_is_told_apart_by_a_screen_reader(amami):
    """Two links of one app share its name: neither may be a landmark of the same name (axe
    landmark-unique); each is an article named by the app and its grant time."""
    linked(amami)
    later(seconds=300)
    linked(amami)
    html = text_of(at_links(amami))
    assert "<section class=\"box link\"" not in html
    names = re.findall(r'<article class="box link" aria-labelledby="(link-\d+-title) (link-\d+-granted)">', html)
    assert len(names) == 2 and len({granted for _, granted in names}) == 2
    for title_id, granted_id in names:
        assert f'<h2 id="{title_id}">{APP_NAME}</h2>' in html and f'<dd id="{granted_id}">' in html


def test_ended_and_expired_consents_are_not_listed(amami):
    linked(amami)
    later(days=31)
    html = text_of(at_links(amami))
    assert messages.LINKS_NONE in html and APP_NAME not in html


def test_the_page_needs_the_identity_steps_first(amami):
    response = amami.get("my/links")
    assert response.status_code == 200
    html = text_of(response)
    assert messages.LINKS_START_LEAD in html and "link-" not in html
    amami.post("my/links/start", {})
    assert amami.get("my/links").headers["Location"].endswith("/amami/flow/account")
    amami.account()
    amami.customer()
    assert amami.get("my/links").headers["Location"].endswith("/amami/flow/phone")
    response = amami.post("my/links/1/revoke", {"confirm": "yes"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/phone")


def test_an_authorization_flow_never_reaches_the_links_page(amami):
    amami.start()
    amami.account()
    amami.customer()
    set_step(amami.app, "pin")
    amami.get("flow/pin")
    assert pin(amami).headers["Location"].endswith("/amami/flow/consent")
    response = amami.get("my/links")
    assert response.status_code == 200 and messages.LINKS_START in text_of(response)


def test_a_wrong_pin_in_a_links_flow_counts_toward_the_same_lock(amami):
    amami.get("my/links")
    amami.post("my/links/start", {})
    amami.account()
    amami.customer()
    set_step(amami.app, "pin")
    amami.get("flow/pin")
    response = pin(amami, "0000")
    assert response.status_code == 200 and messages.IDENTITY_MISMATCH in text_of(response)
    (row,) = rows(amami.app, OperationLog, OperationLog.event == "pin_check", OperationLog.result == "fail")
    assert row.account_number == DEMO["amami"]["number"] and row.client_id is None


def test_confirmation_comes_first_without_and_with_javascript(amami):
    linked(amami)
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    page = revoke(amami, consent.id, confirm=False)
    assert page.status_code == 200
    html = text_of(page)
    assert messages.LINK_REVOKE_CONFIRM.format(app=APP_NAME) in html and 'name="confirm" value="yes"' in html
    assert "<html" in html and "<dialog" not in html
    dialog = revoke(amami, consent.id, confirm=False, htmx=True)
    html = text_of(dialog)
    assert "<html" not in html
    assert '<dialog open data-modal' in html and 'role="alertdialog"' in html
    assert rows(amami.app, Consent)[0].revoked_at is None  # nothing ended yet


def test_revoking_ends_the_consent_its_tokens_and_the_apps_refresh(amami):
    tokens = linked(amami)
    assert api_get(amami, tokens["access_token"]).status_code == 200
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    response = revoke(amami, consent.id)
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/my/links")
    html = text_of(amami.get("my/links"))
    assert messages.LINK_REVOKED.format(app=APP_NAME) in html and messages.LINKS_NONE in html

    assert rows(amami.app, Consent)[0].revoked_at == clock.now()
    assert all(t.revoked_at is not None for t in rows(amami.app, Token))
    assert api_get(amami, tokens["access_token"]).status_code == 401
    refreshed = refresh(amami, tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    (logged,) = rows(amami.app, OperationLog, OperationLog.event == "consent_revoked")
    assert (logged.screen, logged.result, logged.client_id) == ("MYLINKS", "ok", consent.client_id)


def test_revoking_with_htmx_reloads_the_page(amami):
    linked(amami)
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    response = revoke(amami, consent.id, htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith("/amami/my/links")
    assert rows(amami.app, Consent)[0].revoked_at is not None


def test_revoking_queues_a_notice_to_the_address_given_at_two(amami):
    linked(amami)  # its completion mail goes to taro@example.jp
    at_links(amami, email="owner@example.jp")
    (consent,) = rows(amami.app, Consent)
    revoke(amami, consent.id)
    revoke(amami, consent.id)  # a second press: the link is gone, no second notice
    (notice,) = rows(amami.app, MailOutbox, MailOutbox.kind == "consent_revoked")
    assert notice.recipient == "owner@example.jp" and notice.consent_id == consent.id
    assert notice.flow_id == latest_flow(amami.app).id
    assert notice.subject == "【奄美信用組合】連携解除のお知らせ"
    assert APP_NAME in notice.body and OPERATOR in notice.body and "****026" in notice.body
    assert "2026年11月18日 14:00" in notice.body
    assert DEMO["amami"]["pin"] not in notice.body and DEMO["amami"]["phone"] not in notice.body
    assert "1100026" not in notice.body


def test_two_apps_ended_in_one_session_get_a_notice_each(app, client, customers):
    first = FlowActions(app, app.test_client(), "amami")
    linked(first)
    second = FlowActions(app, app.test_client(), "amami")
    linked(second)
    actions = FlowActions(app, client, "amami")
    at_links(actions)
    for consent in rows(app, Consent):
        assert revoke(actions, consent.id).status_code == 303
    notices = rows(app, MailOutbox, MailOutbox.kind == "consent_revoked")
    assert sorted(n.consent_id for n in notices) == sorted(c.id for c in rows(app, Consent))
    assert len({n.message_id for n in notices}) == 2


def test_parallel_presses_end_the_link_once_with_one_notice(amami):
    linked(amami)
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    app = amami.app
    statuses = amami.post_in_parallel(f"my/links/{consent.id}/revoke", {"confirm": "yes"})
    assert set(statuses) <= {303, 404} and 303 in statuses
    assert len(rows(app, OperationLog, OperationLog.event == "consent_revoked")) == 1
    assert len(rows(app, MailOutbox, MailOutbox.kind == "consent_revoked")) == 1


def test_another_accounts_consent_cannot_be_ended(app, client, customers):
    other = dict(DEMO["amami"], number="2200037", phone="09022224444", pin="4321")
    add_account(app, "amami", **other)
    victim = FlowActions(app, app.test_client(), "amami")
    victim_tokens = linked(victim)
    linked(FlowActions(app, app.test_client(), "maruhachi"))  # another union's too

    attacker = FlowActions(app, client, "amami")
    at_links(attacker, customer=other)
    for consent in rows(app, Consent):
        for confirm in (False, True):
            response = revoke(attacker, consent.id, confirm=confirm)
            assert response.status_code == 404
            assert messages.LINK_NOT_FOUND in text_of(response)
    assert all(c.revoked_at is None for c in rows(app, Consent))
    assert api_get(victim, victim_tokens["access_token"]).status_code == 200
    assert rows(app, MailOutbox, MailOutbox.kind == "consent_revoked") == []
    assert revoke(attacker, 999999).status_code == 404
    assert rows(app, OperationLog, OperationLog.event == "consent_revoke", OperationLog.result == "refused")


def test_odd_consent_ids_get_the_page_with_its_message_and_change_nothing(amami):
    """A full-width digit is no id (Flask's int converter reads '１' as 1, SECURITY.md's Unicode
    digits); nor is a negative, a huge or a non-numeric one: each gets the page again, 404, with
    the link-not-found message, never a 500 or a bare 404."""
    linked(amami)
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    full_width = str(consent.id).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for odd in (full_width, "-1", "0", "99999999999999999999999999", "abc", "1.5", "%00", "%E3%83%BB"):
        response = revoke(amami, odd)
        assert response.status_code == 404, odd
        assert messages.LINK_NOT_FOUND in text_of(response), odd
    assert rows(amami.app, Consent)[0].revoked_at is None


def test_a_revoke_without_its_csrf_token_changes_nothing(amami):
    linked(amami)
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    response = amami.client.post(f"/amami/my/links/{consent.id}/revoke", data={"confirm": "yes"})
    assert response.status_code == 400
    assert rows(amami.app, Consent)[0].revoked_at is None


def test_finishing_ends_the_session(amami):
    linked(amami)
    at_links(amami)
    (consent,) = rows(amami.app, Consent)
    response = amami.post("my/links/end", {})
    assert response.status_code == 303
    html = text_of(amami.get("my/links"))
    assert messages.LINKS_FINISHED in html and messages.LINKS_START in html and APP_NAME not in html
    assert revoke(amami, consent.id).status_code == 400  # the session is over: nothing to act in
    assert rows(amami.app, Consent)[0].revoked_at is None
    assert latest_flow(amami.app).outcome == "finished"


def test_the_session_expires_when_left_idle(app, client, customers):
    actions = FlowActions(app, client, "amami")
    linked(actions)
    at_links(actions)
    (consent,) = rows(app, Consent)
    later(seconds=app.config["FLOW_IDLE_SECONDS"] + 1)
    response = actions.get("my/links")
    assert response.status_code == 200 and messages.LINKS_START in text_of(response)
    assert revoke(actions, consent.id).status_code == 400
    assert rows(app, Consent)[0].revoked_at is None
    assert latest_flow(app).outcome == "expired"


def test_cancelling_a_links_flow_leads_back_to_the_links_page(amami):
    amami.get("my/links")
    amami.post("my/links/start", {})
    amami.account()
    amami.get("flow/customer")
    response = amami.post("flow/cancel", {"confirm": "yes"})
    assert response.status_code == 303
    html = text_of(amami.get("flow/cancelled"))
    assert messages.CANCELLED in html and 'href="/amami/my/links"' in html and "連携元画面へ" not in html
    assert latest_flow(amami.app).outcome == "cancelled"


def test_links_flows_are_not_counted_on_the_staff_dashboard(app, amami):
    from webapp.staff.dashboard import today

    amami.get("my/links")
    amami.post("my/links/start", {})
    amami.start()
    with app.test_request_context(), Session(db.engine()) as s:
        assert today(s, app.extensions["tenants"]["amami"]).started == 1
    purposes = sorted(f.purpose for f in rows(app, Flow))
    assert purposes == ["authorize", "links"]


def test_the_completion_mail_says_where_to_see_and_end_links(app, client, customers):
    for tenant in ("amami", "maruhachi"):
        linked(FlowActions(app, app.test_client(), tenant))
    for mail in rows(app, MailOutbox, MailOutbox.kind == "consent_completed"):
        assert f"https://renkei.test/{mail.tenant}/my/links" in mail.body
        assert "連携中のアプリを確認し、連携を解除（認可を取り消し）するには" in mail.body


class TestTheNoticeThroughARealMailServer:
    """The notice goes through the completion mail's outbox and sender: sent once after the
    response, and kept (the link ended all the same) while the mail server is down."""

    @pytest.fixture
    def smtp_port(self):
        from mail_support import free_port

        return free_port()

    @pytest.fixture
    def app_config(self, smtp_port):
        return {"MAIL_SUPPRESS_SEND": False, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port,
                "MAIL_TIMEOUT_SECONDS": 5}

    @pytest.fixture
    def smtp(self, smtp_port):
        from mail_support import SMTPServer

        server = SMTPServer(smtp_port)
        server.start()
        yield server
        server.stop()

    @staticmethod
    def flush(app, smtp):
        """Send what is queued (the link's own completion mail) and forget it."""
        from webapp.mail import send_pending

        with app.app_context():
            send_pending()
        smtp.handler.envelopes.clear()

    def test_the_notice_is_sent_once_after_the_response(self, amami, smtp):
        linked(amami)
        at_links(amami, email="owner@example.jp")
        self.flush(amami.app, smtp)
        (consent,) = rows(amami.app, Consent)
        with amami.client.post(f"/amami/my/links/{consent.id}/revoke",
                               data={"csrf_token": amami.csrf, "confirm": "yes"}) as response:
            assert response.status_code == 303
            assert smtp.messages == []  # the page did not wait for the mail server
        assert amami.app.extensions["mail_courier"].join(timeout=30)
        (message,) = smtp.messages
        assert message["To"] == "owner@example.jp" and "連携解除のお知らせ" in message["Subject"]
        assert APP_NAME in message.get_content()
        (row,) = rows(amami.app, MailOutbox, MailOutbox.kind == "consent_revoked")
        assert row.state == "sent" and message["Message-ID"] == row.message_id
        with amami.app.app_context():
            from webapp.mail import send_pending

            assert send_pending().sent == 0

    def test_with_the_mail_server_down_the_link_ends_and_the_notice_waits(self, amami, smtp):
        tokens = linked(amami)
        at_links(amami)
        self.flush(amami.app, smtp)
        smtp.stop()
        (consent,) = rows(amami.app, Consent)
        with revoke(amami, consent.id) as response:
            assert response.status_code == 303
        assert api_get(amami, tokens["access_token"]).status_code == 401
        # The courier's attempt runs after the response, on its own thread: read the row once it is done.
        assert amami.app.extensions["mail_courier"].join(timeout=30)
        (row,) = rows(amami.app, MailOutbox, MailOutbox.kind == "consent_revoked")
        assert row.state == "pending" and row.attempts == 1

        from webapp.mail import send_pending

        smtp.start()
        later(seconds=120)
        with amami.app.app_context():
            assert send_pending().sent == 1
            assert send_pending().sent == 0
        assert [m["To"] for m in smtp.messages] == ["links@example.jp"]


def test_in_a_maintenance_window_the_notice_offers_no_way_back_to_an_app(amami):
    amami.get("my/links")
    amami.post("my/links/start", {})
    clock.set_now(dt.datetime(2026, 11, 18, 4, 2, tzinfo=clock.JST))  # amami: daily 04:00–04:05
    for path in ("flow/account", "my/links"):
        response = amami.get(path)
        assert response.status_code == 503
        assert messages.MAINTENANCE in text_of(response) and "連携元画面へ" not in text_of(response)


def _links_flow_at_the_call(actions):
    actions.get("my/links")
    actions.post("my/links/start", {})
    actions.account()
    assert actions.customer().status_code == 303
    assert actions.post("flow/phone", {}).headers["Location"].endswith("/flow/call")
    return actions.get("flow/call")


def test_a_links_flow_passes_the_real_call_and_pin_to_the_page(amami):
    from test_callauth_support import call_from_registered_phone

    page = _links_flow_at_the_call(amami)
    call_from_registered_phone(amami, page)
    assert amami.post("flow/call", {}).headers["Location"].endswith("/amami/flow/pin")
    amami.get("flow/pin")
    assert pin(amami).headers["Location"].endswith("/amami/my/links")
    assert f'<h1 class="screen-title">{messages.LINKS_TITLE}</h1>' in text_of(amami.get("my/links"))


def test_back_to_the_start_after_the_calls_window_stays_a_links_flow(amami):
    _links_flow_at_the_call(amami)
    later(seconds=121)
    amami.get("flow/call")
    response = amami.post("flow/call/restart", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/account")
    old, new = sorted(rows(amami.app, Flow), key=lambda f: f.id)
    assert old.outcome == "expired" and (new.purpose, new.step, new.client_id) == ("links", "account", None)


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_the_faq_points_to_the_links_page(client, tenant):
    html = text_of(client.get(f"/{tenant}/faq"))
    assert f'<a href="/{tenant}/my/links">連携中のアプリ</a>のページ' in html


def test_ending_a_link_tells_the_app_through_its_webhook_that_the_customer_ended_it(amami):
    from sqlalchemy import update
    from webapp.oauth.models import OAuthClient
    from webapp.webhooks.models import WebhookOutbox

    linked(amami)
    (consent,) = rows(amami.app, Consent)
    with amami.app.app_context(), Session(db.engine()) as s:
        s.execute(update(OAuthClient).where(OAuthClient.client_id == consent.client_id)
                  .values(webhook_url="https://app.example/renkei/events"))
        s.commit()
    at_links(amami)
    revoke(amami, consent.id)
    revoke(amami, consent.id)  # a second press ends nothing more: no second event

    (event,) = rows(amami.app, WebhookOutbox)
    assert (event.event, event.reason, event.consent_id) == ("consent_revoked", "customer", consent.id)
    assert event.url == "https://app.example/renkei/events"
