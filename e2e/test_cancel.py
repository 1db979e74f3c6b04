"""中止する asks 「中止してよろしいですか」 before it ends the flow (issue 11): a modal dialog with
JavaScript, a page of its own without; 戻る leaves the customer where they were, entries kept."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from conftest import TENANTS, enter_account, screenshot, title

pytestmark = pytest.mark.parametrize("tenant", TENANTS)


def test_cancel_asks_first_and_back_keeps_the_flow(page: Page, start_flow, customers, tenant, javascript):
    c = customers[tenant]
    start_flow(tenant)
    enter_account(page, c)
    expect(title(page)).to_have_text("API連携認証（お客様情報入力）")
    page.get_by_label("お名前").fill(c.name_kana)

    page.get_by_role("button", name="中止する").click()
    if javascript:
        dialog = page.get_by_role("alertdialog")
        expect(dialog).to_contain_text("中止してよろしいですか")
        expect(dialog.get_by_role("button", name="戻る")).to_be_focused()
        assert page.evaluate("document.querySelector('dialog.confirm-dialog').matches(':modal')"), "not modal"
        screenshot(page, f"{tenant}-cancel-confirm-js", docs=f"{tenant}-cancel-confirm")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog') !== null"), "Tab left the dialog"
        page.keyboard.press("Escape")  # Esc is 戻る
        expect(page.get_by_text("中止してよろしいですか")).to_be_hidden()
        page.get_by_role("button", name="中止する").click()
        dialog.get_by_role("button", name="戻る").click()
        expect(page.get_by_text("中止してよろしいですか")).to_be_hidden()
        expect(page.get_by_label("お名前")).to_have_value(c.name_kana)  # nothing typed is lost
    else:
        expect(page.get_by_role("main")).to_contain_text("中止してよろしいですか")
        screenshot(page, f"{tenant}-cancel-confirm-nojs")
        page.get_by_role("link", name="戻る").click()
        expect(title(page)).to_have_text("API連携認証（お客様情報入力）")

    # and when the customer does mean it
    page.get_by_role("button", name="中止する").click()
    question = page.get_by_role("alertdialog") if javascript else page.get_by_role("main")
    question.get_by_role("button", name="中止する").click()
    expect(page.get_by_role("heading", name="API連携認証の中止")).to_be_visible()
    expect(page.get_by_text("API連携認証を中止しました。")).to_be_visible()
