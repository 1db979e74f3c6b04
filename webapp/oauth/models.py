from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel, select

from .. import db
from ..db import UTCDateTime


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
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    @classmethod
    def by_id(cls, client_id: str) -> "OAuthClient | None":
        return db.session().exec(select(cls).where(cls.client_id == client_id)).first()
