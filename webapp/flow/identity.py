"""Identity checks under the account's lock, shared by ② (birth date, phone) and ⑤ (PIN).

Each check first takes a slot of the address's, the app's and the union's budgets
(webapp/budgets.py) and of the account's lock (webapp/lockout.py), each atomically, before core
banking is asked; so ② and ⑤ count toward the same lock and budgets. On SQLite the two are one
transaction; on PostgreSQL the budgets' statement is a transaction of its own, so the union's row,
which every check writes, is not held locked across the lock's and the flow's round trips.
"""
from __future__ import annotations

import logging
import time

from flask import current_app, g, request
from werkzeug.exceptions import TooManyRequests

from .. import budgets, db, lockout, messages
from ..corebanking import AccountCheck, AccountKey, CoreUnavailable
from . import state
from .steps import log_step

log = logging.getLogger("renkei.security")


def account_key(flow) -> AccountKey:
    return AccountKey(flow.tenant, flow.branch, flow.account_type, flow.account_number)


def standing_lock(flow) -> dict | None:
    """The lock screen (B84) for an account locked already, so a locked customer is not offered the
    form again (② and ⑤ on GET); None when it is not locked."""
    if lockout.is_locked_read(account_key(flow), g.tenant.lock_threshold):
        return messages.lock_alert(just_locked=False)
    return None


def check_with_lockout(flow, event: str, check, *, completes_authentication: bool = False,
                       entries: dict | None = None):
    """Run one identity `check` (a callable returning AccountCheck) under the account's lock.

    Returns (AccountCheck or None, alert) where alert is the message to show, if any. Every
    outcome is logged as `event` on the screen of the step the flow is at.
    Shared by ② and ⑤: both count toward the same lock. Only the check that completes the
    authentication (⑤) resets the count (SPEC §3); a passed ② merely gives back its own slot, so
    a PIN guesser who knows the birth date and phone gains no tries by starting new flows.

    `entries` (②: the name and email) are saved on the flow with the reserved slots, in their
    transaction. A passed check leaves its writes (the slots given back, the log row) pending: the
    caller's `finish_step` commits them with the step's move, in one transaction (on PostgreSQL the
    slots are given back at once, by a statement of their own: budgets.give_back).
    """
    started = request.environ.get(STARTED_AT, time.monotonic())
    request.environ[ANSWER_AT] = started + float(current_app.config["IDENTITY_CHECK_SECONDS"])
    key = account_key(flow)
    s = db.session()
    spending = budgets.identity_budgets(current_app.config, tenant=flow.tenant,
                                        client_id=flow.client_id or flow.purpose,
                                        address=request.remote_addr or "")
    spent = budgets.reserve(s, spending)
    if spent is not None:  # rolled back: nothing reserved
        if entries:
            state.touch(flow, commit=False, **entries)
        log.warning("identity check refused: %s budget spent (%s)", spent.name, spent.key)
        log_step(flow, event, "refused", detail=f"budget {spent.name}")
        raise TooManyRequests()
    # Budgets, lock, then the flow row: the order every transaction here takes them in (no deadlock;
    # on PostgreSQL the budgets' rows are locked only by statements of their own, holding nothing else).
    attempt = lockout.reserve_attempt(s, key, g.tenant.lock_threshold)
    if entries:
        state.touch(flow, commit=False, **entries)
    s.commit()  # the slots are taken before core banking is asked
    if not attempt.allowed:
        log_step(flow, event, "locked", detail="B84")
        return None, messages.lock_alert(just_locked=False)
    try:
        result = check(key)
    except CoreUnavailable:
        lockout.refund(s, key)
        budgets.give_back(s, spending)
        log_step(flow, event, "error", detail="core_unavailable")
        raise
    if result is AccountCheck.OK:
        budgets.give_back(s, spending)
        if completes_authentication:
            lockout.record_success(s, key)
        else:
            lockout.refund(s, key)
        log_step(flow, event, "ok", commit=False)
        return result, None
    if result is AccountCheck.NOT_SERVICEABLE:
        lockout.refund(s, key)
        log_step(flow, event, "fail", detail="not_serviceable")
        return result, {"message": messages.ACCOUNT_NOT_SERVICEABLE}
    locked_now = attempt.locks_if_failed
    log_step(flow, event, "fail", commit=False,
             detail=f"mismatch {attempt.failures}/{attempt.threshold}" + (" locked" if locked_now else ""))
    if locked_now:
        # Anyone who knows an account number can lock it for the day (ASVS 6.1.1): staff see who
        # did, per address, with `flask locks report`.
        log_step(flow, lockout.LOCKED_EVENT, "locked", detail="B84", commit=False)
        log.warning("account locked until midnight JST: %s %s-%s-%s by address %s", flow.tenant, key.branch,
                    key.account_type, key.number, request.remote_addr)
    s.commit()
    return result, messages.lock_alert(just_locked=True) if locked_now else {"message": messages.IDENTITY_MISMATCH}


STARTED_AT = "renkei.started_at"  # WSGI environ keys: when the request came in,
ANSWER_AT = "renkei.identity_answer_at"  # and when an identity check's answer may leave


class ConstantTimeAnswers:
    """WSGI middleware: every answer to an identity check leaves IDENTITY_CHECK_SECONDS after the
    request came in, whatever the outcome: an unknown account (No.1, a redirect to ①), a mismatch
    (No.2, ② again), a lock or a spent budget. It waits after the whole response is built (template,
    commit, session cookie), so no difference in that work shows. Timing then tells a scanner
    nothing the budgets do not already let it ask; each answer costs a check of the budgets."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED_AT] = time.monotonic()
        body = self.wsgi_app(environ, start_response)
        answer_at = environ.get(ANSWER_AT)
        if answer_at is not None:
            time.sleep(max(0.0, answer_at - time.monotonic()))
        return body
