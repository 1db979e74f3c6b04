"""Identity checks under the account's lock, shared by ② (birth date, phone) and ⑤ (PIN).

Each check first reserves a lockout slot atomically (webapp/lockout.py), so ② and ⑤ count toward
the same lock; one per-IP budget covers both screens.
"""
from __future__ import annotations

from flask import current_app, g

from .. import db, lockout, messages, oplog
from ..corebanking import AccountCheck, AccountKey, CoreUnavailable
from ..extensions import limiter


def account_key(flow) -> AccountKey:
    return AccountKey(flow.tenant, flow.branch, flow.account_type, flow.account_number)


def identity_limit() -> str:
    return current_app.config["IDENTITY_CHECKS_PER_IP"]


# ② and ⑤ share one per-IP budget: one address trying PINs or birth dates across many accounts
# (the reverse brute force of SECURITY.md) is stopped whichever screen it uses.
identity_checks_per_ip = limiter.shared_limit(identity_limit, scope="identity", methods=["POST"])


def check_with_lockout(flow, screen_id: str, event: str, check, *, completes_authentication: bool = False):
    """Run one identity `check` (a callable returning AccountCheck) under the account's lock.

    Returns (AccountCheck or None, alert) where alert is the message to show, if any.
    Shared by ② and ⑤: both count toward the same lock. Only the check that completes the
    authentication (⑤) resets the count (SPEC §3); a passed ② merely gives back its own slot, so
    a PIN guesser who knows the birth date and phone gains no tries by starting new flows.
    """
    key = account_key(flow)
    s = db.session()
    attempt = lockout.reserve_attempt(s, key, g.tenant.lock_threshold)
    if not attempt.allowed:
        oplog.record(s, tenant=flow.tenant, screen=screen_id, event=event, result="locked", flow=flow, detail="B84")
        s.commit()
        return None, {"message": messages.LOCKED, "reason": messages.LOCKED_REASON}
    try:
        result = check(key)
    except CoreUnavailable:
        lockout.refund(s, key)
        oplog.record(s, tenant=flow.tenant, screen=screen_id, event=event, result="error", flow=flow,
                     detail="core_unavailable")
        s.commit()
        raise
    if result is AccountCheck.OK:
        if completes_authentication:
            lockout.record_success(s, key)
        else:
            lockout.refund(s, key)
        oplog.record(s, tenant=flow.tenant, screen=screen_id, event=event, result="ok", flow=flow)
        s.commit()
        return result, None
    if result is AccountCheck.NOT_SERVICEABLE:
        lockout.refund(s, key)
        oplog.record(s, tenant=flow.tenant, screen=screen_id, event=event, result="fail", flow=flow,
                     detail="not_serviceable")
        s.commit()
        return result, {"message": messages.ACCOUNT_NOT_SERVICEABLE}
    locked_now = attempt.locks_if_failed
    oplog.record(s, tenant=flow.tenant, screen=screen_id, event=event, result="fail", flow=flow,
                 detail=f"mismatch {attempt.failures}/{attempt.threshold}" + (" locked" if locked_now else ""))
    s.commit()
    return result, {"message": messages.LOCKED_NOW if locked_now else messages.IDENTITY_MISMATCH}
