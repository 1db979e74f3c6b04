"""② SOA202 お客様情報入力: who you are, checked against the core banking record.

Birth date and phone are checked; the name only goes to the operation log (FAQ 2-Q4) and the
email only receives the completion notice (FAQ 2-Q5). Each check first reserves a lockout slot.
"""
from __future__ import annotations

import phonenumbers
from flask import current_app, flash, g, url_for

from .. import db, lockout, messages, oplog
from ..corebanking import AccountCheck, AccountKey, CoreUnavailable, core
from ..extensions import limiter
from .forms import CustomerForm, missing_required
from .render import go, screen
from .state import NEXT, advance, flow_step, touch
from .views import bp


def account_key(flow) -> AccountKey:
    return AccountKey(flow.tenant, flow.branch, flow.account_type, flow.account_number)


def identity_limit() -> str:
    return current_app.config["IDENTITY_CHECKS_PER_IP"]


# ② and ⑤ share one per-IP budget: one address trying PINs or birth dates across many accounts
# (the reverse brute force of SECURITY.md) is stopped whichever screen it uses.
identity_checks_per_ip = limiter.shared_limit(identity_limit, scope="identity", methods=["POST"])


def check_with_lockout(flow, screen_id: str, event: str, check):
    """Run one identity `check` (a callable returning AccountCheck) under the account's lock.

    Returns (AccountCheck or None, alert) where alert is the message to show, if any.
    Shared by ② and ⑤: both count toward the same lock.
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
        lockout.record_success(s, key)
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


def e164(national: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(national, "JP"), phonenumbers.PhoneNumberFormat.E164)


@bp.route("/customer", methods=["GET", "POST"])
@flow_step("customer")
@identity_checks_per_ip
def customer():
    flow = g.flow
    form = CustomerForm()
    alert = None
    if form.validate_on_submit():
        touch(flow, name_kana=form.name_kana.data, email=form.email.data)
        result, alert = check_with_lockout(
            flow, "SOA202", "identity_check",
            lambda key: core().check_identity(key, form.birth_date, form.phone.data).check)
        if result is AccountCheck.OK:
            advance(flow, NEXT["customer"], phone_e164=e164(form.phone.data))
            return go(url_for("flow.phone"))
        if result is AccountCheck.NOT_SERVICEABLE:
            # The account itself is wrong: back to ① with the message, the entries kept.
            advance(flow, "account")
            flash(alert["message"], "alert")
            return go(url_for("flow.account"))
    return screen("customer", "customer_form", form=form, flow=flow,
                  account_type_name=g.tenant.account_type_name(flow.account_type),
                  missing=missing_required(form), alert=alert)
