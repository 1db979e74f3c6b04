"""Bearer tokens for the account API (RFC 6750 §2.1, §3).

A request carries `Authorization: Bearer <access token>`; the token is found by its SHA-256
(`Token.access_token_hash`). It is good only while, at `clock.now()`:
the token is neither expired nor revoked; its consent is neither expired (認可期間) nor revoked;
its client is registered and not revoked; and the consent belongs to the union in the URL.

- no credentials (or another scheme)  → 401, `WWW-Authenticate: Bearer realm="…"` (no error code);
- a malformed Bearer header, or a token in the query string or form (not accepted: URLs end up
  in logs) → 400 `error="invalid_request"`;
- any failed condition above → 401 `error="invalid_token"`, the same answer whichever one failed;
- a good token whose scope lacks the endpoint's → 403 `error="insufficient_scope"`;
- an address that presented too many invalid tokens (API_AUTH_FAILURES_PER_IP, default 60 a
  minute) → 429 until its window passes: guessing tokens, or flooding the log, stops there.

The token itself never leaves this module: not in `g`, not in a log line.
"""
from __future__ import annotations

import dataclasses
import functools
import re

from flask import current_app, g, request
from limits import parse as parse_limit
from sqlmodel import select

from .. import clock, db
from ..corebanking import AccountKey
from ..oauth import issuer
from ..oauth.models import Consent, OAuthClient, Token, secret_hash
from ..extensions import limiter
from .problems import ApiError

# Invalid tokens one address may present before it is refused (API_AUTH_FAILURES_PER_IP).
DEFAULT_AUTH_FAILURES_PER_IP = "60 per minute"

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Grant:
    """What a valid token lets the caller read: one consent's account, for one client."""

    client_id: str
    consent_id: int
    token_id: int
    scopes: frozenset[str]
    account: AccountKey


def _challenge(error: str | None = None, scope: str | None = None) -> dict:
    parts = [f'realm="{issuer(g.tenant.id)}"']
    if error:
        parts.append(f'error="{error}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return {"WWW-Authenticate": "Bearer " + ", ".join(parts)}


def _bearer_token() -> str | None:
    """The token from the Authorization header; None when the request carries no credentials."""
    if "access_token" in request.args or "access_token" in request.form:
        raise ApiError("invalid_request", "アクセストークンはAuthorizationヘッダーで送信してください。",
                       _challenge("invalid_request"))
    header = request.headers.get("Authorization", "").strip()
    if not header or not header.lower().startswith("bearer"):
        return None  # no credentials, or an unsupported scheme (RFC 6750 §3.1)
    match = _BEARER.fullmatch(header)
    if match is None:
        raise ApiError("invalid_request", "Authorizationヘッダーの形式が正しくありません。", _challenge("invalid_request"))
    return match.group(1)


def _failure_limit():
    return parse_limit(current_app.config.get("API_AUTH_FAILURES_PER_IP", DEFAULT_AUTH_FAILURES_PER_IP))


def _refuse_guessing() -> None:
    """An address whose tokens keep failing is refused for a while (token guessing, log flooding)."""
    if not limiter.test(_failure_limit(), "api-auth-failures", request.remote_addr or ""):
        raise ApiError("too_many_requests", headers={"Retry-After": "60"})


def _invalid(reason: str) -> ApiError:
    g.api_auth_failure = reason  # for the operation log only; the client gets one answer for all
    limiter.hit(_failure_limit(), "api-auth-failures", request.remote_addr or "")
    return ApiError("invalid_token", headers=_challenge("invalid_token"))


def authenticate(scope: str) -> Grant:
    """The grant of the request's token, or an ApiError to answer with."""
    _refuse_guessing()
    token = _bearer_token()
    if token is None:
        raise ApiError("unauthorized", headers=_challenge())
    row = db.session().exec(
        select(Token, Consent, OAuthClient)
        .join(Consent, Consent.id == Token.consent_id)
        .join(OAuthClient, OAuthClient.client_id == Token.client_id, isouter=True)
        .where(Token.access_token_hash == secret_hash(token))
    ).first()
    if row is None:
        raise _invalid("unknown")
    tok, consent, client = row
    g.api_client_id = tok.client_id  # known from here on, for the log and the rate limit
    now = clock.now()
    if tok.revoked_at is not None:
        raise _invalid("token_revoked")
    if clock.as_utc(tok.access_expires_at) <= now:
        raise _invalid("token_expired")
    if consent.revoked_at is not None:
        raise _invalid("consent_revoked")
    if clock.as_utc(consent.expires_at) <= now:
        raise _invalid("consent_expired")
    if consent.tenant != g.tenant.id or consent.client_id != tok.client_id:
        raise _invalid("other_tenant")
    if client is None or client.revoked_at is not None or client.tenant != consent.tenant:
        raise _invalid("client_revoked")
    scopes = frozenset(tok.scope.split())
    grant = Grant(client_id=tok.client_id, consent_id=consent.id, token_id=tok.id, scopes=scopes,
                  account=AccountKey(consent.tenant, consent.branch, consent.account_type, consent.account_number))
    g.api_grant = grant
    if scope not in scopes:
        raise ApiError("insufficient_scope", headers=_challenge("insufficient_scope", scope))
    return grant


def require_token(scope: str = "accounts"):
    """View decorator: the view runs only with a valid token carrying `scope`; `g.api_grant` holds its grant."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            authenticate(scope)
            return view(*args, **kwargs)

        return wrapper

    return decorator
