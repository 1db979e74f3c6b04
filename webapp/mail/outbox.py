"""Queueing: the completion mail is an outbox row added in the consent's own transaction.

So the consent and its mail commit or roll back together, and a retry of the consent finds the row
already there (unique flow_id, INSERT … ON CONFLICT DO NOTHING) instead of queueing a second one.
The notice names the app and its operator, the masked account (last 3 digits only), the 認可期間 in
JST and how to revoke; it never carries the PIN or the phone number (the flow row holds no PIN,
and the template is given no phone but the union's).
"""
from __future__ import annotations

import datetime as dt
from email.utils import make_msgid, parseaddr
from typing import TYPE_CHECKING

from flask import render_template
from sqlmodel import Session, select

from .. import clock, db
from .models import PENDING, MailOutbox

if TYPE_CHECKING:  # pragma: no cover
    from ..flow.models import Flow
    from ..oauth.models import Consent, OAuthClient
    from ..tenants import Tenant

KIND_CONSENT_COMPLETED = "consent_completed"


def mask_account_number(number: str) -> str:
    """`1100026` → `****026`: the notice shows only the last 3 digits."""
    return "*" * max(len(number) - 3, 0) + number[-3:]


def format_jst(at: dt.datetime) -> str:
    local = clock.as_utc(at).astimezone(clock.JST)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def consent_days(consent: "Consent") -> int:
    seconds = (clock.as_utc(consent.expires_at) - clock.as_utc(consent.granted_at)).total_seconds()
    return round(seconds / 86400)


def compose_completion(*, tenant: "Tenant", flow: "Flow", consent: "Consent", client: "OAuthClient") -> tuple[str, str]:
    """(subject, body) of the completion notice, from the union's templates (overridable per union)."""
    context = dict(
        tenant=tenant, contact=tenant.contact, client_name=client.name, operator=client.operator,
        branch=flow.branch, account_type_name=tenant.account_type_name(flow.account_type) or "",
        masked_number=mask_account_number(flow.account_number or ""),
        granted=format_jst(consent.granted_at), expires=format_jst(consent.expires_at),
        days=consent_days(consent),
    )
    subject = render_template(tenant.templates("mail/completion_subject.txt"), **context)
    body = render_template(tenant.templates("mail/completion_body.txt"), **context)
    return " ".join(subject.split()), body.strip("\n") + "\n"


def queue_completion_mail(session: Session, *, tenant: "Tenant", flow: "Flow", consent: "Consent",
                          client: "OAuthClient") -> MailOutbox:
    """Add the completion mail of `flow` to `session`'s transaction (flushes, never commits).

    Queueing the same flow again returns the row already queued, unchanged.
    """
    if not flow.email:
        raise ValueError("the flow has no mail address (screen ② stores it)")
    session.flush()  # the flow and consent rows get their ids inside the caller's transaction
    subject, body = compose_completion(tenant=tenant, flow=flow, consent=consent, client=client)
    now = clock.now()
    domain = parseaddr(tenant.mail_sender)[1].rpartition("@")[2] or tenant.mail_domain or None
    db.insert_or_ignore(
        session, MailOutbox.__table__,
        dict(tenant=tenant.id, flow_id=flow.id, consent_id=consent.id, kind=KIND_CONSENT_COMPLETED,
             sender=tenant.mail_sender, recipient=flow.email, subject=subject, body=body,
             message_id=make_msgid(domain=domain), state=PENDING, attempts=0, next_attempt_at=now,
             created_at=now),
        ["flow_id"],
    )
    return session.exec(select(MailOutbox).where(MailOutbox.flow_id == flow.id)).one()
