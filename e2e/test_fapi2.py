"""The FAPI 2.0 path in a phone's browser, for each union, with JavaScript and without: the demo
app at /demo/ switched to FAPI 2.0 pushes its authorization request (PAR, private_key_jwt), the
browser opens the union's authorization endpoint with only `client_id` and `request_uri`, the
customer goes ① to ⑥ and allows, and the demo app exchanges the code with private_key_jwt and a
DPoP proof and reads the account with its DPoP-bound token."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from conftest import TENANTS, screenshot, title
from test_full_flow import AGREE, through_pin

pytestmark = pytest.mark.parametrize("tenant", TENANTS)

FAPI2_SWITCH = "FAPI 2.0 クライアントとして連携する（PAR・private_key_jwt・DPoP）"


def test_fapi2_demo_app_par_private_key_jwt_and_dpop_bound_api_call(page, live_server, customers, tenant,
                                                                      javascript):
    mode = "js" if javascript else "nojs"
    page.goto("/demo/")
    union = page.locator(f"#demo-{tenant}").text_content()
    card = page.get_by_role("region", name=union)
    card.get_by_label(FAPI2_SWITCH).check()
    with page.expect_request(lambda r: "/oauth/authorize" in r.url) as sent:
        card.get_by_role("button", name="デモアプリから連携を開始").click()
    authorize = parse_qs(urlsplit(sent.value.url).query)
    assert set(authorize) == {"client_id", "request_uri"}  # everything else was pushed
    assert authorize["client_id"] == [f"demo-{tenant}-fapi2"]
    assert authorize["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
    expect(title(page)).to_have_text("API連携認証（ご利用口座情報入力）")

    through_pin(page, customers[tenant], tenant, mode, live_server)
    page.get_by_label(AGREE).check()
    page.get_by_role("button", name="許可する").click()

    page.wait_for_url(f"{live_server.origin}/demo/callback?**")
    expect(page.get_by_role("heading", name="デモアプリが受け取った結果")).to_be_visible()
    expect(page.get_by_text("認可コードを受け取りました。")).to_be_visible()
    expect(page.get_by_text("トークンエンドポイントの応答（HTTP 200）")).to_be_visible()
    blocks = page.locator("pre").all_text_contents()
    token, accounts = json.loads(blocks[0]), json.loads(blocks[1])
    assert token["token_type"] == "DPoP" and token["scope"] == "accounts" and 0 < token["expires_in"] <= 600
    assert accounts["accounts"][0]["accountNo"] == customers[tenant].number
    expect(page.get_by_text("/api/v1/accounts の応答（HTTP 200）")).to_be_visible()
    screenshot(page, f"{tenant}-fapi2-demo-result-{mode}")

    # the request_uri was spent by 許可する: opening it again starts nothing
    page.goto(sent.value.url)
    expect(page.get_by_text("連携元アプリからの要求を受け付けられませんでした")).to_be_visible()
