"""Sending: each outbox row is delivered once, retried with back-off while the mail server is down.

A sender takes a row with one atomic statement (`UPDATE … SET claimed_until = now + lease …
WHERE state = 'pending' AND next_attempt_at <= now AND (claimed_until IS NULL OR claimed_until <=
now) … RETURNING`; PostgreSQL adds `FOR UPDATE SKIP LOCKED`), so any number of senders in threads,
processes or hosts never send the same row twice. Rows are taken one at a time, so a claim never
outlives its lease while other messages are being sent. The attempt is counted when the row is
taken, so a sender that dies mid-send still counts it; its row comes back when the lease expires.

- sent: `state = 'sent'`, `sent_at`.
- SMTP unreachable, timed out or a 4xx answer: `attempts + 1`, `next_attempt_at` = now + 1 min,
  2, 4, … capped at 1 h, `last_error` (exception class and SMTP reply, never credentials); the
  sender stops the run, the mail server being down for the others too.
- After MAIL_MAX_ATTEMPTS (20) attempts, or a 5xx refusal of the recipient (a mailbox that
  does not exist will never exist): `state = 'failed'`, logged as an error for staff.

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

import dataclasses
import datetime as dt
import logging
import secrets

from flask import after_this_request, current_app, has_request_context
from sqlalchemy import and_, or_, update
from sqlmodel import Session, select

from .. import clock, db
from .models import FAILED, PENDING, SENT, MailOutbox
from .transport import MailConnection, MailError, OutgoingMail, transport

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
LEASE_SECONDS = 300
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)


@dataclasses.dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0  # failed this time, will be tried again
    failed: int = 0  # given up

    def __str__(self) -> str:
        return f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}"


def backoff(attempts: int) -> dt.timedelta:
    """Delay after the `attempts`-th failed attempt: 1 min, 2, 4, … at most 1 h."""
    return min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 16), LONGEST_RETRY)


def _due(now: dt.datetime):
    return and_(MailOutbox.state == PENDING, MailOutbox.next_attempt_at <= now,
                or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until <= now))


@dataclasses.dataclass(frozen=True)
class _Claim:
    """A row this sender holds: its id, the claim's token, its attempts so far and the mail itself."""

    id: int
    token: str
    attempts: int
    mail: OutgoingMail


def _claim(s: Session, only_id: int | None = None) -> _Claim | None:
    """Take the next due row (or row `only_id` if due) for this sender, in one statement. Commits."""
    now = clock.now()
    lease = dt.timedelta(seconds=float(current_app.config.get("MAIL_CLAIM_LEASE_SECONDS", LEASE_SECONDS)))
    token = secrets.token_hex(16)
    pick = select(MailOutbox.id).where(_due(now))
    if only_id is not None:
        pick = pick.where(MailOutbox.id == only_id)
    pick = pick.order_by(MailOutbox.next_attempt_at, MailOutbox.id).limit(1).with_for_update(skip_locked=True)
    # `id = (sub-select)`, not `id IN (…)`: PostgreSQL runs a scalar sub-select once (an InitPlan);
    # under IN it may rescan it per row, locking and taking a further row each time. The due condition
    # is repeated outside it: PostgreSQL re-checks that on a row a concurrent claim just updated.
    stmt = (
        update(MailOutbox)
        .where(MailOutbox.id == pick.scalar_subquery(), _due(now))
        .values(claimed_until=now + lease, claim_token=token, attempts=MailOutbox.attempts + 1)
        .returning(MailOutbox.id, MailOutbox.attempts, MailOutbox.sender, MailOutbox.recipient,
                   MailOutbox.subject, MailOutbox.body, MailOutbox.message_id)
        .execution_options(synchronize_session=False)
    )
    row = s.execute(stmt).first()
    s.commit()
    if row is None:
        return None
    return _Claim(id=row.id, token=token, attempts=row.attempts,
                  mail=OutgoingMail(sender=row.sender, recipient=row.recipient, subject=row.subject,
                                    body=row.body, message_id=row.message_id))


def _finish(s: Session, claim: _Claim, **values) -> bool:
    """Record the outcome of our own claim; False when the lease was lost to another sender."""
    result = s.execute(
        update(MailOutbox)
        .where(MailOutbox.id == claim.id, MailOutbox.claim_token == claim.token, MailOutbox.state == PENDING)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    s.commit()
    return result.rowcount == 1


def _record_failure(s: Session, claim: _Claim, error: MailError, report: SendReport) -> None:
    now = clock.now()
    max_attempts = int(current_app.config.get("MAIL_MAX_ATTEMPTS", MAX_ATTEMPTS))
    give_up = error.permanent or claim.attempts >= max_attempts
    values = dict(last_error=error.description, next_attempt_at=now + backoff(claim.attempts))
    if give_up:
        values["state"] = FAILED
    if not _finish(s, claim, **values):
        log.warning("mail %s: lease lost before the failure was recorded", claim.id)
        return
    if give_up:
        report.failed += 1
        log.error("mail %s given up after %s attempt(s): %s", claim.id, claim.attempts, values["last_error"])
    else:
        report.retrying += 1
        log.warning("mail %s attempt %s failed, next at %s: %s", claim.id, claim.attempts,
                    values["next_attempt_at"].isoformat(), values["last_error"])


def _send(limit: int, only_id: int | None = None) -> SendReport:
    report = SendReport()
    connection: MailConnection | None = None
    with Session(db.engine(), expire_on_commit=False) as s:
        try:
            for _ in range(limit):
                claim = _claim(s, only_id)
                if claim is None:
                    break
                try:
                    if connection is None:
                        connection = transport().connect()
                    connection.send(claim.mail)
                except MailError as error:
                    _record_failure(s, claim, error, report)
                    if error.link_down:
                        break
                    continue
                if not _finish(s, claim, state=SENT, sent_at=clock.now(), last_error=None):
                    log.warning("mail %s: sent after its lease had expired; another sender may resend it", claim.id)
                report.sent += 1
        finally:
            if connection is not None:
                connection.close()
    return report


def send_pending(limit: int = 50) -> SendReport:
    """Send up to `limit` due mails (inside an app context). Safe to run in parallel anywhere."""
    return _send(limit)


def send_one(outbox_id: int) -> SendReport:
    """Send this one mail if it is due and nobody holds it."""
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
