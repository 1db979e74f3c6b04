from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from ..fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BRANCH, NAME_KANA, PHONE


class SandboxAccount(SQLModel, table=True):
    """An account of the sandbox core banking (loaded by `flask sandbox load`)."""

    __tablename__ = "sandbox_account"
    __table_args__ = (UniqueConstraint("tenant", "branch", "account_type", "number", name="uq_sandbox_account"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    branch: str = Field(max_length=BRANCH.max_length)
    account_type: str = Field(max_length=ACCOUNT_TYPE.max_length)
    number: str = Field(max_length=ACCOUNT_NUMBER.max_length)
    name_kana: str = Field(max_length=NAME_KANA.max_length)
    birth_date: dt.date
    phone: str = Field(max_length=PHONE.max_length)  # national digits, as registered
    pin_hash: str = Field(max_length=64)  # keyed hash (HMAC-SHA256), never the PIN
    cash_card: bool = True
    status: str = Field(max_length=8)  # active | closed | moved
    balance: int = Field(sa_column=Column(BigInteger, nullable=False))
    withdrawable: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class SandboxTransaction(SQLModel, table=True):
    __tablename__ = "sandbox_transaction"
    __table_args__ = (
        UniqueConstraint("account_id", "seq", name="uq_sandbox_transaction_seq"),
        # The account API pages newest first by (date, seq): one index range scan per page.
        Index("ix_sandbox_transaction_account_date_seq", "account_id", "date", "seq"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="sandbox_account.id", index=True)
    seq: int  # order of booking within the account, stable across reloads
    date: dt.date = Field(index=True)
    value_date: dt.date
    type: str = Field(max_length=1)  # "1" 入金, "2" 出金
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    remarks: str = Field(sa_column=Column(String(100), nullable=False))
    balance: int = Field(sa_column=Column(BigInteger, nullable=False))
