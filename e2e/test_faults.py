"""Faults in the browser, with JavaScript (htmx) and without: the customer sees the service-wide
message where the screen was, and the flow is still there afterwards. The faults themselves, each
through the real server over HTTP, are in tests/test_faults.py."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import ARTIFACTS, PHONE, enter_account, enter_customer, free_port, register_app, serve, start_flow_in, title
from webapp import messages


@pytest.fixture(scope="module")
def core_down_server(tmp_path_factory):
    """The server with its core-banking gateway at a port where nothing listens: every call refused."""
    closed = free_port()
    with serve(tmp_path_factory.mktemp("core-down"), ARTIFACTS / "server-core-down.log",
               FLASK_CORE_BANKING_URL=f"http://127.0.0.1:{closed}", FLASK_CORE_BANKING_TIMEOUT_SECONDS="1") as server:
        yield server


def test_core_banking_down_on_customer_screen_shows_no4_and_keeps_the_flow(browser, javascript, core_down_server,
                                                                            customers):
    context = browser.new_context(**PHONE, java_script_enabled=javascript, base_url=core_down_server.origin)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        start_flow_in(page, core_down_server, register_app(core_down_server, "amami"))
        enter_account(page, customers["amami"])
        expect(title(page)).to_have_text("API連携認証（お客様情報入力）")
        enter_customer(page, customers["amami"])
        expect(page.get_by_role("alert")).to_contain_text(messages.UNAVAILABLE)
        expect(page.locator("main")).to_contain_text("0997-52-7111")  # the union's contact beside it
        page.goto("/amami/flow/customer")  # the flow is kept: ② again, ready for another try
        expect(title(page)).to_have_text("API連携認証（お客様情報入力）")
    finally:
        context.close()
