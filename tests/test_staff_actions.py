"""The account page and the staff actions, each seen from the customer's or the app's side, each
written once to the operation log with the staff id and the reason."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session, select

from webapp import clock, db, messages
from webapp.oauth.models import Consent
from webapp.oplog import OperationLog
from webapp.maintenance import MaintenanceWindow
from webapp.staff.models import StaffAccount

from conftest import DEMO, text_of
from staff_support import FAST_HASHING, signed_in
from test_oauth_support import refresh, tokens

C = DEMO["amami"]
ACCOUNT = f"accounts/{C['branch']}/{C['account_type']}/{C['number']}"


@pytest.fixture
def app_config():
    return dict(FAST_HASHING)


@pytest.fixture
def staff(app, customers):
    """An operator of 奄美 signed in, in a browser of their own."""
    return signed_in(app, app.test_client(), "amami")


def log_rows(app, *where):
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(OperationLog).where(OperationLog.screen == "STAFF", *where)
                           .order_by(OperationLog.id)))


def staff_id(app) -> int:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(StaffAccount.id)).first()


def lock(amami):
    amami.start()
    amami.account()
    for _ in range(5):
        amami.customer(birth_year="1999")
    assert "B84" in text_of(amami.customer())


# --- the account page -----------------------------------------------------------------------------

def test_account_search_goes_to_the_account_page(staff):
    response = staff.get("accounts", query_string={"branch": "１１５", "account_type": "1", "number": "1100026"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/amami/staff/{ACCOUNT}")


def test_account_search_with_a_bad_number_says_so(staff):
    response = staff.get("accounts", query_string={"branch": "11", "account_type": "1", "number": "abc"})
    assert response.status_code == 200
    assert "半角数字3桁で入力して下さい。" in text_of(response)
    assert "半角数字7桁以内で入力して下さい。" in text_of(response)


def test_account_page_shows_name_lock_consents_and_log(staff, amami):
    lock(amami)
    page = text_of(staff.get(ACCOUNT))
    assert C["name_kana"] in page
    assert "ロック中" in page and "5 回（5 回でロック）" in page
    assert "B84" in page  # the last refusal's reason code
    assert "identity_check" in page and "account_locked" in page  # the account's log rows


def test_account_page_of_an_unknown_account_shows_no_name(staff):
    page = staff.get("accounts/115/1/9999999")
    assert page.status_code == 200
    assert "勘定系にこの口座の登録がありません" in text_of(page) and "ロックなし" in text_of(page)


def test_account_page_refuses_a_malformed_url(staff):
    assert staff.get("accounts/11a/1/1100026").status_code == 404
    assert staff.get("accounts/115/9/1100026").status_code == 404  # not one of this union's 科目


def test_account_page_shows_at_most_50_log_rows(app, staff):
    with app.app_context(), Session(db.engine()) as s:
        for i in range(60):
            s.add(OperationLog(at=clock.now() + dt.timedelta(seconds=i), tenant="amami", screen="SOA201",
                               event=f"e{i:02d}", result="ok", branch=C["branch"], account_type=C["account_type"],
                               account_number=C["number"]))
        s.commit()
    page = text_of(staff.get(ACCOUNT))
    assert page.count('<tr class="result-') == 50
    assert "e59" in page and "e10" in page and "e09" not in page


# --- unlock ---------------------------------------------------------------------------------------

def test_unlocked_customer_passes_the_customer_screen(app, staff, amami):
    lock(amami)
    staff.get(ACCOUNT)
    response = staff.post(f"{ACCOUNT}/unlock", {"reason": "本人から電話で依頼"})
    assert response.status_code == 303
    assert "ロックを解除しました" in text_of(staff.client.get(response.headers["Location"]))
    assert "ロックなし" in text_of(staff.get(ACCOUNT))
    amami.start()
    amami.account()
    assert amami.customer().status_code == 303  # ② passed
    rows = log_rows(app, OperationLog.event == "unlock")
    assert len(rows) == 1 and rows[0].staff_id == staff_id(app) and rows[0].detail == "本人から電話で依頼"
    assert rows[0].account_number == C["number"] and rows[0].result == "ok"


def test_unlock_needs_a_reason(app, staff, amami):
    lock(amami)
    staff.get(ACCOUNT)
    response = staff.post(f"{ACCOUNT}/unlock", {"reason": "  "})
    assert response.status_code == 400 and "必ず入力して下さい。" in text_of(response)
    assert "B84" in text_of(amami.customer())  # still locked
    assert log_rows(app, OperationLog.event == "unlock") == []


# --- revoke ---------------------------------------------------------------------------------------

def consent_id(app) -> int:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(Consent.id)).one()


def test_revoked_consent_tokens_get_401_and_refresh_fails(app, staff, amami):
    body = tokens(amami)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.get("/amami/api/v1/accounts", headers=headers).status_code == 200
    page = text_of(staff.get(ACCOUNT))
    assert "しんくみアプリwith CRECO" in page and "アイ・ティ・リアライズ株式会社" in page and "有効" in page
    cid = consent_id(app)
    response = staff.post(f"{ACCOUNT}/consents/{cid}/revoke", {"reason": "本人来店、連携解除の申出"})
    assert response.status_code == 303
    assert api.get("/amami/api/v1/accounts", headers=headers).status_code == 401
    assert refresh(amami, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert "解除済み" in text_of(staff.get(ACCOUNT))
    rows = log_rows(app, OperationLog.event == "consent_revoked")
    assert len(rows) == 1 and rows[0].staff_id == staff_id(app)
    assert rows[0].client_id == amami.oauth_client["client_id"] and "本人来店" in rows[0].detail


def test_revoke_refuses_a_consent_of_another_account(app, staff, amami):
    tokens(amami)
    cid = consent_id(app)
    staff.get(ACCOUNT)
    assert staff.post(f"accounts/115/1/2200031/consents/{cid}/revoke", {"reason": "x"}).status_code == 404
    with app.app_context(), Session(db.engine()) as s:
        assert s.get(Consent, cid).revoked_at is None


# --- ad hoc maintenance ---------------------------------------------------------------------------

def add_window(staff, start: dt.datetime, end: dt.datetime, reason="勘定系の臨時保守"):
    staff.get("maintenance")
    return staff.post("maintenance", {"start_date": f"{start:%Y-%m-%d}", "start_time": f"{start:%H:%M}",
                                      "end_date": f"{end:%Y-%m-%d}", "end_time": f"{end:%H:%M}", "reason": reason})


def test_ad_hoc_window_shows_the_maintenance_message_at_once(app, staff, amami):
    now = clock.now_jst()
    assert add_window(staff, now - dt.timedelta(minutes=5), now + dt.timedelta(hours=1)).status_code == 303
    response = amami.client.get("/amami/flow/account")
    assert response.status_code == 503 and messages.MAINTENANCE in text_of(response)
    faq = text_of(amami.client.get("/amami/faq"))
    start = now - dt.timedelta(minutes=5)
    assert f"{start.year}年{start.month}月{start.day}日 {start.hour}:{start.minute:02d}" in faq
    rows = log_rows(app, OperationLog.event == "maintenance_added")
    assert len(rows) == 1 and rows[0].staff_id == staff_id(app) and "勘定系の臨時保守" in rows[0].detail


def test_ad_hoc_window_is_followed_by_every_worker(app, staff, customers):
    """Another app on the same database (another worker or host) follows the window at once."""
    from conftest import make_app

    other = make_app(app.config["DATABASE_URL"], **FAST_HASHING)
    browser = other.test_client()
    assert browser.get("/amami/flow/account").status_code != 503  # warm: nothing cached before
    now = clock.now_jst()
    add_window(staff, now, now + dt.timedelta(hours=1))
    assert browser.get("/amami/oauth/authorize").status_code == 503


def test_future_window_does_not_close_now_and_cancel_reopens(app, staff, amami):
    now = clock.now_jst()
    add_window(staff, now + dt.timedelta(hours=2), now + dt.timedelta(hours=3))
    amami.start()
    assert amami.get("flow/account").status_code == 200
    clock.set_now(clock.now() + dt.timedelta(hours=2, minutes=1))
    assert amami.client.get("/amami/flow/account").status_code == 503
    with app.app_context(), Session(db.engine()) as s:
        window_id = s.exec(select(MaintenanceWindow.id)).one()
    staff.log_in()  # two hours later: signed out by the 15 minute idle rule
    page = staff.get("maintenance")
    assert "実施中" in text_of(page)
    assert staff.post(f"maintenance/{window_id}/cancel", {"reason": "保守が早く終わった"}).status_code == 303
    assert amami.client.get("/amami/flow/account").status_code != 503
    rows = log_rows(app, OperationLog.event == "maintenance_cancelled")
    assert len(rows) == 1 and rows[0].staff_id == staff_id(app)


def test_window_must_end_after_it_starts(staff):
    now = clock.now_jst()
    response = add_window(staff, now + dt.timedelta(hours=2), now + dt.timedelta(hours=1))
    assert response.status_code == 400 and "終了日時は開始日時より後にしてください。" in text_of(response)


def test_window_needs_a_reason_and_dates(staff):
    staff.get("maintenance")
    response = staff.post("maintenance", {"start_date": "2026-13-01", "reason": ""})
    assert response.status_code == 400
    assert "必ず入力して下さい。" in text_of(response)


def test_one_unions_window_does_not_close_the_other(app, staff, maruhachi):
    now = clock.now_jst()
    add_window(staff, now, now + dt.timedelta(hours=1))
    maruhachi.start()
    assert maruhachi.get("flow/account").status_code == 200


def test_window_closes_from_its_start_until_its_end_exactly(app, staff, amami):
    start = clock.now_jst().replace(second=0, microsecond=0) + dt.timedelta(minutes=10)
    end = start + dt.timedelta(minutes=30)
    add_window(staff, start, end)
    amami.start()
    for at, status in ((start - dt.timedelta(microseconds=1), 200), (start, 503),
                       (end - dt.timedelta(microseconds=1), 503), (end, 200)):
        clock.set_now(at)
        assert (amami.client.get("/amami/flow/account").status_code == 503) == (status == 503), at
