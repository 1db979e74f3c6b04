"""The sandbox core banking: accounts and transactions in this database's sandbox_* tables.

It reads through the request's own session: on SQLite a second connection inside one request
would wait on the first one's write lock.
"""
from __future__ import annotations

import datetime as dt
import hmac

from sqlmodel import Session, select

from .. import db
from . import AccountCheck, AccountKey, CoreBanking, IdentityResult, pin_hash
from .models import SandboxAccount


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
        return acct is not None and acct.status == "active" and acct.cash_card

    def account(self, key: AccountKey) -> SandboxAccount | None:
        return self._find(db.session(), key)

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
