"""The demo app's side of OAuth: what a fintech client does, done by this product in sandbox mode.

Each union has one demo client, `demo-<tenant>`, whose secret is derived from SECRET_KEY (HMAC), so
`flask sandbox demo-setup` and the running app agree on it without storing it anywhere. The
authorization request always carries PKCE S256; the verifier stays with the demo app (the Flask
session), keyed by `state`.

The code is exchanged through the app's own WSGI entry point rather than over the network: the
demo app lives in the same process, and this works behind any proxy, with any BASE_URL, in tests.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
from urllib.parse import quote

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import current_app, url_for

SCOPE = "accounts"


def client_id(tenant: str) -> str:
    return f"demo-{tenant}"


def client_secret(tenant: str) -> str:
    """256 bits derived from SECRET_KEY: stable across runs, unknown without the key."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    mac = hmac.new(key, f"renkei/demo-client/v1|{tenant}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def redirect_uri() -> str:
    return f"{current_app.config['BASE_URL']}/demo/callback"


@dataclasses.dataclass(frozen=True)
class AuthorizationRequest:
    state: str
    code_verifier: str
    url: str


def authorization_request(tenant: str) -> AuthorizationRequest:
    """A fresh state and PKCE pair, and the union's authorize URL carrying them."""
    state = secrets.token_urlsafe(24)
    verifier = generate_token(64)  # RFC 7636: 43–128 unreserved characters
    url = url_for("oauth.authorize", tenant=tenant, response_type="code", client_id=client_id(tenant),
                  redirect_uri=redirect_uri(), scope=SCOPE, state=state,
                  code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
    return AuthorizationRequest(state, verifier, url)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """What the demo app got back: the token response and the first API call made with it."""

    token_status: int
    token: dict | str
    api_path: str | None = None
    api_status: int | None = None
    api_body: dict | str | None = None

    @property
    def access_token(self) -> str | None:
        return self.token.get("access_token") if isinstance(self.token, dict) else None

    @property
    def token_text(self) -> str:
        return _pretty(self.token)

    @property
    def api_text(self) -> str:
        return _pretty(self.api_body)


def _pretty(body) -> str:
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, indent=2)


def _body(response) -> dict | str:
    text = response.get_data(as_text=True)
    try:
        return json.loads(text)
    except ValueError:
        return text[:2000]


def exchange_code(tenant: str, code: str, verifier: str) -> Exchange | None:
    """Trade the code for tokens (client_secret_basic) and read the accounts; None while the union's
    token endpoint does not exist yet."""
    if "oauth.token" not in current_app.view_functions:
        return None
    app = current_app._get_current_object()
    token_path = url_for("oauth.token", tenant=tenant)
    api_path = f"/{tenant}/api/v1/accounts"
    basic = base64.b64encode(f"{quote(client_id(tenant), safe='')}:{quote(client_secret(tenant), safe='')}"
                             .encode()).decode()
    # A fresh app context: the inner requests get their own database session, not this request's.
    with app.app_context():
        http = app.test_client()
        base_url = app.config["BASE_URL"]
        response = http.post(token_path, base_url=base_url, headers={"Authorization": f"Basic {basic}"},
                             data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": redirect_uri(), "code_verifier": verifier})
        result = Exchange(response.status_code, _body(response))
        if result.access_token:
            api = http.get(api_path, base_url=base_url,
                           headers={"Authorization": f"Bearer {result.access_token}"})
            result = dataclasses.replace(result, api_path=api_path, api_status=api.status_code, api_body=_body(api))
    return result
