"""Operation log: one append-only row per step and result of every flow (SPEC §6).

Never a PIN, never a full phone number: callers pass only what may be kept, and `detail` is
a short machine-readable code, not free text from the customer.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

import json
import logging
import threading

import click
from flask import current_app, has_request_context, request
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import Column, Index, String, insert
from sqlmodel import Field, SQLModel, select

from . import clock, db, logspool, metrics
from .db import UTCDateTime
from .fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BRANCH, NAME_KANA, padded_account_number

events_log = logging.getLogger("renkei.events")


class OperationLog(SQLModel, table=True):
    __tablename__ = "operation_log"
    # For the staff console's search (webapp/staff/logsearch.py): newest first by (at, id) within a
    # union, narrowed by account, event or app. Every query of the log leads with the union: no index
    # of one column (migration 0009), each is one more B-tree every logged step and API call writes.
    __table_args__ = (
        Index("ix_operation_log_tenant_at_id", "tenant", "at", "id"),
        Index("ix_operation_log_account_at", "tenant", "branch", "account_type", "account_number", "at"),
        Index("ix_operation_log_event_at", "tenant", "event", "at"),
        Index("ix_operation_log_client_at", "tenant", "client_id", "at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    tenant: str = Field(max_length=32)
    flow_id: Optional[int] = None
    branch: Optional[str] = Field(default=None, max_length=BRANCH.max_length)
    account_type: Optional[str] = Field(default=None, max_length=ACCOUNT_TYPE.max_length)
    account_number: Optional[str] = Field(default=None, max_length=ACCOUNT_NUMBER.max_length)
    screen: str = Field(max_length=16)  # SOA201 … SOA206, CANCEL, CALL, OAUTH, API, ADMIN
    event: str = Field(max_length=40)
    result: str = Field(max_length=16)  # ok | fail | refused | locked | error
    client_id: Optional[str] = Field(default=None, max_length=64)
    ip: Optional[str] = Field(default=None, max_length=64)
    user_agent: Optional[str] = Field(default=None, sa_column=Column(String(300), nullable=True))
    name_kana: Optional[str] = Field(default=None, max_length=NAME_KANA.max_length)
    detail: Optional[str] = Field(default=None, sa_column=Column(String(200), nullable=True))
    staff_id: Optional[int] = None  # the staff member who acted (screen STAFF)


def record(session, *, tenant: str, screen: str, event: str, result: str, flow=None, detail: str | None = None,
           client_id: str | None = None, branch: str | None = None, account_type: str | None = None,
           account_number: str | None = None) -> OperationLog:
    """Add a log row to `session` (committed with the caller's transaction).

    The row is also counted (webapp/metrics.py: by screen, event and result) and written to the
    server log as a JSON line with its flow's correlation id (webapp/logs.py), when it is added.
    """
    row = OperationLog(**_row(tenant=tenant, screen=screen, event=event, result=result, flow=flow, detail=detail,
                              client_id=client_id, branch=branch, account_type=account_type,
                              account_number=account_number))
    session.add(row)
    _announce(row.tenant, screen, event, result, detail, row.flow_id)
    return row


def write(session, *, tenant: str, screen: str, event: str, result: str, flow=None, detail: str | None = None,
          client_id: str | None = None) -> None:
    """Write a log row now, in `session`'s transaction (committed with the caller's), as `record`
    adds one, but by the prebuilt INSERT on the session's connection: no ORM object to build and
    flush. The flow's steps, the token endpoint and the telephony webhook log this way; use `record`
    for a row the caller changes afterwards (the staff id)."""
    values = _row(tenant=tenant, screen=screen, event=event, result=result, flow=flow, detail=detail,
                  client_id=client_id)
    session.connection().execute(_INSERT, values)
    _announce(tenant, screen, event, result, detail, values["flow_id"])


def record_committed(*, tenant: str, screen: str, event: str, result: str, detail: str | None = None,
                     client_id: str | None = None, branch: str | None = None, account_type: str | None = None,
                     account_number: str | None = None) -> None:
    """Keep a log row before this returns, outside the caller's transaction (the account API's log of
    every call, which has nothing else to commit).

    On a SQLite file the row is appended to this process's spool file (webapp/logspool.py), which
    its drainer thread moves into the table a moment later. Elsewhere, or when the file cannot be
    written, it is committed here: rows that several threads log at the same moment share one
    transaction (_GroupCommit), so under load one commit covers many calls, instead of each call
    waiting for the write lock in turn."""
    values = _row(tenant=tenant, screen=screen, event=event, result=result, detail=detail, client_id=client_id,
                  branch=branch, account_type=account_type, account_number=account_number)
    spool = _spool()
    if spool is not None:
        try:
            spool.append(values)
        except OSError:
            events_log.exception("log spool not written: the row is committed instead")
        else:
            _announce(tenant, screen, event, result, detail, None)
            return
    batches = current_app.extensions.get("oplog_group_commit")
    if batches is None:  # the app's first call; setdefault: one of two racing threads' is kept
        batches = current_app.extensions.setdefault("oplog_group_commit", _GroupCommit())
    batches.write(db.engine(), values)
    _announce(tenant, screen, event, result, detail, None)


def drain() -> None:
    """Move the account API's spooled rows into the table (webapp/logspool.py): every reader of the
    log calls this first, so it sees every call answered before it. A failed drain is logged, not
    raised: the rows stay in their files for the next one, and the reader reads what is there."""
    spool = _spool()
    if spool is not None:
        try:
            spool.drain()
        except Exception:
            events_log.exception("log spool drain failed")


def _spool() -> "logspool.Spool | None":
    """This app's spool on a SQLite file database, made on first use; None on PostgreSQL."""
    spool = current_app._get_current_object().extensions.get("oplog_spool", False)
    if spool is False:
        engine = db.engine()
        directory = logspool.directory_for(engine)
        made = None if directory is None else logspool.Spool(engine, directory, OperationLog.__table__, _SPOOLED)
        spool = current_app.extensions.setdefault("oplog_spool", made)
    return spool


def _row(*, tenant, screen, event, result, flow=None, detail=None, client_id=None, branch=None, account_type=None,
         account_number=None) -> dict:
    row = dict(
        at=clock.now(), tenant=tenant, screen=screen, event=event, result=result, detail=detail,
        flow_id=getattr(flow, "id", None),
        client_id=client_id or getattr(flow, "client_id", None),
        branch=branch or getattr(flow, "branch", None),
        account_type=account_type or getattr(flow, "account_type", None),
        account_number=account_number or getattr(flow, "account_number", None),
        name_kana=getattr(flow, "name_kana", None),
    )
    if has_request_context():
        r = request._get_current_object()  # one context lookup: every API call logs a row
        row["ip"] = (r.remote_addr or "")[:64]
        row["user_agent"] = r.headers.get("User-Agent", "")[:300]  # what user_agent.string is, unparsed
    return row


def _announce(tenant, screen, event, result, detail, flow_id) -> None:
    metrics.event_logged(tenant, screen, event, result)
    events_log.info("%s %s %s", screen, event, result,
                    extra={"tenant": tenant, "screen": screen, "event": event, "result": result,
                           "detail": detail, "flow_id": flow_id})


_INSERT = insert(OperationLog.__table__)  # built once: every API call runs it
# A spool line holds every column but the id (webapp/logspool.py): one list, the table's, so a column
# added to the log is spooled too (what _row does not give is null, as in the INSERT).
_SPOOLED = tuple(column.name for column in OperationLog.__table__.columns if column.name != "id")


class _Ticket:
    __slots__ = ("values", "done", "error")

    def __init__(self, values: dict) -> None:
        self.values, self.done, self.error = values, False, None


class _GroupCommit:
    """Group commit: a thread queues its row, then waits for the writer's lock; whoever holds it
    writes every row queued by then in one transaction. A thread returns once its own row is
    committed (or raises what its write raised), so no row is ever acknowledged unwritten."""

    def __init__(self) -> None:
        self._queued: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def write(self, engine, values: dict) -> None:
        ticket = _Ticket(values)
        with self._queue_lock:
            self._queued.append(ticket)
        with self._writer:
            if not ticket.done:
                with self._queue_lock:
                    batch, self._queued = self._queued, []
                self._commit(engine, batch)
        if ticket.error is not None:
            raise ticket.error

    @staticmethod
    def _commit(engine, batch: list[_Ticket]) -> None:
        try:
            db.insert_committed(engine, _INSERT, [t.values for t in batch])
        except Exception as e:
            if len(batch) == 1:
                batch[0].error = e
            else:  # one bad row must not cost the others theirs: each on its own
                for ticket in batch:
                    _GroupCommit._commit(engine, [ticket])
        except BaseException as e:
            for ticket in batch:
                ticket.error = e
            raise
        finally:
            for ticket in batch:
                ticket.done = True


log_cli = AppGroup("log", help="The operation log (staff).")


@log_cli.command("show")
@click.option("--tenant", required=True)
@click.option("--account", help="店番-科目-口座番号, e.g. 115-1-1100026")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), help="JST, e.g. 2026-11-18")
@click.option("--limit", default=200, show_default=True)
@with_appcontext
def show_cmd(tenant, account, since, limit):
    """Print a union's log rows, newest first, one JSON object per line (times in JST)."""
    query = select(OperationLog).where(OperationLog.tenant == tenant)
    if account:
        try:
            branch, account_type, number = account.split("-")
        except ValueError:
            raise click.BadParameter("use 店番-科目-口座番号, e.g. 115-1-1100026", param_hint="--account")
        query = query.where(OperationLog.branch == branch, OperationLog.account_type == account_type,
                            OperationLog.account_number == padded_account_number(number))
    if since:
        query = query.where(OperationLog.at >= since.replace(tzinfo=clock.JST))
    drain()
    rows = db.session().exec(query.order_by(OperationLog.at.desc(), OperationLog.id.desc()).limit(limit)).all()
    for row in rows:
        data = row.model_dump()
        data["at"] = clock.as_utc(row.at).astimezone(clock.JST).isoformat(timespec="seconds")
        click.echo(json.dumps(data, ensure_ascii=False))
