from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import JSON, Column, Index, String, bindparam
from sqlmodel import Field, SQLModel, select

from .. import db
from ..db import UTCDateTime
from ..fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BRANCH


class OAuthClient(SQLModel, table=True):
    """A fintech app registered with one union (`flask clients add`). The secret is stored hashed."""

    __tablename__ = "oauth_client"

    id: Optional[int] = Field(default=None, primary_key=True)
    client_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    client_secret_hash: str = Field(max_length=128)
    tenant: str = Field(max_length=32, index=True)
    name: str = Field(max_length=100)
    operator: str = Field(max_length=100)
    redirect_uris: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # "oauth2": client_secret_basic/post, Bearer tokens. "fapi2" (FAPI 2.0 Security Profile): no
    # secret (client_secret_hash is ""), private_key_jwt with its JWK Set (`jwks`, or fetched from
    # `jwks_uri`), PAR required, DPoP-bound tokens.
    profile: str = Field(default="oauth2", sa_column=Column(String(16), nullable=False, server_default="oauth2"))
    jwks: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    jwks_uri: Optional[str] = Field(default=None, max_length=2000)
    # where the union POSTs signed events about this app's consents (webapp/webhooks); None: no events
    webhook_url: Optional[str] = Field(default=None, sa_column=Column(String(2000), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    @classmethod
    def by_id(cls, client_id: str) -> "OAuthClient | None":
        """The client row (detached: a read, never changed through it), by a SELECT built once."""
        row = db.session().connection().execute(_CLIENT_BY_ID, {"client_id": client_id}).first()
        return db.detached(cls, CLIENT_KEYS, row) if row is not None else None


CLIENT_KEYS = db.column_keys(OAuthClient)
_CLIENT_BY_ID = select(*db.columns(OAuthClient, CLIENT_KEYS)).where(
    OAuthClient.__table__.c.client_id == bindparam("client_id"))


def secret_hash(value: str) -> str:
    """Codes, tokens and client secrets are stored only as SHA-256 (they are 256-bit random)."""
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


class Consent(SQLModel, table=True):
    """A customer's 許可 for one client to read one account, for the union's 認可期間
    (`consent_days` in tenants/<id>.toml).

    Revoking it (customer request to the union, staff) kills every token issued under it.
    """

    __tablename__ = "oauth_consent"
    __table_args__ = (Index("ix_oauth_consent_expires_at", "expires_at"),)  # the expiry reminders' scan

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    client_id: str = Field(max_length=64, index=True)
    branch: str = Field(max_length=BRANCH.max_length)
    account_type: str = Field(max_length=ACCOUNT_TYPE.max_length)
    account_number: str = Field(max_length=ACCOUNT_NUMBER.max_length)
    scope: str = Field(max_length=100)
    flow_id: Optional[int] = Field(default=None, index=True)
    granted_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class AuthorizationCode(SQLModel, table=True):
    """Single use, at most 60 s. `used_at` is set by one atomic UPDATE; a replay revokes the consent's tokens."""

    __tablename__ = "oauth_code"

    id: Optional[int] = Field(default=None, primary_key=True)
    code_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    consent_id: int = Field(foreign_key="oauth_consent.id", index=True)
    client_id: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=100)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=8)
    issued_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # DPoP authorization code binding (RFC 9449 §10): only a proof of this key may exchange the code
    dpop_jkt: Optional[str] = Field(default=None, max_length=64)


class Token(SQLModel, table=True):
    """An access token (≤10 min) and its refresh token; `family` groups every rotation of one grant."""

    __tablename__ = "oauth_token"

    id: Optional[int] = Field(default=None, primary_key=True)
    consent_id: int = Field(foreign_key="oauth_consent.id", index=True)
    client_id: str = Field(max_length=64, index=True)
    family: str = Field(max_length=64, index=True)
    scope: str = Field(max_length=100)
    access_token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    refresh_token_hash: Optional[str] = Field(default=None, sa_column=Column(String(64), unique=True, nullable=True))
    issued_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    access_expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    refresh_expires_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    refresh_used_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # DPoP (RFC 9449): the JWK SHA-256 thumbprint of the key both tokens are bound to; None for Bearer
    dpop_jkt: Optional[str] = Field(default=None, max_length=64)


class PushedRequest(SQLModel, table=True):
    """A pushed authorization request (RFC 9126): the validated parameters behind one `request_uri`.

    It may open the authorization endpoint until `expires_at` (60 s) and be spent once, when the
    customer's 許可する issues a code (`used_at`, one atomic UPDATE); after that it opens nothing."""

    __tablename__ = "oauth_pushed_request"

    id: Optional[int] = Field(default=None, primary_key=True)
    request_uri_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    tenant: str = Field(max_length=32)
    client_id: str = Field(max_length=64)
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    used_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SeenJti(SQLModel, table=True):
    """The replay cache of one-time JWTs (a DPoP proof's or a client assertion's `jti`): a row per
    (kind, issuer of the JWT, jti) as SHA-256, kept until no such JWT could be accepted anyway."""

    __tablename__ = "oauth_seen_jti"

    id: Optional[int] = Field(default=None, primary_key=True)
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
