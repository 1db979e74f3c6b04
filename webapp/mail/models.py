from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime

from ..deliveries import CANCELLED, FAILED, PENDING, SENT  # noqa: F401  (the states, shared by every outbox)


class MailOutbox(SQLModel, table=True):
    """One outgoing mail, written in the transaction of what caused it, then sent by the sender.

    The message is rendered when queued (a snapshot: later changes to the client or the consent do
    not rewrite a notice about what happened). (`flow_id`, `kind`, `consent_id`) is unique: one
    completion mail and one expiry reminder per flow, one revocation notice per consent ended in a
    連携中のアプリ session. A mail still pending at `send_before` is cancelled, not sent (a reminder
    about a consent that has ended meanwhile).
    A sender holds a row while `claimed_until` lies in the future; `claim_token` tells its own claim
    from a later one. `message_id` is fixed at queue time, so a retry carries the same Message-ID.
    """

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "state", "next_attempt_at"),
                      UniqueConstraint("flow_id", "kind", "consent_id", name="uq_mail_outbox_flow_kind_consent"))

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    flow_id: int = Field(sa_column=Column(Integer, nullable=False))
    consent_id: Optional[int] = Field(default=None, index=True)
    kind: str = Field(max_length=32)  # consent_completed | consent_expiring | consent_revoked
    sender: str = Field(sa_column=Column(String(200), nullable=False))
    recipient: str = Field(sa_column=Column(String(254), nullable=False))
    subject: str = Field(sa_column=Column(String(200), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(sa_column=Column(String(200), nullable=False))
    state: str = Field(default=PENDING, max_length=16)  # pending | sent | failed | cancelled
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    claim_token: Optional[str] = Field(default=None, max_length=32)
    last_error: Optional[str] = Field(default=None, sa_column=Column(String(300), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    send_before: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
