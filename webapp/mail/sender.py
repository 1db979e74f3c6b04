"""Sending: each outbox row is delivered once, retried with back-off while the mail server is down.

A sender takes one row at a time with one atomic UPDATE (webapp/deliveries.py, the rule every
outbox shares), so any number of senders in threads, processes or hosts never send the same row
twice; a sender that dies mid-send still counts the attempt, and its row comes back when the lease
expires.

- sent: `state = 'sent'`, `sent_at`.
- SMTP unreachable, timed out or a 4xx answer: `attempts + 1`, `next_attempt_at` = now + 1 min,
  2, 4, … capped at 1 h, `last_error` (exception class and SMTP reply, never credentials); the
  sender stops the run, the mail server being down for the others too.
- After MAIL_MAX_ATTEMPTS (20) attempts, or a 5xx refusal of the recipient (a mailbox that
  does not exist will never exist): `state = 'failed'`, logged as an error for staff.
- Still pending at its `send_before` (a reminder whose consent has ended): never taken by a
  sender, and `state = 'cancelled'` at the start of the next scheduled run (`send_pending`).

The mail server is behind transport.py's interface (SMTP in smtp.py, with a short timeout on every
socket operation; sandbox.py keeps the mails in memory): its `MailError` says whether a failure is
permanent and whether the link is down.

`kick(row)` after the consent's commit sends that one row once the response has gone out
(`Response.call_on_close`): the customer's redirect never waits for SMTP, and nothing runs in a
bare thread. The row is committed before, so if the process dies first, or SMTP is down, the row
simply stays pending for `flask mail send-pending` (run it every minute, e.g. from cron or a
scheduler). The rare case of a crash between the server's accepting a mail and the row being
marked sent delivers it twice, with the same Message-ID; nothing can do better over SMTP.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import after_this_request, current_app, has_request_context
from sqlalchemy import or_, update
from sqlmodel import Session

from .. import clock, db, deliveries
from .models import CANCELLED, PENDING, MailOutbox
from .transport import MailConnection, OutgoingMail, transport

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
LEASE_SECONDS = 300
backoff = deliveries.backoff
SendReport = deliveries.Report

MAIL_COLUMNS = (MailOutbox.sender, MailOutbox.recipient, MailOutbox.subject, MailOutbox.body, MailOutbox.message_id)


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=float(current_app.config.get("MAIL_CLAIM_LEASE_SECONDS", LEASE_SECONDS)))


def _not_overdue(now: dt.datetime):
    """A mail still worth sending: no `send_before`, or one still ahead."""
    return or_(MailOutbox.send_before.is_(None), MailOutbox.send_before > now)


def _claim(s: Session, only_id: int | None = None) -> deliveries.Claim | None:
    """Take the next due mail (or mail `only_id` if due) for this sender, in one statement. Commits."""
    return deliveries.claim_next(s, MailOutbox, MAIL_COLUMNS, lease=_lease(), only_id=only_id, also=_not_overdue)


def _outgoing(claim: deliveries.Claim) -> OutgoingMail:
    row = claim.row
    return OutgoingMail(sender=row.sender, recipient=row.recipient, subject=row.subject, body=row.body,
                        message_id=row.message_id)


def cancel_overdue() -> int:
    """Cancel the pending mails whose `send_before` has passed (a reminder of a consent that ended)."""
    with Session(db.engine()) as s:
        result = s.execute(update(MailOutbox)
                           .where(MailOutbox.state == PENDING, MailOutbox.send_before <= clock.now())
                           .values(state=CANCELLED, last_error="cancelled: past its send_before")
                           .execution_options(synchronize_session=False))
        s.commit()
        return result.rowcount


def _send(limit: int, only_id: int | None = None) -> SendReport:
    """Send up to `limit` due mails (or mail `only_id`). A mail past its `send_before` is never taken."""
    connection: MailConnection | None = None

    def deliver(claim: deliveries.Claim) -> None:
        nonlocal connection
        if connection is None:
            connection = transport().connect()
        connection.send(_outgoing(claim))

    try:
        return deliveries.deliver_due(
            MailOutbox, MAIL_COLUMNS, deliver, lease=_lease(), limit=limit, only_id=only_id, log=log,
            max_attempts=int(current_app.config.get("MAIL_MAX_ATTEMPTS", MAX_ATTEMPTS)), also=_not_overdue)
    finally:
        if connection is not None:
            connection.close()


def send_pending(limit: int = 50) -> SendReport:
    """Cancel the overdue mails, then send up to `limit` due mails (inside an app context). Safe to
    run in parallel anywhere."""
    cancel_overdue()
    return _send(limit)


def send_one(outbox_id: int) -> SendReport:
    """Send this one mail if it is due, not overdue and nobody holds it. Cancelling overdue mails is
    the scheduled run's work (`send_pending`): the mail sent right after ⑥ costs no write for it."""
    return _send(1, only_id=outbox_id)


def kick(outbox: MailOutbox | int) -> None:
    """Send `outbox` soon, after the consent's commit, without making the response wait.

    In a request: once the response has gone out (in tests: when the response is closed, e.g.
    `with client.post(...) as r:`). Outside one (CLI, scripts): now. Never raises: a row that could
    not be sent stays pending for `flask mail send-pending`.
    """
    outbox_id = outbox if isinstance(outbox, int) else outbox.id
    app = current_app._get_current_object()

    def send_quietly() -> None:
        try:
            with app.app_context():
                send_one(outbox_id)
        except Exception:  # noqa: BLE001 - the row stays pending; the scheduled run retries it
            log.exception("mail %s: immediate send failed; left for send-pending", outbox_id)

    if not has_request_context():
        send_quietly()
        return

    @after_this_request
    def send_after_response(response):
        response.call_on_close(send_quietly)
        return response
