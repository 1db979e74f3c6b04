"""Bearer and DPoP-bound tokens for the account API (RFC 6750 §2.1, §3; RFC 9449 §7).

A request carries `Authorization: Bearer <access token>`, or, for a token bound to a DPoP key (a
FAPI 2.0 client's), `Authorization: DPoP <access token>` with one `DPoP` proof header made for this
request (`webapp.oauth.dpop`: htm, htu at the public URL, iat, jti not seen before, `ath` of the
token, signed by the key the token is bound to). The token is found by its SHA-256
(`Token.access_token_hash`). It is good only while, at `clock.now()`:
the token is neither expired nor revoked; its consent is neither expired (認可期間) nor revoked;
its client is registered and not revoked; and the consent belongs to the union in the URL.

- no credentials (or another scheme)  → 401, `WWW-Authenticate: Bearer realm="…"` (no error code);
- a malformed Bearer header, or a token in the query string or form (not accepted: URLs end up
  in logs) → 400 `error="invalid_request"`;
- any failed condition above → 401 `error="invalid_token"`, the same answer whichever one failed;
- a DPoP-bound token sent as Bearer, or without a good proof, or with a proof of another key; a
  Bearer token sent as DPoP → 401, `WWW-Authenticate: DPoP realm="…", error="invalid_token"` (or
  `error="invalid_dpop_proof"` for a bad proof), `algs="ES256 PS256"`;
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
from sqlalchemy import bindparam, select

from .. import clock, db
from ..corebanking import AccountKey
from ..oauth import dpop, issuer
from ..oauth.models import Consent, OAuthClient, Token, secret_hash
from ..extensions import limiter
from .problems import ApiError

# Invalid tokens one address may present before it is refused (API_AUTH_FAILURES_PER_IP).
DEFAULT_AUTH_FAILURES_PER_IP = "60 per minute"

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; RFC 9449 §7.1: the same with "DPoP"
_CREDENTIALS = re.compile(r"(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Grant:
    """What a valid token lets the caller read: one consent's account, for one client."""

    client_id: str
    consent_id: int
    token_id: int
    scopes: frozenset[str]
    account: AccountKey


def _challenge(error: str | None = None, scope: str | None = None, scheme: str = "Bearer") -> dict:
    parts = [f'realm="{issuer(g.tenant.id)}"']
    if error:
        parts.append(f'error="{error}"')
    if scope:
        parts.append(f'scope="{scope}"')
    if scheme == "DPoP":
        parts.append('algs="' + " ".join(dpop.ALGORITHMS) + '"')
    return {"WWW-Authenticate": scheme + " " + ", ".join(parts)}


def _credentials() -> tuple[str, str] | None:
    """(scheme, token) from the Authorization header, the scheme "Bearer" or "DPoP"; None when the
    request carries no credentials."""
    r = request._get_current_object()  # one context lookup, not one per attribute (every API call)
    # A form only when a Content-Type says so (werkzeug's own test): a GET without one reads no form.
    if "access_token" in r.args or (r.want_form_data_parsed and "access_token" in r.form):
        raise ApiError("invalid_request", "アクセストークンはAuthorizationヘッダーで送信してください。",
                       _challenge("invalid_request"))
    header = r.headers.get("Authorization", "").strip()
    scheme = header[:6].lower()
    if not header or not (scheme.startswith("bearer") or scheme.startswith("dpop")):
        return None  # no credentials, or an unsupported scheme (RFC 6750 §3.1)
    match = _CREDENTIALS.fullmatch(header)
    if match is None:
        challenge = _challenge("invalid_request", scheme="DPoP" if scheme.startswith("dpop") else "Bearer")
        raise ApiError("invalid_request", "Authorizationヘッダーの形式が正しくありません。", challenge)
    return ("DPoP" if match.group(1).lower() == "dpop" else "Bearer"), match.group(2)


def _failure_limit():
    return _parsed(current_app._get_current_object().config.get("API_AUTH_FAILURES_PER_IP",
                                                                 DEFAULT_AUTH_FAILURES_PER_IP))


@functools.lru_cache(maxsize=8)
def _parsed(limit: str):
    """limits' parse, once per value of the setting (it ran on every call); nothing changes a RateLimitItem."""
    return parse_limit(limit)


def _refuse_guessing() -> None:
    """An address whose tokens keep failing is refused for a while (token guessing, log flooding)."""
    if not limiter.test(_failure_limit(), "api-auth-failures", request._get_current_object().remote_addr or ""):
        raise ApiError("too_many_requests", headers={"Retry-After": "60"})


def _invalid(reason: str, scheme: str = "Bearer", error: str = "invalid_token") -> ApiError:
    g.api_auth_failure = reason  # for the operation log only; the client gets one answer for all
    limiter.hit(_failure_limit(), "api-auth-failures", request.remote_addr or "")
    return ApiError(error, headers=_challenge(error, scheme=scheme))


def _check_binding(scheme: str, token: str, bound_jkt: str | None) -> None:
    """A DPoP-bound token only as DPoP with a good proof of its key; a Bearer token only as Bearer."""
    if bound_jkt is None:
        if scheme == "DPoP":
            raise _invalid("bearer_token_as_dpop", "DPoP")
        return
    if scheme != "DPoP":
        raise _invalid("dpop_token_as_bearer", "DPoP")
    try:
        jkt = dpop.verify(request.headers.getlist("DPoP"), request.method, dpop.public_url(request.path),
                          access_token=token)
    except dpop.ProofError as error:
        raise _invalid("dpop_proof: " + error.description, "DPoP", "invalid_dpop_proof") from None
    if jkt != bound_jkt:
        raise _invalid("dpop_proof_other_key", "DPoP")


# The token, its consent and its client in one statement built once, run on the request's plain
# connection (db.first_read): no statement construction, no ORM objects on every call (bench/profile_api.py).
_t, _c, _k = Token.__table__.c, Consent.__table__.c, OAuthClient.__table__.c
_TOKEN_GRANT = (
    select(_t.id, _t.client_id, _t.scope, _t.revoked_at, _t.access_expires_at, _t.dpop_jkt,
           _c.id.label("consent_id"), _c.tenant.label("consent_tenant"), _c.client_id.label("consent_client_id"),
           _c.branch, _c.account_type, _c.account_number, _c.expires_at.label("consent_expires_at"),
           _c.revoked_at.label("consent_revoked_at"),
           _k.id.label("client_row_id"), _k.tenant.label("client_tenant"), _k.revoked_at.label("client_revoked_at"))
    .join_from(Token.__table__, Consent.__table__, _c.id == _t.consent_id)
    .outerjoin(OAuthClient.__table__, _k.client_id == _t.client_id)
    .where(_t.access_token_hash == bindparam("access_token_hash"))
)


def authenticate(scope: str) -> Grant:
    """The grant of the request's token, or an ApiError to answer with."""
    _refuse_guessing()
    credentials = _credentials()
    if credentials is None:
        raise ApiError("unauthorized", headers=_challenge())
    scheme, token = credentials
    row = db.first_read(_TOKEN_GRANT, {"access_token_hash": secret_hash(token)})
    if row is None:
        raise _invalid("unknown", scheme)
    ctx_g = g._get_current_object()
    ctx_g.api_client_id = row.client_id  # known from here on, for the log and the rate limit
    now = clock.now()
    if row.revoked_at is not None:
        raise _invalid("token_revoked", scheme)
    if clock.as_utc(row.access_expires_at) <= now:
        raise _invalid("token_expired", scheme)
    if row.consent_revoked_at is not None:
        raise _invalid("consent_revoked", scheme)
    if clock.as_utc(row.consent_expires_at) <= now:
        raise _invalid("consent_expired", scheme)
    if row.consent_tenant != ctx_g.tenant.id or row.consent_client_id != row.client_id:
        raise _invalid("other_tenant", scheme)
    if row.client_row_id is None or row.client_revoked_at is not None or row.client_tenant != row.consent_tenant:
        raise _invalid("client_revoked", scheme)
    _check_binding(scheme, token, row.dpop_jkt)
    scopes = frozenset(row.scope.split())
    grant = Grant(client_id=row.client_id, consent_id=row.consent_id, token_id=row.id, scopes=scopes,
                  account=AccountKey(row.consent_tenant, row.branch, row.account_type, row.account_number))
    ctx_g.api_grant = grant
    if scope not in scopes:
        raise ApiError("insufficient_scope", headers=_challenge("insufficient_scope", scope, scheme))
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
