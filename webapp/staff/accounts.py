"""What staff see of one account and what they may do to it.

Reads: the lock (failures counted today, locked until 00:00 JST, the last refusal's reason), the
account's consents with their status, its last 50 operation-log rows, and its kana name from core
banking (core banking out of reach: the page still shows the rest). Writes go through the
services that own them: `lockout.unlock`, `oauth.consents.revoke_consent`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlmodel import select

from .. import clock, lockout
from ..corebanking import AccountKey, CoreUnavailable, core
from ..lockout import AccountLock
from ..oauth.models import Consent, OAuthClient
from ..oplog import OperationLog

LOG_ROWS = 50
NOT_OK = ("fail", "locked", "refused", "error")


@dataclasses.dataclass(frozen=True)
class LockState:
    failures_today: int
    threshold: int
    locked_until: dt.datetime | None  # JST, when locked
    last_refusal: OperationLog | None  # the account's latest row that was not ok (its detail: B84, mismatch 3/5…)

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


@dataclasses.dataclass(frozen=True)
class ConsentRow:
    consent: Consent
    app_name: str
    operator: str
    status: str  # 有効 | 期限切れ | 解除済み

    @property
    def live(self) -> bool:
        return self.status == "有効"


def lock_state(s, tenant, key: AccountKey) -> LockState:
    row = s.exec(select(AccountLock).where(
        AccountLock.tenant == key.tenant, AccountLock.branch == key.branch,
        AccountLock.account_type == key.account_type, AccountLock.number == key.number)).first()
    failures = row.failures if row is not None and row.day == clock.today_jst() else 0
    locked = lockout.is_locked(s, key, tenant.lock_threshold)
    until = clock.next_midnight_jst().astimezone(clock.JST) if locked else None
    last = s.exec(_account_log(key).where(OperationLog.result.in_(NOT_OK))
                  .order_by(OperationLog.at.desc(), OperationLog.id.desc()).limit(1)).first()
    return LockState(failures, tenant.lock_threshold, until, last)


def consents(s, key: AccountKey) -> list[ConsentRow]:
    rows = s.exec(select(Consent, OAuthClient).join(OAuthClient, OAuthClient.client_id == Consent.client_id, isouter=True)
                  .where(Consent.tenant == key.tenant, Consent.branch == key.branch,
                         Consent.account_type == key.account_type, Consent.account_number == key.number)
                  .order_by(Consent.granted_at.desc(), Consent.id.desc())).all()
    now = clock.now()
    found = []
    for consent, client in rows:
        status = "解除済み" if consent.revoked_at else "期限切れ" if consent.expires_at <= now else "有効"
        found.append(ConsentRow(consent, client.name if client else consent.client_id,
                                client.operator if client else "", status))
    return found


def _account_log(key: AccountKey):
    return select(OperationLog).where(
        OperationLog.tenant == key.tenant, OperationLog.branch == key.branch,
        OperationLog.account_type == key.account_type, OperationLog.account_number == key.number)


def recent_log(s, key: AccountKey, limit: int = LOG_ROWS) -> list[OperationLog]:
    return list(s.exec(_account_log(key).order_by(OperationLog.at.desc(), OperationLog.id.desc()).limit(limit)))


def kana_name(key: AccountKey) -> tuple[str | None, bool]:
    """(the name in half-width kana or None when core banking does not know the account, reachable)."""
    try:
        found = core().account(key)
    except CoreUnavailable:
        return None, False
    return (getattr(found, "name_kana", None) if found is not None else None), True


def find_consent(s, tenant_id: str, key: AccountKey, consent_id: int) -> Consent | None:
    """The account's consent `consent_id`, only within this union and this account."""
    return s.exec(select(Consent).where(
        Consent.id == consent_id, Consent.tenant == tenant_id, Consent.branch == key.branch,
        Consent.account_type == key.account_type, Consent.account_number == key.number)).first()

