"""Outbox rows delivered once, retried with back-off: the rule shared by every outbox (mail, webhooks).

An outbox table has the columns `state` (pending | sent | failed | cancelled), `attempts`,
`next_attempt_at`, `claimed_until`, `claim_token`, `last_error` and `sent_at`. A worker takes a row
with one atomic statement (`UPDATE … SET claimed_until = now + lease … WHERE state = 'pending' AND
next_attempt_at <= now AND (claimed_until IS NULL OR claimed_until <= now) … RETURNING`; PostgreSQL
adds `FOR UPDATE SKIP LOCKED`), so any number of workers in threads, processes or hosts never take
the same row twice. Rows are taken one at a time, so a claim never outlives its lease while other
rows are being delivered. The attempt is counted when the row is taken, so a worker that dies
mid-delivery still counts it; its row comes back when the lease expires.

`deliver_due` is the worker's loop: take a row, hand it to the outbox's own `deliver`, record
what happened. A failed attempt is retried after 1 min, 2, 4, … at most 1 h; after `max_attempts`, or a failure
retrying cannot help, the row is `failed`. A worker records an outcome only under its own claim
(`claim_token`): a row whose lease another worker took over is not overwritten.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
from typing import Callable, Sequence

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.engine import Connection
from sqlmodel import select

from . import clock, db

PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)


@dataclasses.dataclass
class Report:
    sent: int = 0
    retrying: int = 0  # failed this time, will be tried again
    failed: int = 0  # given up

    def __iadd__(self, other: Report) -> Report:
        self.sent, self.retrying, self.failed = (self.sent + other.sent, self.retrying + other.retrying,
                                                 self.failed + other.failed)
        return self

    def __str__(self) -> str:
        return f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}"


class DeliveryFailure(Exception):
    """A row that did not go out: what went wrong (for staff, never credentials, at most 300
    characters), whether retrying can ever help (`permanent`) and whether the link itself is down
    (`link_down`: the rest of the run would fail the same way, so it stops)."""

    def __init__(self, description: str, *, permanent: bool = False, link_down: bool = False):
        super().__init__(description)
        self.description = description
        self.permanent = permanent
        self.link_down = link_down


def backoff(attempts: int) -> dt.timedelta:
    """Delay after the `attempts`-th failed attempt: 1 min, 2, 4, … at most 1 h."""
    return min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 16), LONGEST_RETRY)


def due(table, now: dt.datetime):
    """The rows of `table` a worker may take now."""
    return and_(table.state == PENDING, table.next_attempt_at <= now,
                or_(table.claimed_until.is_(None), table.claimed_until <= now))


@dataclasses.dataclass(frozen=True)
class Claim:
    """A row this worker holds: its id, the claim's token, its attempts so far and the columns asked for."""

    id: int
    token: str
    attempts: int
    row: object  # the RETURNING row: the columns the caller asked for, by name


def claim_next(conn: Connection, table, columns: tuple, *, lease: dt.timedelta, only_id: int | None = None,
               also: Callable | None = None) -> Claim | None:
    """Take the next due row of `table` (or row `only_id` if due) in one statement. Commits.

    `also(now)`, if given, is a further condition the row must meet (the outbox's own rule)."""
    now = clock.now()
    token = secrets.token_hex(16)
    parameters = {"now": now, "until": now + lease, "token": token}
    if only_id is not None:
        parameters["only_id"] = only_id
    row = conn.execute(_claim_statement(table, columns, also, only_id is not None), parameters).first()
    conn.commit()
    if row is None:
        return None
    return Claim(id=row.id, token=token, attempts=row.attempts, row=row)


_CLAIMS: dict[tuple, object] = {}


def _claim_statement(table, columns: tuple, also: Callable | None, one: bool):
    """The claim's UPDATE … RETURNING for `table`, built once: its moments, token and the one row's id
    are parameters (`now`, `until`, `token`, `only_id`). Built on every claim, with the condition's
    operators, it was most of a claim's ~1,300 function calls (two a mail)."""
    key = (table, tuple(c.key for c in columns), also, one)
    stmt = _CLAIMS.get(key)
    if stmt is None:
        columns_of = table.__table__.c  # each parameter bound as its column is (UTC moments)
        now = bindparam("now", type_=columns_of.next_attempt_at.type)
        condition = due(table, now) if also is None else and_(due(table, now), also(now))
        pick = select(table.id).where(condition)
        if one:
            pick = pick.where(table.id == bindparam("only_id"))
        pick = pick.order_by(table.next_attempt_at, table.id).limit(1).with_for_update(skip_locked=True)
        # `id = (sub-select)`, not `id IN (…)`: PostgreSQL runs a scalar sub-select once (an InitPlan);
        # under IN it may rescan it per row, locking and taking a further row each time. The due
        # condition is repeated outside it: PostgreSQL re-checks that on a row a concurrent claim just
        # updated.
        stmt = _CLAIMS[key] = (
            update(table)
            .where(table.id == pick.scalar_subquery(), condition)
            .values(claimed_until=bindparam("until", type_=columns_of.claimed_until.type), claim_token=bindparam("token"), attempts=table.attempts + 1)
            .returning(table.id, table.attempts, *columns)
        )
    return stmt


_FINISHES: dict[tuple, object] = {}


def finish(conn: Connection, table, claim: Claim, **values) -> bool:
    """Record the outcome of our own claim; False when the lease was lost to another worker. Commits."""
    key = (table, tuple(values))
    stmt = _FINISHES.get(key)
    if stmt is None:
        stmt = _FINISHES[key] = (
            update(table)
            .where(table.id == bindparam("claimed_id"), table.claim_token == bindparam("claimed_token"),
                   table.state == PENDING)
            .values(claimed_until=None, **{name: bindparam(name, type_=table.__table__.c[name].type)
                                          for name in values}))
    result = conn.execute(stmt, {"claimed_id": claim.id, "claimed_token": claim.token, **values})
    conn.commit()
    return result.rowcount == 1


def mark_sent(conn: Connection, table, claim: Claim) -> bool:
    return finish(conn, table, claim, state=SENT, sent_at=clock.now(), last_error=None)


@dataclasses.dataclass(frozen=True)
class Failure:
    """What `record_failure` did: gave up (`failed`) or scheduled a retry at `next_attempt_at`;
    `recorded` is False when the lease had been lost (nothing written)."""

    recorded: bool
    failed: bool
    next_attempt_at: dt.datetime


def record_failure(conn: Connection, table, claim: Claim, description: str, *, permanent: bool,
                   max_attempts: int) -> Failure:
    """A failed attempt: retried after `backoff`, or `failed` when permanent or out of attempts."""
    give_up = permanent or claim.attempts >= max_attempts
    values = dict(last_error=description[:300], next_attempt_at=clock.now() + backoff(claim.attempts))
    if give_up:
        values["state"] = FAILED
    recorded = finish(conn, table, claim, **values)
    return Failure(recorded=recorded, failed=give_up, next_attempt_at=values["next_attempt_at"])


def deliver_due(table, columns: tuple, deliver: Callable[[Claim], None], *, lease: dt.timedelta,
                max_attempts: int, limit: int, log: logging.Logger, only_ids: Sequence[int] = (),
                also: Callable | None = None) -> Report:
    """Deliver up to `limit` due rows of `table` (or, given `only_ids`, each of these rows that is
    due), one claim at a time, over one database connection.

    `deliver(claim)` sends one row or raises DeliveryFailure; one whose link is down ends the run.
    Safe to run in parallel anywhere. `also(now)`: a further condition a row must meet to be taken
    (see claim_next).
    """
    report = Report()
    name = table.__tablename__
    with db.engine().connect() as conn:
        if conn.dialect.name == "postgresql":
            # Each claim and each outcome is one statement, atomic on its own: in autocommit, without
            # the BEGIN and COMMIT around it, two round trips fewer each (reset when the connection
            # goes back to the pool). SQLite's writers keep their transactions: the write gate
            # (db.py) queues them there.
            conn.execution_options(isolation_level="AUTOCOMMIT")
        for only_id in only_ids or [None] * limit:
            claim = claim_next(conn, table, columns, lease=lease, only_id=only_id, also=also)
            if claim is None:
                if only_id is None:
                    break
                continue
            try:
                deliver(claim)
            except DeliveryFailure as error:
                _count_failure(conn, table, claim, error, max_attempts, report, log)
                if error.link_down:
                    break
                continue
            if not mark_sent(conn, table, claim):
                log.warning("%s %s: sent after its lease had expired; another worker may send it again", name, claim.id)
            report.sent += 1
    return report


def _count_failure(conn: Connection, table, claim: Claim, error: DeliveryFailure, max_attempts: int, report: Report,
                   log: logging.Logger) -> None:
    name = table.__tablename__
    outcome = record_failure(conn, table, claim, error.description, permanent=error.permanent,
                             max_attempts=max_attempts)
    if not outcome.recorded:
        log.warning("%s %s: lease lost before the failure was recorded", name, claim.id)
    elif outcome.failed:
        report.failed += 1
        log.error("%s %s given up after %s attempt(s): %s", name, claim.id, claim.attempts, error.description)
    else:
        report.retrying += 1
        log.warning("%s %s attempt %s failed, next at %s: %s", name, claim.id, claim.attempts,
                    outcome.next_attempt_at.isoformat(), error.description)


def keep_running(run_once: Callable[[], None], every: int | None) -> None:
    """Run once (cron), or once every `every` seconds until interrupted (a worker process)."""
    while True:
        run_once()
        if every is None:
            return
        try:
            time.sleep(every)
        except KeyboardInterrupt:
            return
