from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Column, JSON, String
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime
from ..fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BRANCH, EMAIL, NAME_KANA


AUTHORIZE, LINKS = "authorize", "links"  # what a flow is for: an app's authorization request, or 連携中のアプリ


class Flow(SQLModel, table=True):
    """One customer's pass through API連携認証, from the authorization request to consent or cancel;
    or, with purpose `links`, from 連携中のアプリ through the same identity steps to that page.

    The browser holds only an opaque handle (in the signed session cookie); this row holds the
    state. `handle_hash` is rotated at each completed stage, so an old cookie is worthless.
    """

    __tablename__ = "flow"

    id: Optional[int] = Field(default=None, primary_key=True)
    handle_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    tenant: str = Field(max_length=32, index=True)
    step: str = Field(max_length=16)  # see flow.state.STEPS
    purpose: str = Field(default=AUTHORIZE, sa_column=Column(String(16), nullable=False, server_default=AUTHORIZE))
    # the authorization request, as validated when the flow began (none for purpose links)
    client_id: Optional[str] = Field(default=None, max_length=64)
    redirect_uri: Optional[str] = Field(default=None, max_length=2000)
    oauth_request: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # ① and ②
    branch: Optional[str] = Field(default=None, max_length=BRANCH.max_length)
    account_type: Optional[str] = Field(default=None, max_length=ACCOUNT_TYPE.max_length)
    account_number: Optional[str] = Field(default=None, max_length=ACCOUNT_NUMBER.max_length)
    name_kana: Optional[str] = Field(default=None, max_length=NAME_KANA.max_length)
    email: Optional[str] = Field(default=None, max_length=EMAIL.max_length)
    # the registered phone (E.164) the call must come from; set once ② matched the core record
    phone_e164: Optional[str] = Field(default=None, max_length=20)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    outcome: Optional[str] = Field(default=None, max_length=16)  # consented | cancelled | denied | expired | finished
