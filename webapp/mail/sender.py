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

`kick(row)` after the consent's commit queues that one row once the response has gone out
(`Response.call_on_close`) for the process's sender thread (courier.py), which sends the rows
queued together over one connection: neither the customer's redirect nor the worker's request
threads ever wait for SMTP. The row is committed before, so if the process dies first, the queue
is full, or SMTP is down, the row simply stays pending for `flask mail send-pending` (run it every
minute, e.g. from cron or a scheduler). The rare case of a crash between the server's accepting a
mail and the row being marked sent delivers it twice, with the same Message-ID; nothing can do
better over SMTP.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Sequence

from flask import Flask, after_this_request, current_app, has_request_context
from sqlalchemy import or_, update
from sqlalchemy.engine import Connection
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


def _claim(conn: Connection, only_id: int | None = None) -> deliveries.Claim | None:
    """Take the next due mail (or mail `only_id` if due) for this sender, in one statement. Commits."""
    return deliveries.claim_next(conn, MailOutbox, MAIL_COLUMNS, lease=_lease(), only_id=only_id, also=_not_overdue)


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


def _send(limit: int, only_ids: Sequence[int] = ()) -> SendReport:
    """Send up to `limit` due mails (or, given `only_ids`, each of these mails that is due) over one
    connection. A mail past its `send_before` is never taken; a link found down ends the run."""
    connection: MailConnection | None = None

    def deliver(claim: deliveries.Claim) -> None:
        nonlocal connection
        if connection is None:
            connection = transport().connect()
        connection.send(_outgoing(claim))

    max_attempts = int(current_app.config.get("MAIL_MAX_ATTEMPTS", MAX_ATTEMPTS))
    try:
        return deliveries.deliver_due(MailOutbox, MAIL_COLUMNS, deliver, lease=_lease(), limit=limit, only_ids=only_ids,
                                      log=log, max_attempts=max_attempts, also=_not_overdue)
    finally:
        if connection is not None:
            connection.close()


def send_pending(limit: int = 50) -> SendReport:
    """Cancel the overdue mails, then send up to `limit` due mails (inside an app context). Safe to
    run in parallel anywhere."""
    cancel_overdue()
    return _send(limit)


def send_these(outbox_ids: Sequence[int]) -> SendReport:
    """Send each of these mails that is due, not overdue and held by nobody, over one connection.
    Cancelling overdue mails is the scheduled run's work (`send_pending`): the mail sent right after
    ⑥ costs no write for it."""
    return _send(1, outbox_ids)


def kick(outbox: MailOutbox | int) -> None:
    """Send `outbox` soon, after the consent's commit, without making the response wait.

    In a request: once the response has gone out (in tests: when the response is closed, e.g.
    `with client.post(...) as r:`), the row goes on the process's send queue and its sender thread
    sends it (courier.py: no request thread ever waits on the mail server). Outside one (CLI,
    scripts): now, in this thread. Never raises: a row that could not be sent stays pending for
    `flask mail send-pending`.
    """
    outbox_id = outbox if isinstance(outbox, int) else outbox.id
    app = current_app._get_current_object()
    if not has_request_context():
        send_quietly(app, [outbox_id])
        return

    @after_this_request
    def send_after_response(response):
        courier = app.extensions["mail_courier"]
        response.call_on_close(lambda: courier.put(outbox_id))
        return response


def send_quietly(app: Flask, outbox_ids: Sequence[int]) -> None:
    """`send_these` in `app`'s context, logging instead of raising: the rows stay pending."""
    try:
        with app.app_context():
            send_these(outbox_ids)
    except Exception:  # noqa: BLE001 - the rows stay pending; the scheduled run retries them
        log.exception("mails %s: immediate send failed; left for send-pending", list(outbox_ids))
