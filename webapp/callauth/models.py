"""Tables of incoming-call authentication: one call attempt per flow, one row per inbound call.

The invariants live in the schema so that every process and host agrees:
- `call_attempt.flow_id` is unique: a flow has one attempt row, whose window starts when ④ first
  appears; 「もう一度電話番号認証を行う」 renews that row (new pool number, fresh window, `attempts`
  + 1) at most MAX_ATTEMPTS times in all, by one conditional UPDATE;
- among *waiting* attempts, (registered phone, pool number) is unique (a partial unique index), so
  a call — matched by (number dialled, caller) — can confirm at most one attempt;
- `inbound_call.call_sid` is unique: the provider's retry of the same call is counted once.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Column, ForeignKey, Index, Integer, String, event, text
from sqlmodel import Field, SQLModel

from ..db import UTCDateTime

WAITING = "waiting"  # shown on ④, no matching call yet
CONFIRMED = "confirmed"  # a matching call arrived inside the window; 「確定する」 may now use it
USED = "used"  # 「確定する」 consumed it: the flow went on to ⑤ (single use)
SUPERSEDED = "superseded"  # a newer attempt for the same phone needed its pool number
EXPIRED = "expired"  # marked when its window had passed (also derived from expires_at when still waiting)

MAX_ATTEMPTS = 3  # windows one flow may have on ④: the first and two renewals (issue 11)


class CallAttempt(SQLModel, table=True):
    __tablename__ = "call_attempt"
    __table_args__ = (
        # Partial (WAITING_ONLY): the engine's where= is added when the table is created (below). Naming
        # it here makes SQLAlchemy import that dialect into every process: PostgreSQL's, ~2.7 MB of a
        # SQLite worker; SQLite's, ~0.6 MB of a PostgreSQL one.
        Index("uq_call_attempt_waiting_phone_number", "phone_e164", "pool_number", unique=True),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    flow_id: int = Field(sa_column=Column(Integer, ForeignKey("flow.id"), unique=True, nullable=False))
    tenant: str = Field(max_length=32)
    phone_e164: str = Field(sa_column=Column(String(20), nullable=False, index=True))  # the registered phone
    pool_number: str = Field(sa_column=Column(String(20), nullable=False))  # E.164 of the number shown
    state: str = Field(sa_column=Column(String(16), nullable=False))
    started_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    confirmed_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    call_sid: Optional[str] = Field(default=None, sa_column=Column(String(64), nullable=True))
    # a withheld (非通知) call reached this pool number inside the window: ④ tells the customer about 186
    withheld_call_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # windows this flow has had on ④, counting this one (1 … MAX_ATTEMPTS)
    attempts: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default=text("1")))


class InboundCall(SQLModel, table=True):
    """Every signed call the provider reported, once per CallSid. The caller is kept masked only."""

    __tablename__ = "inbound_call"

    id: Optional[int] = Field(default=None, primary_key=True)
    call_sid: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    received_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    tenant: Optional[str] = Field(default=None, max_length=32)
    to_number: str = Field(sa_column=Column(String(32), nullable=False))  # our pool number as dialled
    from_masked: str = Field(sa_column=Column(String(32), nullable=False))  # e.g. *******3333 or "withheld"
    outcome: str = Field(sa_column=Column(String(24), nullable=False))
    attempt_id: Optional[int] = Field(default=None)


WAITING_ONLY = {"uq_call_attempt_waiting_phone_number": "state = 'waiting'"}  # index name: its where=


@event.listens_for(CallAttempt.__table__, "before_create")
def _partial_indexes(table, connection, **_kw) -> None:
    """The partial unique index on the engine that creates the table (create_all; the migrations name
    it themselves)."""
    for index in table.indexes:
        if index.name in WAITING_ONLY:
            index.dialect_options[connection.dialect.name]["where"] = text(WAITING_ONLY[index.name])
