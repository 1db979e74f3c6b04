"""Expiry reminders: seven days before a consent ends, a mail to the address given at ②.

`queue_expiry_reminders()` (run by the mail worker before each send, and by `flask mail remind`)
finds the consents that end within `REMIND_DAYS_BEFORE` days and queues one reminder each in the
mail outbox, which sends it with the completion mail's guarantees. A consent is reminded once: the
outbox row is unique per flow and kind (INSERT … ON CONFLICT DO NOTHING), so parallel scans queue
it once. Never reminded: a revoked or ended consent, one whose app is no longer registered, and one
the customer has already renewed (a later live consent of the same app and account). A reminder
still unsent when its consent is revoked or ends is cancelled (`cancel_reminder`, `send_before`).
"""
from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import and_, exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from .. import clock, db
from ..flow.models import Flow
from ..oauth.models import Consent, OAuthClient
from .models import CANCELLED, PENDING, MailOutbox
from .outbox import KIND_CONSENT_EXPIRING, queue_reminder_mail

REMIND_DAYS_BEFORE = 7


def _reminder_due(now: dt.datetime):
    renewal = aliased(Consent)
    renewed = exists().where(
        renewal.tenant == Consent.tenant, renewal.client_id == Consent.client_id, renewal.branch == Consent.branch,
        renewal.account_type == Consent.account_type, renewal.account_number == Consent.account_number,
        renewal.revoked_at.is_(None), renewal.expires_at > Consent.expires_at)
    reminded = exists().where(MailOutbox.flow_id == Consent.flow_id, MailOutbox.kind == KIND_CONSENT_EXPIRING)
    return and_(Consent.revoked_at.is_(None), Consent.expires_at > now,
                Consent.expires_at <= now + dt.timedelta(days=REMIND_DAYS_BEFORE),
                Flow.email.is_not(None), OAuthClient.revoked_at.is_(None), ~renewed, ~reminded)


def queue_expiry_reminders(limit: int = 500) -> int:
    """Queue the reminders that are due (inside an app context); returns how many this call queued."""
    tenants = current_app.extensions["tenants"]
    queued = 0
    with Session(db.engine(), expire_on_commit=False) as s:
        rows = s.exec(
            select(Consent, Flow, OAuthClient)
            .join(Flow, Flow.id == Consent.flow_id)
            .join(OAuthClient, OAuthClient.client_id == Consent.client_id)
            .where(_reminder_due(clock.now()))
            .order_by(Consent.expires_at, Consent.id).limit(limit)).all()
        for consent, flow, client in rows:
            tenant = tenants.get(consent.tenant)
            if tenant is not None and queue_reminder_mail(s, tenant=tenant, flow=flow, consent=consent, client=client):
                queued += 1
        s.commit()
    return queued


def cancel_reminder(s: Session, consent_id: int) -> None:
    """The consent has ended: its reminder, if not sent yet, never will be (in the caller's transaction)."""
    s.execute(update(MailOutbox)
              .where(MailOutbox.consent_id == consent_id, MailOutbox.kind == KIND_CONSENT_EXPIRING,
                     MailOutbox.state == PENDING)
              .values(state=CANCELLED, last_error="cancelled: the consent was revoked")
              .execution_options(synchronize_session=False))
