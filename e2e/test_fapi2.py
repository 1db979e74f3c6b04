"""The FAPI 2.0 path in a phone's browser, for each union, with JavaScript and without: the demo
app at /demo/ switched to FAPI 2.0 pushes its authorization request (PAR, private_key_jwt), the
browser opens the union's authorization endpoint with only `client_id` and `request_uri`, the
customer goes ① to ⑥ and allows, and the demo app exchanges the code with private_key_jwt and a
DPoP proof and reads the account with its DPoP-bound token.

Over every transport of conftest: plain http, and https behind a TLS-terminating proxy or with
gunicorn terminating TLS, where the DPoP proofs' `htu` and the assertions' `aud` are the public
https URLs (BASE_URL) while the app itself may be reached over plain http."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey
from playwright.sync_api import expect

from conftest import TENANTS, TRANSPORTS, screenshot, title
from test_full_flow import AGREE, OPERATOR, client_origin, through_pin  # noqa: F401 (client_origin: a fixture)

pytestmark = pytest.mark.parametrize("tenant", TENANTS)

FAPI2_SWITCH = "FAPI 2.0 クライアントとして連携する（PAR・private_key_jwt・DPoP）"


@pytest.mark.parametrize("transport", TRANSPORTS, indirect=True, scope="session")
def test_fapi2_demo_app_par_private_key_jwt_and_dpop_bound_api_call(page, live_server, customers, tenant,
                                                                      javascript, transport):
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
    screenshot(page, f"{tenant}-fapi2-demo-result-{mode}-{transport}")

    # the request_uri was spent by 許可する: opening it again starts nothing
    page.goto(sent.value.url)
    expect(page.get_by_text("連携元アプリからの要求を受け付けられませんでした")).to_be_visible()


# --- a fintech app of its own, over the network --------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class NetworkFapiApp:
    """A FAPI 2.0 app talking to the union over the network (through the proxy, when there is one)."""

    def __init__(self, live_server, tenant: str, client_origin: str, tmp_path):
        self.server, self.verify = live_server, live_server.verify
        self.key, self.dpop_key = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
        jwks = tmp_path / f"jwks-{tenant}.json"
        jwks.write_text(json.dumps({"keys": [self.key.as_dict(kid=self.key.thumbprint())]}))
        self.redirect_uri = f"{client_origin}/cb"
        self.client_id = json.loads(live_server.flask(
            "clients", "add", "--tenant", tenant, "--name", "しんくみアプリwith CRECO", "--operator", OPERATOR,
            "--redirect-uri", self.redirect_uri, "--profile", "fapi2", "--jwks-file", str(jwks)))["client_id"]
        self.meta = requests.get(f"{live_server.origin}/.well-known/oauth-authorization-server/{tenant}",
                                 timeout=10, verify=self.verify).json()
        self.nonce = None

    def auth(self) -> dict:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.meta["issuer"],
                  "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 60}
        return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": jwt.encode({"alg": "ES256", "kid": self.key.thumbprint()}, claims, self.key)}

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token:
            claims["ath"] = _b64url(hashlib.sha256(access_token.encode()).digest())
        if self.nonce:
            claims["nonce"] = self.nonce
        return jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_key.as_dict()}, claims, self.dpop_key)

    def token(self, data: dict) -> requests.Response:
        for _ in range(2):
            response = requests.post(self.meta["token_endpoint"], data={**data, **self.auth()}, timeout=10,
                                     verify=self.verify,
                                     headers={"DPoP": self.proof("POST", self.meta["token_endpoint"])})
            self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
            if response.status_code != 400 or response.json()["error"] != "use_dpop_nonce":
                return response
        return response


@pytest.mark.parametrize("transport", TRANSPORTS, indirect=True, scope="session")
def test_fapi2_app_of_its_own_over_the_network(page, live_server, customers, client_origin, tenant, javascript,
                                               transport, tmp_path):
    """PAR, private_key_jwt and DPoP over real HTTP(S): `htu` and `aud` are the public URLs the app
    sees, whatever the proxy in front of the union turns them into."""
    app = NetworkFapiApp(live_server, tenant, client_origin, tmp_path)
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    pushed = requests.post(app.meta["pushed_authorization_request_endpoint"], timeout=10, verify=app.verify, data={
        "response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri, "scope": "accounts",
        "state": state, "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256", **app.auth()})
    assert pushed.status_code == 201, pushed.text
    page.goto(f"{app.meta['authorization_endpoint']}?" + urlencode(
        {"client_id": app.client_id, "request_uri": pushed.json()["request_uri"]}))
    through_pin(page, customers[tenant], tenant, "js" if javascript else "nojs", live_server)
    page.get_by_label(AGREE).check()
    page.get_by_role("button", name="許可する").click()
    page.wait_for_url(f"{client_origin}/cb?**")
    back = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert back["state"] == state and back["iss"] == app.meta["issuer"]

    tokens = app.token({"grant_type": "authorization_code", "code": back["code"], "redirect_uri": app.redirect_uri,
                        "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    access = tokens.json()["access_token"]
    assert tokens.json()["token_type"] == "DPoP"
    url = f"{app.meta['issuer']}/api/v1/accounts"
    accounts = requests.get(url, timeout=10, verify=app.verify,
                            headers={"Authorization": f"DPoP {access}", "DPoP": app.proof("GET", url, access)})
    assert accounts.status_code == 200, accounts.text
    assert accounts.json()["accounts"][0]["accountNo"] == customers[tenant].number
    as_bearer = requests.get(url, timeout=10, verify=app.verify, headers={"Authorization": f"Bearer {access}"})
    assert as_bearer.status_code == 401 and as_bearer.headers["WWW-Authenticate"].startswith("DPoP ")
