"""The staff console in a desktop browser: a staff member set up from `flask staff add`'s link signs
in with password and TOTP, then unlocks a locked customer (who then passes ②), revokes an app's
consent (whose token then gets 401), and announces an ad hoc maintenance window (which the
customer's screens and the FAQ show at once), then cancels it. With E2E_SCREENS=1 the screens
are saved to docs/screens/ (the README's pictures), else to e2e/artifacts/.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import secrets
import time

import pyotp
import pytest
import requests
from playwright.sync_api import Page, expect

from webapp import messages

from conftest import ARTIFACTS, ROOT, Customer, enter_account, enter_customer, linked_token, start_flow_in, title

DESKTOP = dict(viewport={"width": 1280, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
SCREENS = ROOT / "docs" / "screens"
PASSWORD = "e2e staff password 0123"
JST = dt.timezone(dt.timedelta(hours=9))


def shot(page: Page, name: str) -> None:
    """Into e2e/artifacts/; with E2E_SCREENS=1, into docs/screens/ (the README's pictures) instead."""
    folder = SCREENS if os.environ.get("E2E_SCREENS") == "1" else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"staff-{name}.png"), full_page=True)


@pytest.fixture
def desk(browser, live_server):
    context = browser.new_context(**DESKTOP, base_url=live_server.origin, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone(browser, live_server):
    from conftest import PHONE

    # Without JavaScript: each 次へ is a whole page, so five wrong entries are five answers in turn.
    context = browser.new_context(**PHONE, base_url=live_server.origin, ignore_https_errors=True,
                                  java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@dataclasses.dataclass
class StaffMember:
    email: str
    secret: str


def sign_in(desk: Page, live_server, role: str = "operator", screens: bool = False) -> StaffMember:
    """`flask staff add`, the setup page (QR code and key), then password and code."""
    email = f"{role}-{secrets.token_hex(4)}@amami.example.jp"
    url = json.loads(live_server.flask("staff", "add", "--tenant", "amami", "--email", email, "--role", role))["setup_url"]
    desk.goto(url)
    expect(title(desk)).to_have_text("パスワードと認証アプリの登録")
    expect(desk.get_by_role("img", name="認証アプリ登録用QRコード")).to_be_visible()
    secret = desk.locator("#totp-secret").inner_text().replace(" ", "")
    if screens:
        shot(desk, "setup")
    desk.get_by_label("パスワード（12文字以上）").fill(PASSWORD)
    desk.get_by_label("パスワード（確認）").fill(PASSWORD)
    desk.get_by_label("確認コード", exact=True).fill(pyotp.TOTP(secret).now())
    desk.get_by_role("button", name="登録する").click()
    expect(desk.get_by_text("パスワードと認証アプリの登録が完了しました。")).to_be_visible()
    desk.get_by_label("メールアドレス").fill(email)
    desk.get_by_label("パスワード", exact=True).fill(PASSWORD)
    if screens:
        shot(desk, "login")
    desk.get_by_role("button", name="次へ").click()
    expect(title(desk)).to_have_text("ログイン（確認コード）")
    # The setup used this 30 s step's code; a code is good once, and the next step's is accepted.
    desk.get_by_label("確認コード", exact=True).fill(pyotp.TOTP(secret).at(time.time() + 30))
    desk.get_by_role("button", name="ログイン").click()
    expect(title(desk)).to_have_text("本日の状況")
    return StaffMember(email, secret)


def other_customer(tenant: str = "amami") -> Customer:
    """Not the customer the other browser tests use: this one is locked and unlocked here."""
    from webapp import demo

    a = [a for a in demo.customers(tenant) if a["status"] == "active" and a["cash_card"] and a["type"] == "1"][1]
    return Customer(tenant, a["branch"], a["type"], a["number"], a["name_kana"], a["birth_date"], a["phone"])


def open_account(desk: Page, c: Customer) -> None:
    desk.get_by_role("link", name="口座照会").click()
    desk.get_by_label("店番").fill(c.branch)
    desk.get_by_label("科目").select_option(value=c.account_type)
    desk.get_by_label("口座番号").fill(c.number)
    desk.get_by_role("button", name="照会する").click()
    expect(desk.locator("#name-kana")).to_have_text(c.name_kana)


def test_unlocked_customer_passes_the_customer_screen(desk, phone, live_server, fintech_apps):
    c = other_customer()
    start_flow_in(phone, live_server, fintech_apps["amami"])
    enter_account(phone, c)
    for attempt in range(1, 6):
        enter_customer(phone, c, year="1999")
        dialog = phone.get_by_role("alertdialog")
        expect(dialog).to_contain_text(messages.LOCKED_NOW if attempt == 5 else messages.IDENTITY_MISMATCH)
        dialog.get_by_role("button", name="OK").click()
    phone.reload()  # the lock screen offers no form: coming back to ② shows B84
    expect(phone.get_by_text("理由コードはB84です。").first).to_be_visible()

    sign_in(desk, live_server, screens=True)
    shot(desk, "dashboard")
    open_account(desk, c)
    expect(desk.locator("#lock-state")).to_contain_text("ロック中")
    shot(desk, "account-locked")
    unlock = desk.locator("form", has=desk.get_by_role("button", name="ロックを解除する"))
    unlock.get_by_label("理由").fill("本人から電話、本人確認済み")
    unlock.get_by_role("button", name="ロックを解除する").click()
    expect(desk.get_by_text("ロックを解除しました。")).to_be_visible()
    expect(desk.locator("#lock-state")).to_contain_text("ロックなし")
    expect(desk.locator("#log")).to_contain_text("本人から電話、本人確認済み")

    start_flow_in(phone, live_server, fintech_apps["amami"])
    enter_account(phone, c)
    enter_customer(phone, c)
    expect(title(phone)).to_have_text("API連携認証（電話番号の確認）")


def test_revoked_consent_token_gets_401(desk, live_server, fintech_apps):
    c = other_customer()
    token = linked_token(live_server, fintech_apps["amami"].client_id, c)
    api = f"{live_server.origin}/amami/api/v1/accounts"
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(api, headers=headers, timeout=10, verify=live_server.verify).status_code == 200

    sign_in(desk, live_server)
    open_account(desk, c)
    row = desk.locator("#consents tbody tr").filter(has=desk.get_by_role("button", name="連携を解除する")).first
    expect(row).to_contain_text("しんくみアプリwith CRECO")
    shot(desk, "account-consents")
    row.get_by_label("理由").fill("本人来店、アプリの連携解除の申出")
    row.get_by_role("button", name="連携を解除する").click()
    expect(desk.get_by_text("連携を解除しました。")).to_be_visible()
    assert requests.get(api, headers=headers, timeout=10, verify=live_server.verify).status_code == 401


def test_ad_hoc_maintenance_shows_on_the_customer_screens_at_once(desk, phone, live_server, fintech_apps):
    sign_in(desk, live_server)
    desk.get_by_role("link", name="臨時メンテナンス").click()
    now = dt.datetime.now(JST)
    end = now + dt.timedelta(hours=1)
    desk.get_by_label("開始日").fill(f"{now:%Y-%m-%d}")
    desk.get_by_label("開始時刻").fill(f"{now:%H:%M}")
    desk.get_by_label("終了日").fill(f"{end:%Y-%m-%d}")
    desk.get_by_label("終了時刻").fill(f"{end:%H:%M}")
    desk.get_by_label("理由").first.fill("勘定系システムの臨時保守")
    desk.get_by_role("button", name="登録する").click()
    expect(desk.get_by_text("臨時メンテナンスを登録しました。")).to_be_visible()
    window = desk.locator("#windows tbody tr").first
    try:
        expect(window).to_contain_text("実施中")
        shot(desk, "maintenance")
        phone.goto(f"/amami/flow/account")
        expect(phone.get_by_text("ただ今の時間はサービスを行っていません。ご了承下さい。")).to_be_visible()
        phone.goto("/amami/faq")
        expect(phone.get_by_text(re.compile(f"{now.year}年{now.month}月{now.day}日 {now.hour}:{now.minute:02d}～"))).to_be_visible()
    finally:
        window.get_by_label("理由").fill("保守終了")
        window.get_by_role("button", name="取り消す").click()
    expect(desk.get_by_text("臨時メンテナンスを取り消しました。")).to_be_visible()
    start_flow_in(phone, live_server, fintech_apps["amami"])  # open again


def test_log_and_apps_pages(desk, live_server):
    sign_in(desk, live_server, role="admin")
    desk.get_by_role("link", name="操作ログ").click()
    desk.get_by_label("イベント").fill("staff_login")
    desk.get_by_role("button", name="検索する").click()
    expect(desk.locator("#log")).to_contain_text("staff_login")
    shot(desk, "log")
    with desk.expect_download() as download:
        desk.get_by_role("link", name=re.compile("CSVでダウンロード")).click()
    assert download.value.path().read_bytes().startswith(b"\xef\xbb\xbf\xe6\x97\xa5\xe6\x99\x82")  # BOM, 日時
    desk.get_by_role("link", name="連携アプリ").click()
    expect(desk.locator("#apps")).to_contain_text("しんくみアプリwith CRECO")
    shot(desk, "apps")
