"""The demo app's side of OAuth: what a fintech client does, done by this product in sandbox mode.

Each union has one demo client, `demo-<tenant>`, whose secret is derived from SECRET_KEY (HMAC), so
`flask sandbox demo-setup` and the running app agree on it without storing it anywhere. The
authorization request always carries PKCE S256; the verifier stays with the demo app (the Flask
session), keyed by `state`.

The code is exchanged through the app's own WSGI entry point rather than over the network: the
demo app lives in the same process, and this works behind any proxy, with any BASE_URL, in tests.

Switched to FAPI 2.0 (the checkbox on `/demo/`), the demo app is `demo-<tenant>-fapi2`, a `fapi2`
client whose P-256 signing key is derived from SECRET_KEY too (its public JWK Set is registered
by `demo-setup`): it pushes the authorization request (PAR) with a `private_key_jwt` assertion and
sends the browser with only `client_id` and `request_uri`; it exchanges the code with another
assertion and a DPoP proof (answering the server's `use_dpop_nonce` once, as RFC 9449 §8 asks) for
a fresh per-exchange DPoP key, and calls the account API with `Authorization: DPoP` and a proof.
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
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app, url_for
from joserfc import jwt
from joserfc.jwk import ECKey

from .. import clock
from ..oauth import issuer

SCOPE = "accounts"
FAPI2 = "fapi2"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def client_id(tenant: str) -> str:
    return f"demo-{tenant}"


def client_secret(tenant: str) -> str:
    """256 bits derived from SECRET_KEY: stable across runs, unknown without the key."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    mac = hmac.new(key, f"renkei/demo-client/v1|{tenant}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def redirect_uri() -> str:
    return f"{current_app.config['BASE_URL']}/demo/callback"


def fapi2_client_id(tenant: str) -> str:
    return f"demo-{tenant}-fapi2"


def signing_key(tenant: str) -> ECKey:
    """The FAPI 2.0 demo app's P-256 key, derived from SECRET_KEY: stable across runs, unknown without the key."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    seed = hmac.new(key, f"renkei/demo-fapi2-key/v1|{tenant}".encode(), hashlib.sha512).digest()
    private_value = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    return ECKey.import_key(ec.derive_private_key(private_value, ec.SECP256R1()))


def public_jwks(tenant: str) -> dict:
    key = signing_key(tenant)
    return {"keys": [dict(key.as_dict(private=False), use="sig", alg="ES256", kid=key.thumbprint())]}


@dataclasses.dataclass(frozen=True)
class AuthorizationRequest:
    state: str
    code_verifier: str
    url: str | None  # None when the union refused a pushed request (FAPI 2.0): see `refused`
    refused: dict | None = None


def authorization_request(tenant: str) -> AuthorizationRequest:
    """A fresh state and PKCE pair, and the union's authorize URL carrying them."""
    state = secrets.token_urlsafe(24)
    verifier = generate_token(64)  # RFC 7636: 43–128 unreserved characters
    url = url_for("oauth.authorize", tenant=tenant, response_type="code", client_id=client_id(tenant),
                  redirect_uri=redirect_uri(), scope=SCOPE, state=state,
                  code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
    return AuthorizationRequest(state, verifier, url)


def pushed_authorization_request(tenant: str) -> AuthorizationRequest:
    """FAPI 2.0: push the request (PAR, private_key_jwt); the authorize URL carries only client_id
    and request_uri."""
    state = secrets.token_urlsafe(24)
    verifier = generate_token(64)
    data = {"response_type": "code", "client_id": fapi2_client_id(tenant), "redirect_uri": redirect_uri(),
            "scope": SCOPE, "state": state, "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256", **_client_assertion(tenant)}
    app = current_app._get_current_object()
    with app.app_context():
        response = app.test_client().post(url_for("oauth.pushed_authorization_request", tenant=tenant),
                                          base_url=app.config["BASE_URL"], data=data)
    body = _body(response)
    if response.status_code != 201 or not isinstance(body, dict):
        return AuthorizationRequest(state, verifier, None, refused=body if isinstance(body, dict) else {"error": body})
    url = url_for("oauth.authorize", tenant=tenant, client_id=fapi2_client_id(tenant), request_uri=body["request_uri"])
    return AuthorizationRequest(state, verifier, url)


def _now() -> int:
    return int(clock.now().timestamp())


def _client_assertion(tenant: str) -> dict:
    """private_key_jwt (RFC 7523): aud is the union's issuer; a fresh jti each time."""
    key = signing_key(tenant)
    client_id = fapi2_client_id(tenant)
    claims = {"iss": client_id, "sub": client_id, "aud": issuer(tenant), "jti": secrets.token_urlsafe(16),
              "iat": _now(), "exp": _now() + 60}
    assertion = jwt.encode({"alg": "ES256", "kid": key.thumbprint()}, claims, key, algorithms=["ES256"])
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def _dpop_proof(key: ECKey, method: str, url: str, *, access_token: str | None = None,
                nonce: str | None = None) -> str:
    claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": _now()}
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}, claims, key,
                      algorithms=["ES256"])


@dataclasses.dataclass(frozen=True)
class Exchange:
    """What the demo app got back: the token response and the first API call made with it."""

    token_status: int
    token: dict | str
    profile: str = "oauth2"
    api_path: str | None = None
    api_status: int | None = None
    api_body: dict | str | None = None

    @property
    def access_token(self) -> str | None:
        return self.token.get("access_token") if isinstance(self.token, dict) else None

    @property
    def is_dpop(self) -> bool:
        return isinstance(self.token, dict) and self.token.get("token_type") == "DPoP"

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


def exchange_code_fapi2(tenant: str, code: str, verifier: str) -> Exchange:
    """FAPI 2.0: trade the code with private_key_jwt and a DPoP proof, then read the accounts with
    the DPoP-bound token and a proof for that call."""
    app = current_app._get_current_object()
    token_path = url_for("oauth.token", tenant=tenant)
    api_path = f"/{tenant}/api/v1/accounts"
    dpop_key = ECKey.generate_key("P-256")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(), "code_verifier": verifier}
    with app.app_context():
        http = app.test_client()
        base_url = app.config["BASE_URL"]
        nonce = None
        for _ in range(2):  # the first answer may be use_dpop_nonce with the nonce to use (RFC 9449 §8)
            proof = _dpop_proof(dpop_key, "POST", f"{issuer(tenant)}/oauth/token", nonce=nonce)
            response = http.post(token_path, base_url=base_url, headers={"DPoP": proof},
                                 data={**data, **_client_assertion(tenant)})
            body = _body(response)
            if not (response.status_code == 400 and isinstance(body, dict) and body.get("error") == "use_dpop_nonce"):
                break
            nonce = response.headers.get("DPoP-Nonce")
        result = Exchange(response.status_code, body, profile=FAPI2)
        if result.access_token:
            proof = _dpop_proof(dpop_key, "GET", f"{base_url}{api_path}", access_token=result.access_token)
            api = http.get(api_path, base_url=base_url,
                           headers={"Authorization": f"DPoP {result.access_token}", "DPoP": proof})
            result = dataclasses.replace(result, api_path=api_path, api_status=api.status_code, api_body=_body(api))
    return result
