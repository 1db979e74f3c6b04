"""The OAuth 2.0 authorization server (Authlib), one instance serving every union.

One instance, because the unions differ only in data: a request's union comes from its URL
(`/{tenant}/oauth/...` → `g.tenant`), and everything the server looks up is scoped by it — a
client registered with amami does not exist at maruhachi's endpoints, and so neither do its codes
and tokens. The issuer is `{BASE_URL}/{tenant}` (CONTRACT §2), computed per request.

The rules, FAPI 2.0-grade, each set here explicitly because Authlib's defaults are not:
- authorization code only, `response_type=code`; PKCE with `S256` required for every client
  (missing or `plain` is refused, at the authorization endpoint already);
- `redirect_uri` required and matched exactly against the registered ones;
- a code lives `CODE_SECONDS` (60 s), is spent by one atomic `UPDATE … WHERE used_at IS NULL`,
  and a replayed code revokes every token issued under its consent (RFC 6749 §4.1.2);
- access tokens live at most `ACCESS_TOKEN_SECONDS` (10 min); refresh tokens rotate on each use
  (the old one is spent by one atomic UPDATE), a replay of a spent one revokes its whole family,
  and none outlives the consent (the union's 認可期間, `consent_days`);
- client authentication `client_secret_basic` or `client_secret_post` at the token, revocation
  (RFC 7009) and introspection (RFC 7662) endpoints;
- a FAPI 2.0 client (`profile` "fapi2") authenticates with `private_key_jwt` only
  (`client_assertion.py`), must push its authorization requests (`par.py`), and gets DPoP-bound
  tokens: its token requests carry a DPoP proof with a nonce of ours (`dpop.py`), the tokens are
  bound to the proof's key (`Token.dpop_jkt`, `token_type` "DPoP"), and a refresh needs a proof
  with that same key. Any client may send a DPoP proof and get bound tokens the same way, and an
  authorization request may bind its code to a DPoP key (`dpop_jkt`, or a proof sent to PAR);
- codes, tokens and secrets are stored only as SHA-256 (`models.secret_hash`); values are 256-bit.

The "user" Authlib hands around is the `Consent` row: what a token may read is exactly what the
customer allowed on ⑥. Database writes join the request's session; the views commit on success
and roll back otherwise, except replay revocations, which are committed at once.
"""
from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
import re
import secrets

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (ClientMixin, InvalidGrantError, InvalidRequestError, OAuth2Request,
                                    TokenMixin, grants)
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic as _authlib_basic
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization, list_to_scope, scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app, g
from flask import request as flask_request
from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select

from .. import clock, db, oplog
from ..webhooks.events import TOKENS_REVOKED, queue_event
from . import dpop, issuer
from .models import AuthorizationCode, Consent, OAuthClient, Token, secret_hash

log = logging.getLogger("renkei.oauth")

SCOPES = ("accounts",)  # 口座情報・明細情報へのアクセス
DEFAULT_SCOPE = "accounts"
CODE_SECONDS = 60
ACCESS_TOKEN_SECONDS = 600
SECRET_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
FAPI2_AUTH_METHODS = ["private_key_jwt"]
CLIENT_AUTH_METHODS = SECRET_AUTH_METHODS + FAPI2_AUTH_METHODS
FAPI2 = "fapi2"  # OAuthClient.profile of a FAPI 2.0 client
GRANT_TYPES = ("authorization_code", "refresh_token")
RESPONSE_TYPES = ("code",)
CODE_CHALLENGE_METHODS = ("S256",)
# what a flow keeps of the authorization request (replayed through Authlib on ⑥), and what PAR takes
AUTHORIZATION_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                        "code_challenge", "code_challenge_method", "dpop_jkt")
JKT = re.compile(r"[A-Za-z0-9_-]{43}")  # a JWK SHA-256 thumbprint, base64url


def new_secret() -> str:
    """256 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


# --- what Authlib sees of our rows --------------------------------------------------------------

class Client(ClientMixin):
    """A registered fintech app, as Authlib asks about it."""

    def __init__(self, row: OAuthClient):
        self.row = row

    @property
    def client_id(self) -> str:
        return self.row.client_id

    def get_client_id(self):
        return self.row.client_id

    @property
    def is_fapi2(self) -> bool:
        return self.row.profile == FAPI2

    def get_default_redirect_uri(self):
        return None  # redirect_uri is always required, and matched exactly

    def get_allowed_scope(self, scope):
        if not scope:
            return DEFAULT_SCOPE
        return list_to_scope([s for s in scope_to_list(scope) if s in SCOPES]) or None

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret):
        return bool(self.row.client_secret_hash) and hmac.compare_digest(self.row.client_secret_hash,
                                                                          secret_hash(client_secret))

    def check_endpoint_auth_method(self, method, endpoint):
        return method in (FAPI2_AUTH_METHODS if self.is_fapi2 else SECRET_AUTH_METHODS)

    def check_response_type(self, response_type):
        return response_type in RESPONSE_TYPES

    def check_grant_type(self, grant_type):
        return grant_type in GRANT_TYPES


# The ids we issue (secrets.token_urlsafe, demo-<union>) are URL-safe. Anything else is no client and
# never reaches the database, where PostgreSQL would refuse a NUL even in a WHERE (HTTP 500).
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def query_client(client_id) -> Client | None:
    """The client with this id registered with the request's union, if not revoked."""
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        return None
    # Read once a request: the authorization endpoint asks first, then Authlib's validation again.
    read = g.setdefault("oauth_clients", {})
    if client_id not in read:
        read[client_id] = OAuthClient.by_id(client_id)
    row = read[client_id]
    if row is None or row.tenant != g.tenant.id or row.revoked_at is not None:
        return None
    return Client(row)


def consent_is_live(consent: Consent | None) -> bool:
    return consent is not None and consent.revoked_at is None and consent.expires_at > clock.now()


class Code:
    """An authorization code row, as Authlib (and its PKCE extension) asks about it, with its
    consent row (read with it), or None when that row is gone."""

    def __init__(self, row: AuthorizationCode, consent: Consent | None = None):
        self.row, self.consent = row, consent
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self):
        return self.row.redirect_uri

    def get_scope(self):
        return self.row.scope


class IssuedToken(TokenMixin):
    """One presented token: the row it lives in, which of its two secrets it is, and its consent."""

    def __init__(self, row: Token, kind: str, consent: Consent | None):
        self.row, self.kind, self.consent = row, kind, consent

    def check_client(self, client):
        return self.row.client_id == client.get_client_id()

    def get_scope(self):
        return self.row.scope

    def expires_at(self) -> dt.datetime:
        if self.kind == "access_token":
            return self.row.access_expires_at
        return self.row.refresh_expires_at or self.row.issued_at

    def get_expires_in(self):
        return max(0, int((self.expires_at() - self.row.issued_at).total_seconds()))

    def is_expired(self):
        now = clock.now()
        return self.expires_at() <= now or self.consent is None or self.consent.expires_at <= now

    def is_revoked(self):
        return (self.row.revoked_at is not None
                or self.consent is None or self.consent.revoked_at is not None
                or self.kind == "refresh_token" and self.row.refresh_used_at is not None)

    def get_user(self):
        return self.consent

    def get_client(self):
        return query_client(self.row.client_id)


def find_token(value, hint=None) -> IssuedToken | None:
    """The token row holding this access or refresh token (the hint only orders the lookups)."""
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    s = db.session()
    digest = secret_hash(value)
    kinds = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in kinds:
        column = Token.access_token_hash if kind == "access_token" else Token.refresh_token_hash
        row = s.exec(select(Token).where(column == digest)).first()
        if row is not None:
            return IssuedToken(row, kind, s.get(Consent, row.consent_id))
    return None


def authenticate_client_secret_basic(query_client, request):
    """Authlib's `client_secret_basic`, except that a header its parser cannot read (base64 of
    bytes that are not UTF-8, `Basic //46/w==`; credentials that are not ASCII; `Basic ` and
    nothing after it) is a failed authentication, as Authlib already treats credentials that are
    not base64 at all: 401 `invalid_client`, not an exception (a 500)."""
    try:
        extract_basic_authorization(request.headers)
    except ValueError:  # UnicodeDecodeError; b64decode of a non-ASCII str; split() finding one word
        return None
    return _authlib_basic(query_client, request)


def authenticate_private_key_jwt(query_client, request):
    """`private_key_jwt` (client_assertion.py), loaded with the first client assertion: it brings
    joserfc and cryptography (~10 MB of every worker's memory), which only FAPI 2.0 clients need.
    Without a `client_assertion` the method answers None (no client) without looking further."""
    if not request.form.get("client_assertion"):
        return None
    return _private_key_jwt()(query_client, request)


@functools.cache
def _private_key_jwt():
    from .client_assertion import PrivateKeyJWT

    return PrivateKeyJWT()


# --- revocation (also used by consents.revoke_consent) ---------------------------------------------------

def revoke_tokens(s, *conditions) -> int:
    """Revoke every live token matching `conditions`, in the caller's transaction."""
    result = s.execute(update(Token).where(Token.revoked_at.is_(None), *conditions).values(revoked_at=clock.now()))
    return result.rowcount


def revoke_family(s, family: str) -> int:
    return revoke_tokens(s, Token.family == family)


def _log(event: str, result: str, client_id: str | None, detail: str | None = None) -> None:
    """An OAUTH line in the operation log (in the caller's transaction)."""
    oplog.write(db.session(), tenant=g.tenant.id, screen="OAUTH", event=event, result=result,
                client_id=client_id, detail=detail)


def _revoke_now(event: str, client_id: str, consent_id: int, *conditions) -> None:
    """Replay detected: drop this request's pending writes, revoke, and commit at once (with the
    app's `tokens_revoked` event when something was revoked)."""
    s = db.session()
    s.rollback()
    count = revoke_tokens(s, *conditions)
    _log(event, "refused", client_id, detail=f"revoked {count}")
    consent = s.get(Consent, consent_id)
    if count and consent is not None:
        queue_event(s, consent, TOKENS_REVOKED, event)
    s.commit()
    log.warning("%s for client %s: %d tokens revoked", event, client_id, count)


# --- grants ---------------------------------------------------------------------------------------

class S256Required(CodeChallenge):
    """PKCE for every client, `S256` only: a request without it, or with `plain`, is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = list(CODE_CHALLENGE_METHODS)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: 'code_challenge' is missing.")
        if data.get("code_challenge_method") not in CODE_CHALLENGE_METHODS:
            raise InvalidRequestError("PKCE 'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class DPoPCodeBinding:
    """RFC 9449 §10: an authorization request may name the DPoP key (`dpop_jkt`) that alone may
    exchange its code (checked at the token endpoint); it must be a JWK SHA-256 thumbprint."""

    def __call__(self, grant):
        grant.register_hook("after_validate_authorization_request_payload", self.validate_dpop_jkt)

    def validate_dpop_jkt(self, grant, redirect_uri):
        jkt = grant.request.payload.data.get("dpop_jkt")
        if jkt is not None and not (isinstance(jkt, str) and JKT.fullmatch(jkt)):
            raise InvalidRequestError("'dpop_jkt' must be a JWK SHA-256 thumbprint (RFC 9449 section 10).")


class DPoPProofError(OAuth2Error):
    """A token request's DPoP proof is missing or bad (RFC 9449 §5, §8): 400 with `error`
    invalid_dpop_proof or use_dpop_nonce (the view adds a fresh `DPoP-Nonce` header)."""

    status_code = 400

    def __init__(self, error: dpop.ProofError):
        super().__init__(description=error.description, error=error.error)


def token_request_jkt(required: bool) -> str | None:
    """The key the token request's DPoP proof proves (None without a proof, unless `required`)."""
    proofs = flask_request.headers.getlist("DPoP")
    if not proofs and not required:
        return None
    try:
        return dpop.verify(proofs, "POST", dpop.public_url(flask_request.path), nonce_for=g.tenant.id)
    except dpop.ProofError as error:
        raise DPoPProofError(error) from None


class DPoPBoundTokens:
    """Grant mixin: tokens bound to `request.dpop_jkt` are of type DPoP (RFC 9449 §5)."""

    def generate_token(self, *args, **kwargs):
        token = super().generate_token(*args, **kwargs)
        if getattr(self.request, "dpop_jkt", None):
            token["token_type"] = "DPoP"
        return token


_CODES = AuthorizationCode.__table__
# Spending a code, built once (Core, no ORM bulk-update evaluation): one atomic UPDATE, one winner.
_SPEND_CODE = (update(_CODES)
               .where(_CODES.c.id == bindparam("c_id"), _CODES.c.used_at.is_(None), _CODES.c.expires_at > bindparam("c_now"))
               .values(used_at=bindparam("c_now", type_=_CODES.c.used_at.type)))
# The token request's reads and write, built once: the code with its consent in one SELECT (rows made
# into detached objects, as the ORM's loader would), the new token by a plain INSERT. The request
# keeps no ORM object, so its commit has nothing to flush.
_CODE_KEYS, _CONSENT_KEYS = db.column_keys(AuthorizationCode), db.column_keys(Consent)
_CONSENTS = Consent.__table__
_CODE_WITH_CONSENT = (select(*db.columns(AuthorizationCode, _CODE_KEYS), *db.columns(Consent, _CONSENT_KEYS))
                      .select_from(_CODES.outerjoin(_CONSENTS, _CONSENTS.c.id == _CODES.c.consent_id))
                      .where(_CODES.c.code_hash == bindparam("code_hash")))
_NEW_TOKEN = insert(Token.__table__)
_NEW_CODE = insert(_CODES)  # ⑥'s code, the same way


class AuthorizationCodeGrant(DPoPBoundTokens, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        # After the code and PKCE checks, before the code is spent (a use_dpop_nonce answer leaves it
        # for the retry): a FAPI 2.0 client must prove a key, another client may, and a code bound
        # to a key (RFC 9449 §10) needs a proof of that key.
        bound = self.request.authorization_code.row.dpop_jkt
        jkt = token_request_jkt(required=self.request.client.is_fapi2 or bool(bound))
        if bound and jkt != bound:
            raise DPoPProofError(dpop.ProofError("The DPoP proof's key is not the one the code is bound to."))
        self.request.dpop_jkt = jkt

    def generate_authorization_code(self):
        return new_secret()

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # Authlib's own message quotes the URI, and a quote in it would make a 500: a fixed text instead.
        uri = request.payload.redirect_uri
        if not uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return uri

    def save_authorization_code(self, code, request):
        consent: Consent = request.user
        now = clock.now()
        data = request.payload.data
        db.session().connection().execute(_NEW_CODE, dict(
            code_hash=secret_hash(code), consent_id=consent.id, client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri, scope=request.scope or DEFAULT_SCOPE,
            code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
            issued_at=now, expires_at=now + dt.timedelta(seconds=CODE_SECONDS), dpop_jkt=data.get("dpop_jkt")))

    def query_authorization_code(self, code, client):
        if not isinstance(code, str) or len(code) > 200:
            return None
        found = db.session().connection().execute(_CODE_WITH_CONSENT, {"code_hash": secret_hash(code)}).first()
        if found is None:
            return None
        row = db.detached(AuthorizationCode, _CODE_KEYS, found[:len(_CODE_KEYS)])
        if row.client_id != client.get_client_id():
            return None
        if row.used_at is not None:
            _revoke_now("code_replayed", row.client_id, row.consent_id, Token.consent_id == row.consent_id)
            return None
        if row.expires_at <= clock.now():
            return None
        consent = found[len(_CODE_KEYS):]
        return Code(row, db.detached(Consent, _CONSENT_KEYS, consent) if consent[0] is not None else None)

    def delete_authorization_code(self, authorization_code):
        """Spend the code: one atomic UPDATE, so of parallel exchanges exactly one wins."""
        row = authorization_code.row
        now = clock.now()
        result = db.session().connection().execute(_SPEND_CODE, {"c_id": row.id, "c_now": now})
        if result.rowcount != 1:
            _revoke_now("code_replayed", row.client_id, row.consent_id, Token.consent_id == row.consent_id)
            raise InvalidGrantError("Invalid 'code' in request.")
        set_committed_value(row, "used_at", now)
        _log("code_exchanged", "ok", row.client_id)

    def authenticate_user(self, authorization_code):
        consent = authorization_code.consent
        return consent if consent_is_live(consent) else None


class RefreshTokenGrant(DPoPBoundTokens, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every use returns a new refresh token

    def validate_token_request(self):
        super().validate_token_request()
        bound = self.request.refresh_token.row.dpop_jkt
        jkt = token_request_jkt(required=bool(bound) or self.request.client.is_fapi2)
        if bound and jkt != bound:
            raise DPoPProofError(dpop.ProofError("The DPoP proof's key is not the one the refresh token is bound to."))
        self.request.dpop_jkt = bound  # the family keeps the binding it was issued with

    def authenticate_refresh_token(self, refresh_token):
        token = find_token(refresh_token, "refresh_token")
        if token is None or token.kind != "refresh_token":
            return None
        if token.row.refresh_used_at is not None:
            row = token.row
            _revoke_now("refresh_replayed", row.client_id, row.consent_id, Token.family == row.family)
            return None
        if token.is_revoked() or token.is_expired():
            return None
        return token

    def authenticate_user(self, refresh_token):
        return refresh_token.consent

    def revoke_old_credential(self, refresh_token):
        """Spend the presented refresh token: one atomic UPDATE; a parallel second use is a replay."""
        row = refresh_token.row
        result = db.session().execute(
            update(Token).where(Token.id == row.id, Token.refresh_used_at.is_(None), Token.revoked_at.is_(None))
            .values(refresh_used_at=clock.now()))
        if result.rowcount != 1:
            _revoke_now("refresh_replayed", row.client_id, row.consent_id, Token.family == row.family)
            raise InvalidGrantError()
        _log("token_refreshed", "ok", row.client_id)


def generate_bearer_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    """Access ≤ ACCESS_TOKEN_SECONDS and never past the consent; a refresh token when asked."""
    consent: Consent = user
    remaining = int((consent.expires_at - clock.now()).total_seconds())
    token = {"token_type": "Bearer", "access_token": new_secret(),
             "expires_in": max(1, min(ACCESS_TOKEN_SECONDS, remaining)), "scope": scope or DEFAULT_SCOPE}
    if include_refresh_token:
        token["refresh_token"] = new_secret()
    return token


def save_token(token: dict, request) -> None:
    """Store a newly issued token pair, hashed; a rotation stays in its family (in the request's transaction)."""
    consent: Consent = request.user
    now = clock.now()
    previous = request.refresh_token
    refresh = token.get("refresh_token")
    db.session().connection().execute(_NEW_TOKEN, dict(
        consent_id=consent.id, client_id=request.client.get_client_id(),
        family=previous.row.family if previous is not None else secrets.token_hex(16),
        scope=token["scope"], access_token_hash=secret_hash(token["access_token"]),
        refresh_token_hash=secret_hash(refresh) if refresh else None, issued_at=now,
        access_expires_at=now + dt.timedelta(seconds=token["expires_in"]),
        refresh_expires_at=consent.expires_at if refresh else None, dpop_jkt=getattr(request, "dpop_jkt", None)))


# --- revocation and introspection ----------------------------------------------------------------

class Revocation(RevocationEndpoint):
    """RFC 7009. A refresh token takes its whole family with it (and so every access token of the
    grant); an access token takes its own row (its paired refresh token too, as §2.1 allows)."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token, request):
        s = db.session()
        if token.kind == "refresh_token":
            revoke_family(s, token.row.family)
        else:
            revoke_tokens(s, Token.id == token.row.id)
        _log("token_revoked", "ok", token.row.client_id, detail=token.kind)


class Introspection(IntrospectionEndpoint):
    """RFC 7662. A client may introspect only its own tokens; anything else is `active: false`."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return token.check_client(client)

    def introspect_token(self, token):
        access_type = "DPoP" if token.row.dpop_jkt else "Bearer"
        body = {"active": True, "client_id": token.row.client_id, "scope": token.row.scope,
                "token_type": access_type if token.kind == "access_token" else "refresh_token",
                "exp": int(token.expires_at().timestamp()), "iat": int(token.row.issued_at.timestamp()),
                "iss": issuer(g.tenant.id)}
        if token.row.dpop_jkt:
            body["cnf"] = {"jkt": token.row.dpop_jkt}  # RFC 9449 §6.2
        return body


# --- the server -----------------------------------------------------------------------------------

class PublicRequest(OAuth2Request):
    """A Flask request seen at its public URL (`BASE_URL`): TLS ends at the load balancer, and
    Authlib refuses a plain-http URL that is not loopback."""

    def __init__(self, params=None):
        public = current_app.config["BASE_URL"] + flask_request.full_path.rstrip("?")
        super().__init__(method=flask_request.method, uri=public, headers=flask_request.headers)
        self._flask = flask_request
        self.payload = FlaskOAuth2Payload(flask_request) if params is None else BasicOAuth2Payload(params)

    @property
    def args(self):
        return self._flask.args

    @property
    def form(self):
        return self._flask.form


class Server(AuthorizationServer):
    def __init__(self):
        super().__init__(query_client=query_client, save_token=save_token)
        self.scopes_supported = list(SCOPES)
        self.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
        self.register_client_auth_method("private_key_jwt", authenticate_private_key_jwt)
        self.register_token_generator("default", generate_bearer_token)
        self.register_grant(AuthorizationCodeGrant, [S256Required(required=True), DPoPCodeBinding()])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def create_oauth2_request(self, request):
        return request if isinstance(request, OAuth2Request) else PublicRequest()

    def stored_request(self, params: dict) -> OAuth2Request:
        """The authorization request as validated when the flow began, replayed at ⑥."""
        return PublicRequest(params)


server = Server()
