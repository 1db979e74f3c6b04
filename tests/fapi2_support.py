"""Helpers for the FAPI 2.0 tests (no tests here): a FAPI 2.0 fintech app — its signing key for
`private_key_jwt`, its DPoP key, PAR, proofs — and `FapiFlowActions`, a customer's walk through
①–⑥ that starts from a pushed authorization request."""
from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from conftest import FlowActions
from test_oauth_support import CHALLENGE, REDIRECT_URI, VERIFIER
from webapp import clock
from webapp.oauth import dpop

BASE = "https://renkei.test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def new_key(alg: str = "ES256"):
    return RSAKey.generate_key(2048) if alg.startswith(("PS", "RS")) else ECKey.generate_key("P-256")


def public_jwks(*keys) -> dict:
    return {"keys": [dict(key.as_dict(private=False), use="sig", kid=key.thumbprint()) for key in keys]}


def register_fapi2_client(app, tenant: str, tmp_path, *keys, redirect_uri: str = REDIRECT_URI,
                          jwks_uri: str | None = None) -> dict:
    args = ["clients", "add", "--tenant", tenant, "--name", "しんくみアプリwith CRECO",
            "--operator", "アイ・ティ・リアライズ株式会社", "--redirect-uri", redirect_uri, "--profile", "fapi2"]
    if jwks_uri:
        args += ["--jwks-uri", jwks_uri]
    else:
        path = tmp_path / f"jwks-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(public_jwks(*keys)))
        args += ["--jwks-file", str(path)]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def now() -> int:
    return int(clock.now().timestamp())


class FapiApp:
    """A FAPI 2.0 fintech app registered with one union, talking to it through the test client."""

    def __init__(self, app, client, tenant: str, tmp_path, alg: str = "ES256", jwks_uri: str | None = None):
        self.app, self.client, self.tenant, self.alg = app, client, tenant, alg
        self.signing_key = new_key(alg)
        self.dpop_key = new_key("ES256")
        self.client_id = register_fapi2_client(app, tenant, tmp_path, self.signing_key, jwks_uri=jwks_uri)["client_id"]
        self.issuer = f"{BASE}/{tenant}"
        self.nonce: str | None = None

    # --- private_key_jwt (RFC 7523) ---

    def assertion(self, key=None, alg: str | None = None, **claims) -> str:
        body = {"iss": self.client_id, "sub": self.client_id, "aud": self.issuer, "jti": secrets.token_urlsafe(16),
                "iat": now(), "exp": now() + 60}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        alg = alg or self.alg
        return jwt.encode({"alg": alg, "kid": (key or self.signing_key).thumbprint()}, body, key or self.signing_key,
                          algorithms=[alg])

    def auth(self, assertion: str | None = None) -> dict:
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion or self.assertion()}

    # --- DPoP (RFC 9449) ---

    def proof(self, method: str, url: str, *, token: str | None = None, key=None, header: dict | None = None,
              alg: str = "ES256", **claims) -> str:
        key = key or self.dpop_key
        body = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": now()}
        if token is not None:
            body["ath"] = dpop.access_token_hash(token)
        if self.nonce and url.endswith("/oauth/token"):
            body["nonce"] = self.nonce
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}
        return jwt.encode(head, body, key, algorithms=[alg],
                          registry=JWSRegistry(algorithms=[alg], strict_check_header=False))

    # --- the endpoints ---

    def url(self, path: str) -> str:
        return f"{self.issuer}/{path}"

    def push(self, auth: dict | None = None, **params):
        """POST the authorization request to the PAR endpoint."""
        data = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT_URI,
                "scope": "accounts", "state": "xyz", "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
        data.update(params)
        data = {k: v for k, v in data.items() if v is not None}
        data.update(self.auth() if auth is None else auth)
        return self.client.post(f"/{self.tenant}/oauth/par", data=data)

    def request_uri(self, **params) -> str:
        response = self.push(**params)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["request_uri"]

    def authorize(self, request_uri: str, **extra):
        query = {"client_id": self.client_id, "request_uri": request_uri, **extra}
        return self.client.get(f"/{self.tenant}/oauth/authorize?" + urlencode(query))

    def token_request(self, data: dict, *, proof: str | None | bool = True, auth: dict | None = None,
                      retry_nonce: bool = True):
        """POST to the token endpoint with a DPoP proof (True: a fresh one; a str: that one; None:
        none); a use_dpop_nonce answer is retried once with the nonce, as a client does."""
        body = dict(data)
        body.update(self.auth() if auth is None else auth)
        headers = {}
        if proof is True:
            headers["DPoP"] = self.proof("POST", self.url("oauth/token"))
        elif proof:
            headers["DPoP"] = proof
        response = self.client.post(f"/{self.tenant}/oauth/token", data=body, headers=headers)
        if "DPoP-Nonce" in response.headers:
            self.nonce = response.headers["DPoP-Nonce"]
        if retry_nonce and proof is True and response.status_code == 400 \
                and response.get_json().get("error") == "use_dpop_nonce":
            return self.token_request(data, proof=True, auth=None if auth is None else self.auth(),
                                      retry_nonce=False)
        return response

    def exchange(self, code: str, **kw):
        return self.token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                                   "code_verifier": VERIFIER}, **kw)

    def refresh(self, refresh_token: str, **kw):
        return self.token_request({"grant_type": "refresh_token", "refresh_token": refresh_token}, **kw)

    def api(self, path: str, token: str, *, scheme: str = "DPoP", proof: str | None | bool = True, headers=None):
        hdrs = {"Authorization": f"{scheme} {token}", **(headers or {})}
        if proof is True:
            hdrs["DPoP"] = self.proof("GET", self.url(f"api/v1/{path}"), token=token)
        elif proof:
            hdrs["DPoP"] = proof
        return self.client.get(f"/{self.tenant}/api/v1/{path}", headers=hdrs)


class FapiFlowActions(FlowActions):
    """The customer's walk (FlowActions), started the FAPI 2.0 way: the app pushes its request and
    sends the browser to the authorization endpoint with the request_uri."""

    def __init__(self, fapi: FapiApp, browser=None):
        self.app, self.client, self.tenant = fapi.app, browser or fapi.client, fapi.tenant
        self.fapi = fapi
        self.oauth_client = {"client_id": fapi.client_id}
        self.csrf = None
        self.last_request_uri = None

    def start(self, request_uri: str | None = None, **extra):
        """Push the request (or reuse `request_uri`), then open the authorization endpoint with it."""
        extra.pop("code_challenge", None)
        self.last_request_uri = request_uri or self.fapi.request_uri(**extra)
        query = {"client_id": self.fapi.client_id, "request_uri": self.last_request_uri}
        response = self.client.get(f"/{self.tenant}/oauth/authorize", query_string=query)
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        return self.get("flow/account")
