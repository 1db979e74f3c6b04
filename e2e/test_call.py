"""Screens ③ SOA208 and ④ SOA209 in a phone's browser, for each union, with JavaScript and without.

The call is the real thing as far as the server can tell: the test process posts the telephony
provider's signed webhook over HTTP to the live server, for the number the page shows as its
`tel:` link. With JavaScript the status area updates by itself (htmx polling) and stops polling in
a final state; without, the customer presses 「確定する」. The window's end is seen on a second
server started with a 3-second window (the live server runs on the real clock).
"""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from conftest import (TENANTS, Customer, provider_calls, register_app, screenshot, serve, start_flow_in, title,
                      to_phone_screen)

CALL_SEEN = "着信を確認しました。「確定する」ボタンを押してください。"
WAITING = "認証先電話番号へのお電話をお待ちしています。"
PRESSED_EARLY = "認証中（認証着信待ち）"
# Long enough for what a test does inside the window after 「もう一度…」 (the call, a 2 s poll to see
# it, a screenshot, 確定する) on a busy machine; 3 s once ran out there and left the flow on ④.
SHORT_WINDOW = 6
EXPIRED = f"お電話の受付時間（{SHORT_WINDOW}秒）が過ぎました。"
RETRY = "もう一度電話番号認証を行う"
STATUS_PATH = "/flow/call/status"

pytestmark = pytest.mark.parametrize("tenant", TENANTS)


# --- servers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def short_window_server(tmp_path_factory):
    """A second live server whose call window is SHORT_WINDOW seconds, so a test can see the window end."""
    work = tmp_path_factory.mktemp("short-window")
    with serve(work, work / "server.log", FLASK_PHONE_AUTH_WINDOW_SECONDS=str(SHORT_WINDOW)) as server:
        yield server
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


# --- what the customer and the telephony provider do ---------------------------------------------

def status(page: Page):
    return page.get_by_role("status")


def masked(phone: str) -> str:
    return "*" * (len(phone) - 4) + phone[-4:]


def to_call_screen(page: Page, c: Customer, *, at_phone_screen: bool = False) -> str:
    """(① ② →) ③ → 「電話番号の決定」 → ④; the pool number the page offers as a tel: link."""
    if not at_phone_screen:
        to_phone_screen(page, c)
    expect(page.get_by_text(masked(c.phone), exact=True)).to_be_visible()
    expect(page.get_by_text(c.phone)).to_have_count(0)
    page.get_by_role("button", name="電話番号の決定").click()
    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    expect(page.get_by_role("contentinfo")).to_contain_text("画面ID : SOA209")
    link = page.get_by_role("main").locator("a[href^='tel:']")  # 発信先 (the footer has the union's own)
    expect(link).to_have_count(1)
    href = link.get_attribute("href")
    assert re.fullmatch(r"tel:0120[0-9]{6}", href), href
    return href.removeprefix("tel:")


def assert_answered_next_to_the_button(page: Page) -> None:
    """「確定する」 pressed before the call: the answer stands right under that button."""
    answer = page.locator("#pressed-early")
    expect(answer).to_have_text(PRESSED_EARLY)
    button = page.get_by_role("button", name="確定する").bounding_box()
    assert 0 <= answer.bounding_box()["y"] - (button["y"] + button["height"]) < 40


def count_polls(page: Page, seconds: float) -> int:
    """How many status polls the page makes in `seconds`."""
    seen = []
    listener = lambda request: seen.append(request.url) if STATUS_PATH in request.url else None  # noqa: E731
    page.on("request", listener)
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("request", listener)
    return len(seen)


def mode(javascript: bool) -> str:
    return "js" if javascript else "nojs"


# --- the tests -----------------------------------------------------------------------------------

def test_call_from_the_registered_phone_then_confirm_reaches_pin_screen(
        page, start_flow, live_server, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    to_phone_screen(page, c)
    screenshot(page, f"{tenant}-SOA208-{mode(javascript)}")
    number = to_call_screen(page, c, at_phone_screen=True)
    expect(status(page)).to_contain_text(WAITING)
    expect(page.get_by_text("本画面が表示されてから120秒以内に、お電話ください。")).to_be_visible()
    expect(page.get_by_text(masked(c.phone), exact=True)).to_be_visible()
    screenshot(page, f"{tenant}-SOA209-waiting-{mode(javascript)}")
    if javascript:
        page.evaluate("window.__sameDocument = true")
        assert count_polls(page, 2.5) >= 1  # waiting: the status area polls

    provider_calls(live_server, c.phone, number)

    if javascript:  # the status updates in place by itself, then polling stops
        expect(status(page)).to_contain_text(CALL_SEEN)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded instead of updating in place"
        assert count_polls(page, 4.5) == 0
    else:  # nothing changes by itself without JavaScript
        page.wait_for_timeout(2500)
        expect(status(page)).to_contain_text(WAITING)
    screenshot(page, f"{tenant}-SOA209-called-{mode(javascript)}")
    page.get_by_role("button", name="確定する").click()
    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")
    expect(page.get_by_role("contentinfo")).to_contain_text("画面ID : SOA211")


def test_confirm_before_the_call_says_waiting_for_the_call(
        page, start_flow, live_server, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    number = to_call_screen(page, c)
    page.get_by_role("button", name="確定する").click()
    assert_answered_next_to_the_button(page)
    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    screenshot(page, f"{tenant}-SOA209-pressed-early-{mode(javascript)}")

    provider_calls(live_server, c.phone, number)
    if javascript:
        expect(status(page)).to_contain_text(CALL_SEEN)
    page.get_by_role("button", name="確定する").click()
    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")


def test_call_from_another_number_or_withheld_does_not_authenticate(
        page, start_flow, live_server, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    number = to_call_screen(page, c)
    provider_calls(live_server, "09099998888", number)
    provider_calls(live_server, "anonymous", number)
    if javascript:
        expect(status(page)).to_contain_text("非通知の着信がありました。")
    else:
        page.reload()
        expect(status(page)).to_contain_text("「186」")
    expect(status(page)).not_to_contain_text(CALL_SEEN)
    page.get_by_role("button", name="確定する").click()
    assert_answered_next_to_the_button(page)


def test_after_the_window_neither_call_nor_confirm_counts_and_screen_one_is_offered(
        page, short_window_server, customers, tenant, javascript):
    server = short_window_server
    c = customers[tenant]
    start_flow_in(page, server, register_app(server, tenant))
    number = to_call_screen(page, c)
    expect(page.get_by_text(f"本画面が表示されてから{SHORT_WINDOW}秒以内に、お電話ください。")).to_be_visible()
    if javascript:  # the status area turns to the manual's message by itself, and polling stops
        expect(status(page)).to_contain_text(EXPIRED, timeout=SHORT_WINDOW * 1000 + 6000)
        assert count_polls(page, 4.5) == 0
        provider_calls(server, c.phone, number)  # too late
        expect(status(page)).not_to_contain_text(CALL_SEEN)
    else:
        time.sleep(SHORT_WINDOW + 0.5)
        provider_calls(server, c.phone, number)  # too late
        page.get_by_role("button", name="確定する").click()
        expect(status(page)).to_contain_text(EXPIRED)
        expect(page.get_by_role("button", name="確定する")).to_have_count(0)
    screenshot(page, f"{tenant}-SOA209-expired-{mode(javascript)}",
               docs=f"{tenant}-error-call-expired" if javascript else None)
    expect(page.get_by_role("main").locator("a[href^='tel:']")).to_have_count(0)  # nothing left to call
    page.get_by_role("button", name="最初に戻る").click()
    expect(title(page)).to_have_text("API連携認証（ご利用口座情報入力）")


def test_after_the_window_a_new_window_on_four_itself(page, short_window_server, customers, tenant, javascript):
    """「もう一度電話番号認証を行う」: a new number and a fresh window on ④, no ① ② again; the call to
    it works; with JavaScript the confirmed state takes focus to 確定する."""
    server = short_window_server
    c = customers[tenant]
    start_flow_in(page, server, register_app(server, tenant))
    first = to_call_screen(page, c)
    if javascript:
        expect(page.get_by_text(re.compile(r"残り [0-9]+ 秒"))).to_be_visible()
    else:
        expect(page.get_by_text(re.compile(r"残り [0-9]+ 秒"))).to_be_hidden()
    expect(page.get_by_text(re.compile(r"[0-9]+:[0-9]{2} までにお電話ください"))).to_be_visible()
    if javascript:
        expect(status(page)).to_contain_text(EXPIRED, timeout=SHORT_WINDOW * 1000 + 6000)
    else:
        time.sleep(SHORT_WINDOW + 0.5)
        page.reload()
        expect(status(page)).to_contain_text(EXPIRED)
    page.get_by_role("button", name=RETRY).click()
    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    link = page.get_by_role("main").locator("a[href^='tel:']")
    expect(link).to_have_count(1)
    second = link.get_attribute("href").removeprefix("tel:")
    assert second != first
    expect(link).to_have_text(re.compile(r"^0120-[0-9]{3}-[0-9]{3} に電話をかける$"))
    provider_calls(server, c.phone, second)
    if javascript:
        expect(status(page)).to_contain_text(CALL_SEEN)
        expect(page.get_by_role("button", name="確定する")).to_be_focused()
    else:
        page.reload()
        expect(status(page)).to_contain_text(CALL_SEEN)
    screenshot(page, f"{tenant}-SOA209-called-after-retry-{mode(javascript)}")
    page.get_by_role("button", name="確定する").click()
    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")
