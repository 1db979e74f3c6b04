"""Screens ① SOA201 ご利用口座情報入力 and ② SOA202 お客様情報入力, in a phone's browser, as a
customer of each union uses them: by label, with JavaScript (htmx swaps) and without."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from conftest import Customer, enter_account, enter_customer, screenshot, start_flow_in, title

TITLE = {
    "SOA201": "API連携認証（ご利用口座情報入力）",
    "SOA202": "API連携認証（お客様情報入力）",
    "SOA208": "API連携認証（電話番号の確認）",
}
# SPEC §1, §4: what each union offers and how it is reached.
ACCOUNT_TYPES = {"amami": ["普通預金", "貯蓄預金"], "maruhachi": ["普通預金"]}
UNION = {"amami": ("奄美信用組合", "0997-52-7111"), "maruhachi": ("丸八信用組合", "0120-7584-08")}
REQUIRED = "必ず入力して下さい。"
MISMATCH = "本人認証情報が誤っています。本人認証項目をご確認のうえ、再度入力して下さい。"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

pytestmark = pytest.mark.parametrize("tenant", ["amami", "maruhachi"])


def email(page: Page):
    return page.get_by_label(re.compile(r"メールアドレス$"))


def mark_document(page: Page, javascript: bool):
    """With JavaScript, tag the loaded document: a full page load would lose the tag."""
    if javascript:
        page.evaluate("window.__sameDocument = true")


def assert_swapped_in_place(page: Page, javascript: bool, url: str):
    """With JS, htmx swapped the answer into the page (no navigation); without, the server
    rendered the same screen again at the same address."""
    assert page.url == url
    if javascript:
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded instead of swapped in place"


def assert_missing_fields_dialog(page: Page):
    dialog = page.get_by_role("alertdialog", name="エラー")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("入力されていない項目があります。")
    return dialog


def test_correct_entries_on_one_and_two_reach_phone_confirmation(page, start_flow, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    # the form comes first; the manual's two notes are one tap away, folded (no JavaScript needed)
    expect(page.get_by_label("店番")).to_be_in_viewport()
    expect(page.get_by_role("heading", name="免責事項")).to_be_hidden()
    page.get_by_text("ご利用前の注意事項").click()
    expect(page.get_by_role("heading", name="免責事項")).to_be_visible()
    expect(page.get_by_text("アイ・ティ・リアライズ株式会社に提供するものです")).to_be_visible()
    expect(page.get_by_role("heading", name="注意事項")).to_be_visible()
    screenshot(page, f"{tenant}-SOA201-{'js' if javascript else 'nojs'}")

    enter_account(page, c)
    expect(title(page)).to_have_text(TITLE["SOA202"])
    expect(page.get_by_text(f"店番 {c.branch} 普通預金 {c.number}")).to_be_visible()
    screenshot(page, f"{tenant}-SOA202-{'js' if javascript else 'nojs'}")

    enter_customer(page, c)
    expect(title(page)).to_have_text(TITLE["SOA208"])
    assert page.url.endswith(f"/{tenant}/flow/phone")


def test_account_types_offered_are_the_unions(page, start_flow, tenant):
    start_flow(tenant)
    expect(page.get_by_label("科目").locator("option")).to_have_text(ACCOUNT_TYPES[tenant])


def test_missing_account_fields_get_error_dialog_and_keep_entries(page, start_flow, tenant, javascript):
    start_flow(tenant)
    url = page.url
    mark_document(page, javascript)
    page.get_by_label("店番").fill("115")
    page.get_by_role("button", name="次へ").click()

    dialog = assert_missing_fields_dialog(page)
    assert_swapped_in_place(page, javascript, url)
    expect(title(page)).to_have_text(TITLE["SOA201"])
    expect(page.get_by_label("口座番号")).to_have_accessible_description(re.compile(REQUIRED))
    expect(page.get_by_label("店番")).to_have_value("115")
    expect(page.get_by_label("店番")).not_to_have_accessible_description(re.compile(REQUIRED))
    screenshot(page, f"{tenant}-SOA201-missing-{'js' if javascript else 'nojs'}")

    if not javascript:  # the page reloaded at its top: the error summary has focus and names the field
        summary = page.locator(".error-summary")
        expect(summary).to_be_focused()
        expect(summary.get_by_role("link", name=f"口座番号：{REQUIRED}")).to_be_visible()
        expect(page).to_have_title(re.compile("^エラー："))
    dialog.get_by_role("button", name="OK").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text(REQUIRED, exact=True)).to_be_visible()  # the field's message stays
    if javascript:  # after OK, focus is on the first wrong field
        expect(page.get_by_label("口座番号")).to_be_focused()


def test_missing_customer_fields_get_error_dialog_and_keep_entries(page, start_flow, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    enter_account(page, c)
    expect(title(page)).to_have_text(TITLE["SOA202"])
    url = page.url
    mark_document(page, javascript)
    page.get_by_label("お名前").fill(c.name_kana)
    page.get_by_label("電話番号").fill(c.phone)
    page.get_by_role("button", name="次へ").click()

    dialog = assert_missing_fields_dialog(page)
    assert_swapped_in_place(page, javascript, url)
    for empty in (page.get_by_label("生年月日（西暦 年）"), email(page), page.get_by_label("メールアドレス（確認用）")):
        expect(empty).to_have_accessible_description(re.compile(REQUIRED))
    expect(page.get_by_label("お名前")).to_have_value(c.name_kana)
    expect(page.get_by_label("電話番号")).to_have_value(c.phone)
    screenshot(page, f"{tenant}-SOA202-missing-{'js' if javascript else 'nojs'}",
               docs=f"{tenant}-error-required" if javascript else None)

    # the dialog names what is missing; with JavaScript it is modal and each name takes the customer there
    expect(dialog.get_by_role("link")).to_have_text(["生年月日（西暦 年）", "生年月日（月）", "生年月日（日）", "メールアドレス",
                                                     "メールアドレス（確認用）"])
    if javascript:
        assert page.evaluate("document.querySelector('dialog.error-dialog').matches(':modal')"), "not modal"
        dialog.get_by_role("link", name="メールアドレス", exact=True).click()
        expect(dialog).to_be_hidden()
        expect(email(page)).to_be_focused()
    else:
        dialog.get_by_role("button", name="OK").click()
        expect(dialog).to_be_hidden()


def test_full_width_digits_are_accepted(page, start_flow, customers, tenant):
    c = customers[tenant]
    start_flow(tenant)
    # As typed on a Japanese keyboard, and without the account number's leading zeros.
    enter_account(page, c, branch=c.branch.translate(FULL_WIDTH), number=c.number.lstrip("0").translate(FULL_WIDTH))
    expect(title(page)).to_have_text(TITLE["SOA202"])
    expect(page.get_by_text(f"店番 {c.branch} 普通預金 {c.number}")).to_be_visible()  # padded to 7 digits

    enter_customer(page, c, year=c.birth_date[:4].translate(FULL_WIDTH), phone=c.phone.translate(FULL_WIDTH))
    expect(title(page)).to_have_text(TITLE["SOA208"])


def test_wrong_birth_date_gets_error_two(page, start_flow, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    enter_account(page, c)
    expect(title(page)).to_have_text(TITLE["SOA202"])
    url = page.url
    mark_document(page, javascript)
    enter_customer(page, c, year=str(int(c.birth_date[:4]) + 1))

    # announced once, by the 「エラー」 dialog; the banner stays on the page after OK
    expect(page.get_by_role("alertdialog", name="エラー")).to_contain_text(MISMATCH)
    expect(page.get_by_role("alert")).to_have_count(0)
    page.get_by_role("alertdialog").get_by_role("button", name="OK").click()
    expect(page.locator(".alert").get_by_text(MISMATCH)).to_be_visible()
    assert_swapped_in_place(page, javascript, url)
    expect(title(page)).to_have_text(TITLE["SOA202"])
    screenshot(page, f"{tenant}-SOA202-mismatch-{'js' if javascript else 'nojs'}",
               docs=f"{tenant}-error-mismatch" if javascript else None)


def test_footer_on_one_and_two(page, start_flow, customers, live_server, tenant):
    name, phone = UNION[tenant]
    start_flow(tenant)
    for screen_id in ("SOA201", "SOA202"):
        footer = page.get_by_role("contentinfo")
        expect(footer.get_by_role("link", name="API利用規定")).to_have_attribute("href", re.compile(r"^https://"))
        expect(footer.get_by_role("link", name="よくあるご質問")).to_have_attribute(
            "href", re.compile(rf"/{tenant}/faq$"))
        expect(footer).to_contain_text("お問い合わせ先")
        expect(footer.get_by_role("link", name=phone)).to_have_attribute("href", "tel:" + phone.replace("-", ""))
        expect(footer).to_contain_text(f"画面ID : {screen_id}")
        expect(footer.get_by_text(re.compile(rf"Copyright.*{name}"))).to_be_visible()
        if screen_id == "SOA201":
            enter_account(page, customers[tenant])
            expect(title(page)).to_have_text(TITLE["SOA202"])


@pytest.mark.parametrize("javascript", [True], ids=["js"])
def test_one_and_two_work_in_a_desktop_browser(browser, live_server, fintech_apps, customers, tenant, javascript):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        start_flow_in(page, live_server, fintech_apps[tenant])
        screenshot(page, f"{tenant}-SOA201-desktop")
        enter_account(page, customers[tenant])
        expect(title(page)).to_have_text(TITLE["SOA202"])
        screenshot(page, f"{tenant}-SOA202-desktop")
    finally:
        context.close()


LOCKABLE = {"amami": ("120", "1200018"), "maruhachi": ("201", "0012353")}  # demo customers no other test locks


@pytest.fixture
def lockable(live_server, tenant):
    """A demo customer of `tenant` to lock; unlocked again afterwards (`flask locks unlock`)."""
    from webapp import demo

    branch, number = LOCKABLE[tenant]
    a = next(a for a in demo.customers(tenant) if a["branch"] == branch and a["number"] == number)
    yield Customer(tenant, branch, a["type"], number, a["name_kana"], a["birth_date"], a["phone"])
    live_server.flask("locks", "unlock", "--tenant", tenant, "--branch", branch, "--type", a["type"], "--number", number)


def test_fifth_wrong_entry_locks_and_the_lock_screen_says_what_now(page, start_flow, lockable, tenant, javascript):
    """No.3 as a customer meets it: when the lock lifts, the union's contact in the main content, no
    form to try again (issue 11); coming back to ② shows the lock (B84), not the form."""
    c = lockable
    start_flow(tenant)
    enter_account(page, c)
    for attempt in range(5):
        expect(title(page)).to_have_text(TITLE["SOA202"])
        enter_customer(page, c, year="1901")
        if attempt < 4:
            page.get_by_role("alertdialog").get_by_role("button", name="OK").click()
    main = page.get_by_role("main")
    expect(main).to_contain_text("お取扱いができなくなりました。")
    expect(main).to_contain_text("このロックは翌日の0時に自動で解除されます。")
    expect(main.get_by_role("link", name=re.compile("に電話をかける$"))).to_be_visible()
    expect(page.get_by_label("お名前")).to_have_count(0)  # no form to try again
    screenshot(page, f"{tenant}-locked-{'js' if javascript else 'nojs'}",
               docs=f"{tenant}-error-locked" if javascript else None)
    page.goto(page.url)
    expect(main).to_contain_text("理由コードはB84です。")
    expect(page.get_by_label("お名前")).to_have_count(0)
