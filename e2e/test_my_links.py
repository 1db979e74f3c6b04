"""連携中のアプリ (CONTRACT §10) in a phone's browser, for each union, with JavaScript and without:
the customer proves who they are with ① ② ③ ④ ⑤, sees the app linked to the account (name,
operator, dates, last API use), ends it after a confirmation, and the app's token stops at once.

The link is made the way the server would store it (a registered app, a consent and a token in the
live server's database) so each test has an app of its own among whatever the other browser tests
linked to the same demo account; the whole authorization itself runs in test_full_flow.py.
"""
from __future__ import annotations

import re
import secrets

import pytest
import requests
from playwright.sync_api import Page, expect

from conftest import TENANTS, Customer, LiveServer, linked_token, screenshot, title, to_phone_screen
from a11y import assert_no_axe_violations

OPERATOR = "e2e連携テスト株式会社"
CALL_SEEN = "着信を確認しました。「確定する」ボタンを押してください。"

pytestmark = pytest.mark.parametrize("tenant", TENANTS)


def link_app(server: LiveServer, c: Customer) -> tuple[str, str]:
    """A newly registered app linked to `c`'s account: (its name, its access token)."""
    name = f"家計簿アプリ{secrets.token_hex(3)}"
    out = server.flask("clients", "add", "--tenant", c.tenant, "--name", name, "--operator", OPERATOR,
                       "--redirect-uri", f"{server.origin}/demo/callback")
    client_id = re.search(r'"client_id":\s*"([^"]+)"', out).group(1)
    return name, linked_token(server, client_id, c)


def api_status(server: LiveServer, tenant: str, token: str) -> int:
    return requests.get(f"{server.origin}/{tenant}/api/v1/accounts", headers={"Authorization": f"Bearer {token}"},
                        timeout=10, verify=server.verify).status_code


def pin_of(c: Customer) -> str:
    from webapp import demo

    return next(a["pin"] for a in demo.customers(c.tenant) if a["number"] == c.number and a["type"] == c.account_type)


def prove_identity(page: Page, c: Customer) -> None:
    """「本人確認へ進む」, then ① ② ③ ④ ⑤ by label, up to 連携中のアプリ."""
    page.get_by_role("button", name="本人確認へ進む").click()
    expect(title(page)).to_have_text("API連携認証（ご利用口座情報入力）")
    to_phone_screen(page, c)
    page.get_by_role("button", name="電話番号の決定").click()
    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    page.get_by_role("button", name="（デモ）この番号から発信する").click()
    expect(page.get_by_role("status")).to_contain_text(CALL_SEEN)
    page.get_by_role("button", name="確定する").click()
    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")
    page.get_by_label("キャッシュカードの暗証番号").fill(pin_of(c))
    page.get_by_role("button", name="次へ").click()
    expect(title(page)).to_have_text("連携中のアプリ")


def test_the_customer_sees_their_app_and_ends_the_link(page: Page, live_server, customers, tenant, javascript):
    mode = "js" if javascript else "nojs"
    c = customers[tenant]
    app_name, token = link_app(live_server, c)
    assert api_status(live_server, tenant, token) == 200  # the app reads the account once

    page.goto(f"/{tenant}/my/links")
    expect(title(page)).to_have_text("連携中のアプリ")
    assert page.title().startswith("連携中のアプリ｜")
    assert_no_axe_violations(page)
    prove_identity(page, c)

    app = page.get_by_role("article", name=app_name)
    expect(app).to_contain_text(OPERATOR)
    expect(app).to_contain_text("連携を許可した日時")
    expect(app).to_contain_text("認可期間の終了")
    expect(app.locator("dd").nth(3)).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}$"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than the phone"
    screenshot(page, f"{tenant}-my-links-{mode}")
    assert_no_axe_violations(page)

    app.get_by_role("button", name="連携を解除する").click()
    question = page.get_by_role("alertdialog") if javascript else page.get_by_role("main")
    expect(question).to_contain_text(f"「{app_name}」との連携を解除してよろしいですか")
    if javascript:
        expect(question.get_by_role("button", name="戻る")).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.get_by_role("alertdialog")).to_be_hidden()
        app.get_by_role("button", name="連携を解除する").click()
    else:
        screenshot(page, f"{tenant}-my-links-confirm-nojs")
        page.get_by_role("link", name="戻る").click()
        expect(title(page)).to_have_text("連携中のアプリ")
        app.get_by_role("button", name="連携を解除する").click()
    assert api_status(live_server, tenant, token) == 200  # asking ended nothing
    question.get_by_role("button", name="連携を解除する").click()

    expect(page.get_by_role("status")).to_contain_text(f"「{app_name}」との連携を解除しました。")
    expect(page.get_by_role("article", name=app_name)).to_have_count(0)
    assert api_status(live_server, tenant, token) == 401

    page.get_by_role("button", name="終了する").click()
    expect(page.get_by_role("status")).to_contain_text("連携中のアプリの確認を終了しました。")
    expect(page.get_by_role("button", name="本人確認へ進む")).to_be_visible()
