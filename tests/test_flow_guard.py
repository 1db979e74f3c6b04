"""Flow state and the step guard: screens only in order, in the same flow; cancel ends it for good."""
from urllib.parse import parse_qs, urlsplit

from sqlmodel import select

from conftest import FlowActions, text_of
from webapp import db, messages
from webapp.flow.models import Flow


def test_screen_without_flow_is_refused(client, customers):
    response = client.get("/amami/flow/account")
    assert response.status_code == 400
    assert messages.NO_FLOW in text_of(response)


def test_later_screen_cannot_be_reached_before_earlier_succeeded(amami):
    amami.start()
    response = amami.get("flow/customer")
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/account")
    response = amami.get("flow/pin")
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/account")


def test_post_to_a_later_screen_is_refused_and_logged(amami):
    amami.start()
    response = amami.post("flow/customer", amami.customer_data())
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/account")
    from webapp.oplog import OperationLog
    with amami.app.app_context():
        row = db.session().exec(select(OperationLog).where(OperationLog.event == "out_of_order")).first()
        assert row.result == "refused"


def test_going_back_to_an_earned_screen_sends_to_the_current_one(amami):
    amami.through_customer()
    response = amami.get("flow/account")
    assert response.headers["Location"].endswith("/amami/flow/phone")


def test_flow_of_one_union_does_not_open_the_other(app, client, customers):
    amami = FlowActions(app, client, "amami")
    amami.start()
    assert client.get("/maruhachi/flow/account").status_code == 400


def test_cookie_holds_only_an_opaque_handle(amami):
    amami.start()
    with amami.client.session_transaction() as session:
        flows = session["flows"]
    assert set(flows) == {"amami"} and len(flows["amami"]) >= 43  # 256-bit token
    with amami.app.app_context():
        flow = db.session().exec(select(Flow)).one()
        assert flows["amami"] not in (flow.handle_hash, str(flow.id))


def test_handle_rotates_at_each_stage_and_old_cookie_is_dead(app, amami):
    amami.start()
    with amami.client.session_transaction() as session:
        old = dict(session)
    amami.account()
    replay = app.test_client()
    with replay.session_transaction() as session:
        session.update(old)
    assert replay.get("/amami/flow/account").status_code == 400


def test_unknown_union_is_404(client):
    assert client.get("/nosuch/flow/account").status_code == 404


def test_idle_flow_times_out(amami):
    import datetime as dt
    from webapp import clock
    amami.start()
    clock.set_now(clock.now() + dt.timedelta(minutes=16))
    assert amami.get("flow/account").status_code == 400


def test_cancel_ends_the_flow_and_returns_access_denied(amami):
    amami.start()
    amami.account()
    amami.get("flow/customer")
    response = amami.post("flow/cancel", {"confirm": "yes"})
    assert response.headers["Location"].endswith("/amami/flow/cancelled")
    page = text_of(amami.get("flow/cancelled"))
    assert "API連携認証の中止" in page and "API連携認証を中止しました。" in page and "連携元画面へ" in page
    href = page.split('class="button primary" href="')[1].split('"')[0].replace("&amp;", "&")
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.example/cb"
    assert parse_qs(parts.query) == {"error": ["access_denied"], "state": ["xyz"], "iss": ["https://renkei.test/amami"]}
    # nothing of the flow can be resumed
    assert amami.get("flow/customer").status_code == 400


def test_cancel_needs_csrf_token(amami):
    amami.start()
    response = amami.client.post("/amami/flow/cancel", data={})
    assert response.status_code == 400
    assert amami.get("flow/account").status_code == 200  # the flow is still alive


def test_unknown_client_gets_error_page_never_redirect(client, customers):
    response = client.get("/amami/oauth/authorize", query_string={"client_id": "nope", "redirect_uri": "https://evil.example/cb",
                                                                   "response_type": "code"})
    assert response.status_code == 400 and "Location" not in response.headers


def test_cancel_first_asks_whether_to_cancel_and_ends_nothing(amami):
    """中止する is one tap away from 次へ: without a second, deliberate answer the flow goes on."""
    amami.start()
    amami.account()
    amami.get("flow/customer")
    page = amami.post("flow/cancel", {})
    assert page.status_code == 200
    html = text_of(page)
    assert "中止してよろしいですか" in html
    assert '<input type="hidden" name="confirm" value="yes">' in html
    assert '<button type="submit" class="button danger">中止する</button>' in html
    assert 'href="/amami/flow/customer">戻る</a>' in html  # 戻る (no JavaScript): back to where the customer was
    assert "<html" in html  # a page of its own without JavaScript
    assert amami.get("flow/customer").status_code == 200  # 戻る: the flow is alive, at ②


def test_cancel_with_htmx_asks_in_a_modal_dialog(amami):
    amami.start()
    dialog = text_of(amami.post("flow/cancel", {}, htmx=True))
    assert "<html" not in dialog
    assert 'role="alertdialog" aria-modal="true"' in dialog and "中止してよろしいですか" in dialog
    assert '<form method="dialog"><button type="submit" class="button secondary" autofocus>戻る</button></form>' in dialog
    assert amami.get("flow/account").status_code == 200


def test_refusing_on_consent_asks_with_the_words_of_its_button(amami):
    from test_oauth_support import at_consent

    at_consent(amami)
    html = text_of(amami.post("flow/cancel", {}))
    assert "中止してよろしいですか" in html and '<button type="submit" class="button danger">拒否する</button>' in html
    assert amami.get("flow/consent").status_code == 200
