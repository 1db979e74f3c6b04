"""Queueing: the completion mail is an outbox row added in the consent's own transaction, and so is
the notice of a link the customer ended on 連携中のアプリ (in the revocation's transaction).

So the consent and its mail commit or roll back together, and a retry of the consent finds the row
already there (unique flow_id, kind and consent_id, INSERT … ON CONFLICT DO NOTHING) instead of
queueing a second one. The expiry reminder (reminders.py) is queued the same way, once per flow.
The notice names the app and its operator, the masked account (last 3 digits only), the 認可期間 in
JST and how to revoke; it never carries the PIN or the phone number (the flow row holds no PIN,
and the template is given no phone but the union's).
"""
from __future__ import annotations

import datetime as dt
from email.utils import make_msgid, parseaddr
from typing import TYPE_CHECKING

from flask import current_app, render_template
from sqlalchemy import bindparam
from sqlmodel import Session, select

from .. import clock, db, tenants
from .models import PENDING, MailOutbox

if TYPE_CHECKING:  # pragma: no cover
    from ..flow.models import Flow
    from ..oauth.models import Consent, OAuthClient
    from ..tenants import Tenant

KIND_CONSENT_COMPLETED = "consent_completed"
KIND_CONSENT_EXPIRING = "consent_expiring"
KIND_CONSENT_REVOKED = "consent_revoked"


def mask_account_number(number: str) -> str:
    """`1100026` → `****026`: the notice shows only the last 3 digits."""
    return "*" * max(len(number) - 3, 0) + number[-3:]


def format_jst(at: dt.datetime) -> str:
    local = clock.as_utc(at).astimezone(clock.JST)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def consent_days(consent: "Consent") -> int:
    seconds = (clock.as_utc(consent.expires_at) - clock.as_utc(consent.granted_at)).total_seconds()
    return round(seconds / 86400)


def links_url(tenant: "Tenant") -> str:
    """Where the customer sees and ends their links (CONTRACT §10)."""
    return f"{current_app.config['BASE_URL']}/{tenant.id}/my/links"


def _compose(name: str, *, tenant: "Tenant", flow: "Flow", consent: "Consent", client: "OAuthClient",
             **extra) -> tuple[str, str]:
    """(subject, body) of the notice `name`, from the union's `mail/<name>_subject.txt` and `_body.txt`
    (overridable per union)."""
    context = dict(
        tenant=tenant, contact=tenant.contact, client_name=client.name, operator=client.operator,
        branch=consent.branch, account_type_name=tenant.account_type_name(consent.account_type) or "",
        masked_number=mask_account_number(consent.account_number or ""),
        granted=format_jst(consent.granted_at), expires=format_jst(consent.expires_at),
        days=consent_days(consent), links_url=links_url(tenant), **extra,
    )
    names = tenants.themes(tenant)  # the union's override of each found once, not searched for each mail
    subject = render_template(names[f"mail/{name}_subject.txt"], **context)
    body = render_template(names[f"mail/{name}_body.txt"], **context)
    return " ".join(subject.split()), body.strip("\n") + "\n"


def compose_completion(*, tenant: "Tenant", flow: "Flow", consent: "Consent", client: "OAuthClient") -> tuple[str, str]:
    """(subject, body) of the completion notice."""
    return _compose("completion", tenant=tenant, flow=flow, consent=consent, client=client)


def compose_reminder(*, tenant: "Tenant", flow: "Flow", consent: "Consent", client: "OAuthClient") -> tuple[str, str]:
    """(subject, body) of the reminder that the consent ends soon: which app, when, how to renew."""
    return _compose("reminder", tenant=tenant, flow=flow, consent=consent, client=client)


def compose_revocation(*, tenant: "Tenant", flow: "Flow", consent: "Consent", client: "OAuthClient") -> tuple[str, str]:
    """(subject, body) of the notice that the customer ended a link on 連携中のアプリ."""
    return _compose("revoked", tenant=tenant, flow=flow, consent=consent, client=client,
                    revoked=format_jst(consent.revoked_at or clock.now()))


def _queue(session: Session, *, kind: str, tenant: "Tenant", flow: "Flow", consent: "Consent",
           message: tuple[str, str], send_before: dt.datetime | None = None) -> MailOutbox | None:
    """Add one mail of `kind` about `flow` and `consent` to `session`'s transaction, unless there is
    one already. The row this call added (detached, as written), or None when there was one."""
    subject, body = message
    now = clock.now()
    domain = parseaddr(tenant.mail_sender)[1].rpartition("@")[2] or tenant.mail_domain or None
    values = dict(tenant=tenant.id, flow_id=flow.id, consent_id=consent.id, kind=kind,
                  sender=tenant.mail_sender, recipient=flow.email, subject=subject, body=body,
                  message_id=make_msgid(domain=domain), state=PENDING, attempts=0, next_attempt_at=now,
                  created_at=now, send_before=send_before)
    connection = session.connection()
    added = connection.execute(_QUEUE.on(connection), values).first()
    if added is None:
        return None
    row = {**{k: None for k in _OUTBOX_KEYS}, **values, "id": added.id}
    return db.detached(MailOutbox, _OUTBOX_KEYS, [row[k] for k in _OUTBOX_KEYS])


def _queue_notice(session: Session, kind: str, compose, *, tenant: "Tenant", flow: "Flow", consent: "Consent",
                  client: "OAuthClient", message: tuple[str, str] | None = None) -> MailOutbox:
    """Queue the notice `kind` once and return its row (the one already queued, unchanged, on a retry).
    `message`: the (subject, body) `compose` gave for these rows, if the caller composed it already."""
    if not flow.email:
        raise ValueError("the flow has no mail address (screen ② stores it)")
    session.flush()  # the flow and consent rows get their ids inside the caller's transaction
    if message is None:
        message = compose(tenant=tenant, flow=flow, consent=consent, client=client)
    added = _queue(session, kind=kind, tenant=tenant, flow=flow, consent=consent, message=message)
    if added is not None:
        return added
    row = session.connection().execute(_QUEUED, {"flow_id": flow.id, "kind": kind, "consent_id": consent.id}).one()
    return db.detached(MailOutbox, _OUTBOX_KEYS, row)


# Built once: the INSERT that queues a mail unless its (flow, kind, consent) is queued already, giving
# back the new row's id, and the SELECT of the row already there (made into a detached object).
_OUTBOX, _OUTBOX_KEYS = MailOutbox.__table__, db.column_keys(MailOutbox)
_QUEUE = db.PerDialect(lambda insert: insert(_OUTBOX).on_conflict_do_nothing(
    index_elements=["flow_id", "kind", "consent_id"]).returning(_OUTBOX.c.id))
_QUEUED = select(*db.columns(MailOutbox, _OUTBOX_KEYS)).where(
    _OUTBOX.c.flow_id == bindparam("flow_id"), _OUTBOX.c.kind == bindparam("kind"),
    _OUTBOX.c.consent_id == bindparam("consent_id"))


def queue_completion_mail(session: Session, *, tenant: "Tenant", flow: "Flow", consent: "Consent",
                          client: "OAuthClient", message: tuple[str, str] | None = None) -> MailOutbox:
    """Add the completion mail of `flow` to `session`'s transaction (flushes, never commits).

    Queueing the same flow again returns the row already queued, unchanged. `message`: the mail as
    compose_completion gave it for this consent, when composed before the transaction (⑥ does, so
    that its templates do not run while it holds SQLite's write gate).
    """
    return _queue_notice(session, KIND_CONSENT_COMPLETED, compose_completion, tenant=tenant, flow=flow,
                         consent=consent, client=client, message=message)


def queue_revocation_mail(session: Session, *, tenant: "Tenant", flow: "Flow", consent: "Consent",
                          client: "OAuthClient") -> MailOutbox:
    """Add the notice that `consent` was ended in the links session `flow` (to the address given at ②
    of that session) to `session`'s transaction (flushes, never commits); once per consent and flow."""
    return _queue_notice(session, KIND_CONSENT_REVOKED, compose_revocation, tenant=tenant, flow=flow,
                         consent=consent, client=client)


def queue_reminder_mail(session: Session, *, tenant: "Tenant", flow: "Flow", consent: "Consent",
                        client: "OAuthClient") -> bool:
    """Add the expiry reminder of `consent` (sent to the address given at ②) to `session`'s
    transaction, at most once per flow; it is cancelled if still unsent when the consent ends."""
    return _queue(session, kind=KIND_CONSENT_EXPIRING, tenant=tenant, flow=flow, consent=consent,
                  message=compose_reminder(tenant=tenant, flow=flow, consent=consent, client=client),
                  send_before=consent.expires_at) is not None
