"""The whole of API連携認証, ① to ⑥, in a phone's browser, for each union, with JavaScript and
without: a fintech app (Authlib's OAuth 2.0 client, PKCE S256) sends the customer to the union,
the customer authenticates and allows, and the browser lands on the app's own origin with a code
that the app exchanges for tokens. The app's callback is a separate little HTTP server on another
port, so the 303 from ⑥ crosses origins as it does in production (nothing in the CSP may block it).

The whole flow also runs over https (conftest's TRANSPORTS: behind a TLS-terminating nginx, and
with gunicorn terminating TLS itself), where Flask-WTF's CSRF check wants a same-origin Referer
(issue 9); there the app's callback is https too, the call of ④ comes through the provider's
signed webhook (posted to, and checked against, the https BASE_URL), and the app's token and API
calls verify the server's certificate against the test CA.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from playwright.sync_api import Page, expect

from conftest import (TENANTS, TRANSPORTS, Customer, LiveServer, free_port, provider_calls, screenshot, title,
                      to_phone_screen)

OPERATOR = "アイ・ティ・リアライズ株式会社"
CALL_SEEN = "着信を確認しました。「確定する」ボタンを押してください。"
AGREE = "当信用組合のAPI利用規定を確認し、同意します。"

pytestmark = pytest.mark.parametrize("tenant", TENANTS)


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = "<!doctype html><title>連携元アプリ</title><h1>連携元アプリに戻りました</h1>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def client_origin(live_server):
    """The fintech app's own origin: another port, another origin than the union's; https when the
    union is (a redirect from an https form POST to plain http would meet chromium's warning)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Callback)
    if live_server.https:
        server.socket = live_server.tls.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{'https' if live_server.https else 'http'}://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def registered(live_server, client_origin) -> dict:
    """Each union's app, registered the way an operator does (CONTRACT §4)."""
    apps = {}
    for tenant in TENANTS:
        out = live_server.flask("clients", "add", "--tenant", tenant, "--name", "しんくみアプリwith CRECO",
                                "--operator", OPERATOR, "--redirect-uri", f"{client_origin}/cb")
        apps[tenant] = json.loads(out)
    return apps


@pytest.fixture
def oauth(live_server, client_origin, registered, tenant):
    """The fintech app's OAuth client for this union (Authlib), reading the union's RFC 8414 metadata."""
    meta = requests.get(f"{live_server.origin}/.well-known/oauth-authorization-server/{tenant}", timeout=10,
                        verify=live_server.verify).json()
    creds = registered[tenant]
    session = OAuth2Session(creds["client_id"], creds["client_secret"], scope="accounts",
                            redirect_uri=f"{client_origin}/cb", code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_basic")
    return session, meta


def pin_of(c: Customer) -> str:
    from webapp import demo

    return next(a["pin"] for a in demo.customers(c.tenant) if a["number"] == c.number and a["type"] == c.account_type)


def shot(tenant: str, screen: str, mode: str, server: LiveServer) -> str:
    """A screenshot's name: the http run's as before, the https runs' with their transport."""
    return f"{tenant}-{screen}-{mode}" + ("" if server.transport == "http" else f"-{server.transport}")


def through_pin(page: Page, c: Customer, tenant: str, mode: str, server: LiveServer) -> None:
    """① ② ③ ④ ⑤, as the customer does them, by label. Over http ④'s call is the sandbox's demo
    button; over https the telephony provider's signed webhook, posted to the https BASE_URL."""
    to_phone_screen(page, c)
    page.get_by_role("button", name="電話番号の決定").click()

    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    if server.https:
        dialled = page.get_by_role("main").locator("a[href^='tel:']").get_attribute("href").removeprefix("tel:")
        provider_calls(server, c.phone, dialled)
        if mode == "js":  # the status area sees the call by itself; without JS 確定する finds it
            expect(page.get_by_role("status")).to_contain_text(CALL_SEEN)
    else:
        page.get_by_role("button", name="（デモ）この番号から発信する").click()
        expect(page.get_by_role("status")).to_contain_text(CALL_SEEN)
    page.get_by_role("button", name="確定する").click()

    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")
    expect(page.get_by_text("キャッシュカード暗証番号での認証を行います。")).to_be_visible()
    pin = page.get_by_label("キャッシュカードの暗証番号")
    expect(pin).to_have_attribute("type", "password")
    expect(pin).to_have_attribute("inputmode", "numeric")
    expect(pin).to_have_attribute("autocomplete", "off")
    screenshot(page, shot(tenant, "SOA211", mode, server))
    pin.fill(pin_of(c))
    page.get_by_role("button", name="次へ").click()

    expect(title(page)).to_have_text("API連携認証（情報連携認可）")
    expect(page.get_by_text(f"{OPERATOR}が以下の許可を求めています。")).to_be_visible()
    expect(page.get_by_role("heading", name="口座情報・明細情報へのアクセス")).to_be_visible()
    expect(page.get_by_text("30日")).to_be_visible()
    expect(page.get_by_role("contentinfo")).to_contain_text("画面ID : SOA206")


@pytest.mark.parametrize("transport", TRANSPORTS, indirect=True, scope="session")
def test_whole_flow_ends_at_the_app_with_a_code_it_exchanges_for_tokens(
        page, live_server, customers, oauth, client_origin, tenant, javascript, transport):
    mode = "js" if javascript else "nojs"
    session, meta = oauth
    verifier = generate_token(64)
    url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
    page.goto(url)
    expect(title(page)).to_have_text("API連携認証（ご利用口座情報入力）")
    assert page.url.startswith(live_server.origin)
    through_pin(page, customers[tenant], tenant, mode, live_server)
    screenshot(page, shot(tenant, "SOA206", mode, live_server))

    # 許可する without the box ticked: refused, with the reason, on the same screen
    page.get_by_role("button", name="許可する").click()
    expect(page.get_by_role("alertdialog", name="エラー")).to_contain_text("チェックを入れて下さい。")
    expect(title(page)).to_have_text("API連携認証（情報連携認可）")
    page.get_by_role("alertdialog", name="エラー").get_by_role("button", name="OK").click()

    page.get_by_label(AGREE).check()
    page.get_by_role("button", name="許可する").click()
    page.wait_for_url(f"{client_origin}/cb?**")
    expect(page.get_by_role("heading", name="連携元アプリに戻りました")).to_be_visible()

    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params["state"] == state
    assert params["iss"] == meta["issuer"] == f"{live_server.origin}/{tenant}"
    # verify= on each call: a REQUESTS_CA_BUNDLE in the environment would override session.verify
    token = session.fetch_token(meta["token_endpoint"], authorization_response=page.url, code_verifier=verifier,
                                verify=live_server.verify)
    assert token["token_type"] == "Bearer" and token["scope"] == "accounts"
    assert 0 < token["expires_in"] <= 600 and token["refresh_token"]

    accounts = session.get(f"{meta['issuer']}/api/v1/accounts", timeout=10, verify=live_server.verify)
    assert accounts.status_code == 200
    assert accounts.json()["accounts"][0]["accountNo"] == customers[tenant].number

    # the code was single use
    again = requests.post(meta["token_endpoint"], auth=(session.client_id, session.client_secret), timeout=10,
                          verify=live_server.verify,
                          data={"grant_type": "authorization_code", "code": params["code"],
                                "redirect_uri": session.redirect_uri, "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_deny_returns_access_denied_to_the_app(page, live_server, customers, oauth, client_origin, tenant, javascript):
    session, meta = oauth
    url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=generate_token(64))
    page.goto(url)
    through_pin(page, customers[tenant], tenant, "js" if javascript else "nojs", live_server)
    page.get_by_role("button", name="拒否する").click()
    # asked first: in a dialog with JavaScript, on a page of its own without
    question = page.get_by_role("alertdialog") if javascript else page.get_by_role("main")
    expect(question.get_by_text("中止してよろしいですか")).to_be_visible()
    question.get_by_role("button", name="拒否する").click()

    expect(page.get_by_role("heading", name="API連携認証の中止")).to_be_visible()
    expect(page.get_by_text("API連携認証を中止しました。")).to_be_visible()
    page.get_by_role("link", name="連携元画面へ").click()
    page.wait_for_url(f"{client_origin}/cb?**")
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params == {"error": "access_denied", "state": state, "iss": meta["issuer"]}
