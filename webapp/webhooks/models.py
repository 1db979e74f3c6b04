from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime
from ..deliveries import PENDING


class WebhookOutbox(SQLModel, table=True):
    """One event for one app, written in the transaction of the revocation, then POSTed by the sender.

    What the event says is fixed here (`event_id` unique, `occurred_at`); it is signed when sent.
    `url` is the app's webhook URL when the event happened. The delivery columns are those of every
    outbox (webapp/deliveries.py).
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_due", "state", "next_attempt_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    event_id: str = Field(sa_column=Column(String(36), unique=True, nullable=False))
    tenant: str = Field(max_length=32, index=True)
    client_id: str = Field(max_length=64, index=True)
    event: str = Field(max_length=32)  # consent_revoked | tokens_revoked
    consent_id: int
    account_id: str = Field(max_length=32)  # the accountId the app knows the account by (webapp/api/keys.py)
    reason: str = Field(max_length=32)  # customer | union | code_replayed | refresh_replayed
    occurred_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    url: str = Field(sa_column=Column(String(2000), nullable=False))
    state: str = Field(default=PENDING, max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    claim_token: Optional[str] = Field(default=None, max_length=32)
    last_error: Optional[str] = Field(default=None, sa_column=Column(String(300), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SigningKey(SQLModel, table=True):
    """A union's ES256 key for its events. The private JWK is stored encrypted (JWE, A256GCM) under a
    key derived from FLASK_SECRET_KEY; `secret_id` names that secret, so there is one key per union and
    secret: rotating the secret makes a new key, and the old public key stays published."""

    __tablename__ = "signing_key"
    __table_args__ = (UniqueConstraint("tenant", "secret_id", name="uq_signing_key_tenant_secret"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    secret_id: str = Field(max_length=32)
    kid: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    public_jwk: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    private_jwk_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
