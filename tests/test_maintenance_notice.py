"""The maintenance notice (SPEC §3 service-wide No.1) tells when service resumes and gives a way
back to the app; 中止する still works inside a window (issue 11)."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session, select

from conftest import text_of
from test_oauth_authorize import authorize, flows
from webapp import clock, db, messages
from webapp.flow.models import Flow
from webapp.oplog import OperationLog

AMAMI_0402 = dt.datetime(2026, 11, 18, 4, 2, tzinfo=clock.JST)  # amami: daily 04:00–04:05
SATURDAY_NIGHT = dt.datetime(2026, 11, 7, 23, 55, tzinfo=clock.JST)  # the night before the 2nd Sunday


def leave_form(page: str) -> str:
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*>\s*<input type="hidden" name="csrf_token"'
                     r'[^>]*>\s*<button type="submit" class="button primary">連携元画面へ</button>', page)
    assert form, "the notice offers no 連携元画面へ"
    return form.group(1)


def the_flow(app) -> Flow:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(Flow)).one()


def test_notice_inside_a_flow_says_when_service_resumes(amami):
    amami.start()
    clock.set_now(AMAMI_0402)
    page = amami.get("flow/account")
    assert page.status_code == 503
    text = text_of(page)
    assert messages.MAINTENANCE in text
    assert "サービスの再開は11月18日 4:05の予定です。" in text


def test_a_long_closure_resumes_at_its_real_end(amami):
    """The night before the 2nd Sunday runs to 7:00; the daily 4:00 window inside it does not cut it short."""
    amami.start()
    clock.set_now(SATURDAY_NIGHT)
    assert "サービスの再開は11月8日 7:00の予定です。" in text_of(amami.get("flow/account"))


def test_return_to_the_app_from_the_notice_ends_the_flow_and_says_temporarily_unavailable(amami):
    amami.start()
    clock.set_now(AMAMI_0402)
    page = text_of(amami.get("flow/customer"))
    action = leave_form(page)
    response = amami.client.post(action, data={"csrf_token": amami.csrf})
    assert response.status_code == 303
    back = urlsplit(response.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "https://app.example/cb"
    assert parse_qs(back.query) == {"error": ["temporarily_unavailable"], "error_description": ["maintenance"],
                                    "state": ["xyz"], "iss": ["https://renkei.test/amami"]}
    flow = the_flow(amami.app)
    assert flow.ended_at is not None and flow.outcome == "maintenance"
    with amami.app.app_context(), Session(db.engine()) as s:
        events = [row.event for row in s.exec(select(OperationLog).where(OperationLog.flow_id == flow.id))]
    assert "left_in_maintenance" in events
    # the flow is over: the same button again finds nothing to return to
    again = amami.client.post(action, data={"csrf_token": amami.csrf})
    assert again.status_code == 400 and messages.NO_FLOW in text_of(again)


def test_return_to_the_app_needs_the_csrf_token(amami):
    amami.start()
    clock.set_now(AMAMI_0402)
    action = leave_form(text_of(amami.get("flow/account")))
    refused = amami.client.post(action, data={})
    assert refused.status_code == 400
    assert the_flow(amami.app).ended_at is None


def test_cancel_still_works_inside_a_window(amami):
    amami.start()  # ① was on screen before the window began
    clock.set_now(AMAMI_0402)
    response = amami.post("flow/cancel", {"confirm": "yes"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/cancelled")
    page = amami.get("flow/cancelled")
    assert page.status_code == 200 and messages.CANCELLED in text_of(page)
    assert the_flow(amami.app).outcome == "cancelled"


def test_authorize_in_a_window_links_back_to_the_app_without_starting_a_flow(amami):
    clock.set_now(AMAMI_0402)
    response = authorize(amami)
    assert response.status_code == 503
    text = text_of(response)
    assert messages.MAINTENANCE in text and "サービスの再開は11月18日 4:05の予定です。" in text
    link = re.search(r'<a class="button primary" href="([^"]+)">連携元画面へ</a>', text)
    assert link, "no way back to the app"
    back = urlsplit(link.group(1).replace("&amp;", "&"))
    assert parse_qs(back.query)["error"] == ["temporarily_unavailable"]
    assert parse_qs(back.query)["state"] == ["xyz"]
    assert flows(amami.app) == []


def test_notices_show_the_unions_whole_contact_in_the_main_content(maruhachi):
    maruhachi.start()
    clock.set_now(dt.datetime(2026, 11, 18, 0, 0, 30, tzinfo=clock.JST))  # 丸八: daily 00:00–00:01
    page = text_of(maruhachi.get("flow/account"))
    main = page[page.index("<main"):page.index("</main>")]
    assert "丸八信用組合 管理課" in main
    assert '<a class="button call-button" href="tel:0120758408">0120-7584-08 に電話をかける</a>' in main
    assert '<a href="mailto:kanri@maruhachi-shinkumi.jp">kanri@maruhachi-shinkumi.jp</a>' in main
    assert "平日の午前9時～17時" in main


def test_authorize_in_a_window_for_an_unknown_app_shows_the_notice_without_a_link(amami):
    clock.set_now(AMAMI_0402)
    response = authorize(amami, client_id="nosuch")
    assert response.status_code == 503 and messages.MAINTENANCE in text_of(response)
    assert "連携元画面へ" not in text_of(response)
