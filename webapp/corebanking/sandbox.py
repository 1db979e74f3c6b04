"""The sandbox core banking: accounts and transactions in this database's sandbox_* tables.

It reads through the request's own session: on SQLite a second connection inside one request
would wait on the first one's write lock. Its rows (`SandboxAccount`) never leave this module: it
answers with the interface's own types.
"""
from __future__ import annotations

import datetime as dt
import hmac

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from .. import clock, db
from . import (ACTIVE, AccountCheck, AccountKey, AccountSummary, Balance, CoreBanking, IdentityResult, Transaction,
               pin_hash)
from .models import SandboxAccount, SandboxTransaction


class SandboxCoreBanking(CoreBanking):
    def _find(self, s: Session, key: AccountKey) -> SandboxAccount | None:
        return s.exec(
            select(SandboxAccount).where(
                SandboxAccount.tenant == key.tenant,
                SandboxAccount.branch == key.branch,
                SandboxAccount.account_type == key.account_type,
                SandboxAccount.number == key.number,
            )
        ).first()

    def _usable(self, acct: SandboxAccount | None) -> bool:
        return acct is not None and acct.status == ACTIVE and acct.cash_card

    def account(self, key: AccountKey) -> AccountSummary | None:
        acct = self._find(db.session(), key)
        return None if acct is None else AccountSummary(name_kana=acct.name_kana, status=acct.status)

    def check_identity(self, key: AccountKey, birth_date: dt.date, phone: str) -> IdentityResult:
        acct = self._find(db.session(), key)
        if not self._usable(acct):
            return IdentityResult(AccountCheck.NOT_SERVICEABLE)
        same = (acct.birth_date == birth_date) & hmac.compare_digest(acct.phone, phone)
        if not same:
            return IdentityResult(AccountCheck.MISMATCH)
        return IdentityResult(AccountCheck.OK, phone=acct.phone)

    def check_pin(self, key: AccountKey, pin: str) -> AccountCheck:
        acct = self._find(db.session(), key)
        if not self._usable(acct):
            return AccountCheck.NOT_SERVICEABLE
        if not hmac.compare_digest(acct.pin_hash, pin_hash(key, pin)):
            return AccountCheck.MISMATCH
        return AccountCheck.OK

    def balance(self, key: AccountKey) -> Balance | None:
        acct = self._find(db.session(), key)
        if acct is None:
            return None
        withdrawable = acct.balance if acct.withdrawable is None else acct.withdrawable
        return Balance(balance=acct.balance, withdrawable=withdrawable, as_of=clock.now())

    def transactions(self, key: AccountKey, date_from: dt.date, date_to: dt.date,
                     after: tuple[dt.date, int] | None, limit: int) -> list[Transaction]:
        # One statement on the (account_id, date, seq) index: the account by its key, the window,
        # then the keyset condition (date, seq) < after, newest first. Plain columns, not ORM
        # objects: building 500 model instances costs ~10x the query.
        t = SandboxTransaction
        stmt = (
            select(t.seq, t.date, t.value_date, t.type, t.amount, t.remarks, t.balance)
            .join(SandboxAccount, SandboxAccount.id == t.account_id)
            .where(SandboxAccount.tenant == key.tenant, SandboxAccount.branch == key.branch,
                   SandboxAccount.account_type == key.account_type, SandboxAccount.number == key.number,
                   t.date >= date_from, t.date <= date_to)
            .order_by(t.date.desc(), t.seq.desc())
            .limit(limit)
        )
        if after is not None:
            after_date, after_seq = after
            stmt = stmt.where(or_(t.date < after_date, and_(t.date == after_date, t.seq < after_seq)))
        return [Transaction(*row) for row in db.session().execute(stmt)]
