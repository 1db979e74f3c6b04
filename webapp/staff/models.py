"""Tables of the staff console: staff accounts, their one-time setup links, their login sessions,
(the ad hoc maintenance windows they announce are webapp/maintenance.py's).

Secrets are stored only in a form that cannot be replayed: passwords as argon2 hashes, setup links
and session ids as SHA-256 of 256-bit random values. The TOTP seed has to be readable to check a
code, so it is stored as it is (a database reader could mint codes; a password is still needed).
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime
from ..fields import STAFF_EMAIL

ROLES = ("operator", "admin")


class StaffAccount(SQLModel, table=True):
    __tablename__ = "staff_account"
    __table_args__ = (UniqueConstraint("tenant", "email", name="uq_staff_account_email"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32, index=True)
    email: str = Field(sa_column=Column(String(STAFF_EMAIL.max_length), nullable=False))
    role: str = Field(max_length=16)  # operator | admin
    password_hash: Optional[str] = Field(default=None, sa_column=Column(String(200), nullable=True))
    totp_secret: Optional[str] = Field(default=None, max_length=64)  # base32, RFC 6238
    totp_last_step: Optional[int] = None  # the last 30 s step accepted: a code is good once
    failures: int = 0  # failed password or code entries in a row (webapp/staff/auth.py)
    locked_until: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    enrolled_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    disabled_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class StaffSetupToken(SQLModel, table=True):
    """The one-time link `flask staff add` prints: valid 24 h, used once."""

    __tablename__ = "staff_setup_token"

    id: Optional[int] = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff_account.id", index=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class StaffSession(SQLModel, table=True):
    """A staff login, kept server-side; the browser holds only its random id in a cookie of its own.

    `stage` is "password" after the password, "ok" after the TOTP code; only "ok" opens the console.
    """

    __tablename__ = "staff_session"

    id: Optional[int] = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    staff_id: int = Field(foreign_key="staff_account.id", index=True)
    tenant: str = Field(max_length=32)
    stage: str = Field(max_length=16)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
