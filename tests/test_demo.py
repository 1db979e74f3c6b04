"""The sandbox demo: demo data, `flask sandbox demo-setup`, and the demo app at /demo/ (sandbox only)."""
from __future__ import annotations

import base64
import datetime as dt
import json
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import jsonify, request
from sqlmodel import select

from conftest import CSRF_RE, DEMO, text_of
from webapp import db
from webapp.corebanking import AccountCheck, AccountKey, core
from webapp.corebanking.models import SandboxAccount, SandboxTransaction
from webapp.demo import DATA_DIR, client as demo_client, generate
from webapp.extensions import csrf
from webapp.oauth.cli import hash_secret
from webapp.oauth.models import OAuthClient

ISSUER = {"amami": "https://renkei.test/amami", "maruhachi": "https://renkei.test/maruhachi"}


def demo_setup(app):
    result = app.test_cli_runner().invoke(args=["sandbox", "demo-setup"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def demo(app):
    """demo-setup has run: demo customers loaded, demo apps registered."""
    return demo_setup(app)


def demo_file(tenant: str) -> dict:
    return json.loads((DATA_DIR / f"{tenant}.json").read_text(encoding="utf-8"))


# --- demo data ------------------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_demo_customers_of_the_tests_pass_identity_and_pin_checks(app, demo, tenant):
    c = DEMO[tenant]
    key = AccountKey(tenant, c["branch"], c["account_type"], c["number"])
    with app.app_context():
        assert core().check_identity(key, c["birth_date"], c["phone"]).check is AccountCheck.OK
        assert core().check_pin(key, c["pin"]) is AccountCheck.OK
        assert core().account(key).name_kana == c["name_kana"]


def test_amami_demo_has_savings_closed_moved_and_no_card_accounts(app, demo):
    accounts = demo_file("amami")["accounts"]
    kinds = {(a["type"], a["status"], a["cash_card"]) for a in accounts}
    assert {("4", "active", True), ("1", "closed", True), ("1", "moved", True), ("1", "active", False)} <= kinds
    with app.app_context():
        for a in accounts:
            key = AccountKey("amami", a["branch"], a["type"], a["number"])
            usable = a["status"] == "active" and a["cash_card"]
            expected = AccountCheck.OK if usable else AccountCheck.NOT_SERVICEABLE
            assert core().check_pin(key, a["pin"]) is expected, a["note"]


def test_maruhachi_demo_has_only_ordinary_deposits(app):
    assert {a["type"] for a in demo_file("maruhachi")["accounts"]} == {"1"}


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_demo_balances_are_running_balances(tenant):
    for a in demo_file(tenant)["accounts"]:
        txs = a["transactions"]
        assert [t["date"] for t in txs] == sorted(t["date"] for t in txs)
        for before, t in zip(txs, txs[1:]):
            sign = 1 if t["type"] == "1" else -1
            assert t["balance"] == before["balance"] + sign * t["amount"], (a["number"], t)
        assert all(t["balance"] >= 0 for t in txs)
        if txs:
            assert a["balance"] == txs[-1]["balance"]


def test_main_demo_accounts_have_more_than_three_months_of_transactions():
    for tenant in ("amami", "maruhachi"):
        main = demo_file(tenant)["accounts"][0]
        dates = [dt.date.fromisoformat(t["date"]) for t in main["transactions"]]
        assert (max(dates) - min(dates)).days > 92 and len(dates) >= 30


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_demo_files_are_what_generate_writes(tenant):
    assert (DATA_DIR / f"{tenant}.json").read_text(encoding="utf-8") == generate.dumps(generate.build(tenant))


# --- demo-setup -------------------------------------------------------------------------------------

def counts(app) -> tuple[int, int, list]:
    with app.app_context():
        s = db.session()
        clients = [(c.id, c.client_id, c.tenant, c.client_secret_hash, c.redirect_uris, c.name, c.operator)
                   for c in s.exec(select(OAuthClient).order_by(OAuthClient.id))]
        return (len(s.exec(select(SandboxAccount)).all()), len(s.exec(select(SandboxTransaction)).all()), clients)


def test_demo_setup_is_idempotent(app):
    demo_setup(app)
    first = counts(app)
    again = demo_setup(app)
    assert counts(app) == first
    assert "amami: 7 accounts loaded (0 new, 0 updated, 7 unchanged)" in again
    clients = first[2]
    assert [(c[1], c[2]) for c in clients] == [("demo-amami", "amami"), ("demo-amami-fapi2", "amami"),
                                               ("demo-maruhachi", "maruhachi"), ("demo-maruhachi-fapi2", "maruhachi")]
    for _, client_id, tenant, secret_hash, redirect_uris, name, operator in clients:
        assert redirect_uris == ["https://renkei.test/demo/callback"]
        assert (name, operator) == ("しんくみアプリwith CRECO（デモ）", "アイ・ティ・リアライズ株式会社")
        with app.app_context():
            if client_id.endswith("-fapi2"):
                assert secret_hash == ""  # a FAPI 2.0 client has keys, no secret
                assert OAuthClient.by_id(client_id).jwks == demo_client.public_jwks(tenant)
            else:
                assert secret_hash == hash_secret(demo_client.client_secret(tenant))


def test_demo_client_secret_depends_on_secret_key(app):
    with app.app_context():
        secret = demo_client.client_secret("amami")
        app.config["SECRET_KEY"] = "another-secret-key-0123456789abcdef"
        assert demo_client.client_secret("amami") != secret
        assert len(secret) >= 43  # 256 bits


def test_demo_setup_prints_the_page_and_the_customers_to_type(app):
    out = demo_setup(app)
    assert "https://renkei.test/demo/" in out
    for c in DEMO.values():
        line = next(line for line in out.splitlines() if c["number"] in line)
        for value in (c["branch"], "普通預金", c["name_kana"], c["birth_date"].isoformat(), c["phone"], c["pin"]):
            assert value in line


@pytest.mark.parametrize("app_config", [{"SANDBOX": False}])
def test_demo_setup_is_refused_outside_sandbox(app):
    result = app.test_cli_runner().invoke(args=["sandbox", "demo-setup"])
    assert result.exit_code != 0 and "sandbox mode only" in result.output
    assert counts(app) == (0, 0, [])


# --- the demo app at /demo/ -------------------------------------------------------------------------

def test_demo_page_lists_both_unions_with_a_start_button_and_the_customers(client, demo):
    page = client.get("/demo/")
    html = text_of(page)
    assert page.status_code == 200
    assert "奄美信用組合" in html and "丸八信用組合" in html
    assert html.count("デモアプリから連携を開始") == 2
    for c in DEMO.values():
        for value in (c["branch"], c["number"], c["name_kana"], c["birth_date"].isoformat(), c["phone"], c["pin"]):
            assert value in html
    assert "<script>" not in html and "style=" not in html  # CSP: no inline script or style


def test_demo_page_before_setup_says_what_to_run(client):
    html = text_of(client.get("/demo/"))
    assert "flask --app webapp sandbox demo-setup" in html
    assert 'class="button primary" disabled' in html


def start(client, tenant="amami"):
    """Press 「デモアプリから連携を開始」 for `tenant`; returns the authorize URL's parameters."""
    csrf_token = CSRF_RE.search(text_of(client.get("/demo/"))).group(1)
    response = client.post(f"/demo/{tenant}/start", data={"csrf_token": csrf_token})
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == f"/{tenant}/oauth/authorize"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_start_sends_an_authorization_request_with_pkce_s256(client, demo):
    params = start(client)
    assert params["response_type"] == "code" and params["scope"] == "accounts"
    assert params["client_id"] == "demo-amami"
    assert params["redirect_uri"] == "https://renkei.test/demo/callback"
    assert params["code_challenge_method"] == "S256" and len(params["state"]) >= 22
    with client.session_transaction() as session:
        verifier = session["demo_requests"][params["state"]]["verifier"]
    assert create_s256_code_challenge(verifier) == params["code_challenge"]
    flow = client.get("/amami/oauth/authorize", query_string=params)
    assert flow.status_code == 303 and flow.headers["Location"].endswith("/amami/flow/account")


def test_start_without_csrf_token_is_refused(client, demo):
    assert client.post("/demo/amami/start").status_code == 400


def test_start_for_an_unknown_union_is_404(client, demo):
    csrf_token = CSRF_RE.search(text_of(client.get("/demo/"))).group(1)
    assert client.post("/demo/nowhere/start", data={"csrf_token": csrf_token}).status_code == 404


@pytest.fixture
def exchanges(monkeypatch):
    """Records what reaches exchange_code (and makes it answer None, as with no token endpoint)."""
    calls = []
    monkeypatch.setattr(demo_client, "exchange_code", lambda *args: calls.append(args))
    return calls


def test_callback_shows_access_denied_with_state_and_iss_checked(client, demo, exchanges):
    params = start(client, "maruhachi")
    html = text_of(client.get("/demo/callback", query_string={
        "error": "access_denied", "state": params["state"], "iss": ISSUER["maruhachi"]}))
    assert "お客様が連携を中止または拒否しました（access_denied）。" in html
    assert "丸八信用組合" in html and "不一致" not in html
    assert exchanges == []


def test_callback_with_unknown_state_is_not_used(client, demo, exchanges):
    start(client)
    html = text_of(client.get("/demo/callback", query_string={
        "code": "c0de", "state": "forged", "iss": ISSUER["amami"]}))
    assert "state が一致しません" in html
    assert exchanges == []


def test_state_is_single_use(client, demo, exchanges):
    params = start(client)
    query = {"code": "c0de", "state": params["state"], "iss": ISSUER["amami"]}
    client.get("/demo/callback", query_string=query)
    assert "state が一致しません" in text_of(client.get("/demo/callback", query_string=query))
    assert len(exchanges) == 1


def test_callback_with_another_issuer_does_not_use_the_code(client, demo, exchanges):
    params = start(client)
    html = text_of(client.get("/demo/callback", query_string={
        "code": "c0de", "state": params["state"], "iss": ISSUER["maruhachi"]}))
    assert "iss が発行元と一致しないため" in html
    assert exchanges == []


def test_callback_hands_code_and_verifier_to_exchange_code(client, demo, exchanges):
    params = start(client)
    with client.session_transaction() as session:
        verifier = session["demo_requests"][params["state"]]["verifier"]
    html = text_of(client.get("/demo/callback", query_string={
        "code": "c0de", "state": params["state"], "iss": ISSUER["amami"]}))
    assert exchanges == [("amami", "c0de", verifier)]
    assert "認可コードを受け取りました。" in html and "c0de" in html


def test_without_token_endpoint_the_callback_shows_the_code_only(app, client, demo, monkeypatch):
    monkeypatch.delitem(app.view_functions, "oauth.token", raising=False)
    params = start(client)
    html = text_of(client.get("/demo/callback", query_string={
        "code": "c0de", "state": params["state"], "iss": ISSUER["amami"]}))
    assert "トークンエンドポイントがまだないため" in html


def test_callback_exchanges_the_code_and_shows_tokens_and_the_first_api_answer(app, client, demo, monkeypatch):
    """The token endpoint is stood in for: what matters here is what the demo app sends and shows."""
    received = []

    def token(**_):
        received.append((request.headers.get("Authorization"), request.form.to_dict()))
        return jsonify(access_token="at-123", token_type="Bearer", expires_in=600, refresh_token="rt-456",
                       scope="accounts")

    csrf.exempt(token)
    if "oauth.token" in app.view_functions:
        monkeypatch.setitem(app.view_functions, "oauth.token", token)
    else:
        app.add_url_rule("/<tenant>/oauth/token", endpoint="oauth.token", view_func=token, methods=["POST"])
    params = start(client)
    page = client.get("/demo/callback", query_string={"code": "c0de", "state": params["state"],
                                                      "iss": ISSUER["amami"]})
    html = text_of(page)
    assert page.status_code == 200
    auth, form = received[0]
    client_id, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":")
    with app.app_context():
        stored = OAuthClient.by_id(client_id)
        assert client_id == "demo-amami" and stored.client_secret_hash == hash_secret(secret)
    assert form["grant_type"] == "authorization_code" and form["code"] == "c0de"
    assert form["redirect_uri"] == "https://renkei.test/demo/callback"
    assert create_s256_code_challenge(form["code_verifier"]) == params["code_challenge"]
    assert "at-123" in html and "rt-456" in html
    assert "GET /amami/api/v1/accounts" in html


@pytest.mark.parametrize("app_config", [{"SANDBOX": False}])
def test_demo_app_is_absent_outside_sandbox(client):
    assert client.get("/demo/").status_code == 404
    assert client.get("/demo/callback", query_string={"code": "x", "state": "y"}).status_code == 404


def test_demo_walked_to_consent_shows_tokens_and_the_linked_account(app, client, demo):
    """End to end through the real token endpoint and account API (③ ④ passed in the database, as the
    OAuth tests do, so this does not depend on how the call is made)."""
    from conftest import FlowActions
    from test_oauth_support import allow, set_step

    params = start(client)
    assert client.get("/amami/oauth/authorize", query_string=params).status_code == 303
    customer = FlowActions.__new__(FlowActions)
    customer.app, customer.client, customer.tenant, customer.csrf = app, client, "amami", None
    customer.get("flow/account")
    customer.account()
    assert customer.customer().status_code == 303
    set_step(app, "pin")
    customer.get("flow/pin")
    assert customer.post("flow/pin", {"pin": DEMO["amami"]["pin"]}).status_code == 303
    customer.get("flow/consent")
    back = allow(customer)
    assert back.status_code == 303 and back.headers["Location"].startswith("https://renkei.test/demo/callback?")
    location = urlsplit(back.headers["Location"])  # the test client's cookies are for localhost
    page = client.get(f"{location.path}?{location.query}")
    html = unescape(text_of(page))
    assert page.status_code == 200 and "認可コードを受け取りました。" in html
    assert "トークンエンドポイントの応答（HTTP 200）" in html and "access_token" in html
    assert "の応答（HTTP 200）" in html and '"accountNo": "1100026"' in html


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_demo_as_a_fapi2_client_walked_to_consent_shows_dpop_tokens_and_the_linked_account(app, client, demo, tenant):
    """The FAPI 2.0 switch: PAR (private_key_jwt) → authorize with request_uri only → ⑥ → token
    request with private_key_jwt and a DPoP proof → DPoP-bound API call."""
    from conftest import FlowActions
    from test_oauth_support import allow, set_step

    page = text_of(client.get("/demo/"))
    csrf_token = CSRF_RE.search(page).group(1)
    assert "FAPI 2.0 クライアントとして連携する" in page
    started = client.post(f"/demo/{tenant}/start", data={"csrf_token": csrf_token, "profile": "fapi2"})
    assert started.status_code == 303
    authorize = parse_qs(urlsplit(started.headers["Location"]).query)
    assert set(authorize) == {"client_id", "request_uri"} and authorize["client_id"] == [f"demo-{tenant}-fapi2"]
    assert client.get(started.headers["Location"]).status_code == 303
    customer = FlowActions.__new__(FlowActions)
    customer.app, customer.client, customer.tenant, customer.csrf = app, client, tenant, None
    customer.get("flow/account")
    customer.account()
    assert customer.customer().status_code == 303
    set_step(app, "pin")
    customer.get("flow/pin")
    assert customer.post("flow/pin", {"pin": DEMO[tenant]["pin"]}).status_code == 303
    customer.get("flow/consent")
    back = allow(customer)
    location = urlsplit(back.headers["Location"])
    html = unescape(text_of(client.get(f"{location.path}?{location.query}")))
    assert "トークンエンドポイントの応答（HTTP 200）" in html and '"token_type": "DPoP"' in html
    assert "の応答（HTTP 200）" in html and f'"accountNo": "{DEMO[tenant]["number"]}"' in html
    assert "DPoP鍵に紐付いています" in html and "curl -H" not in html
