"""Operation log: one append-only row per step and result of every flow (SPEC §6).

Never a PIN, never a full phone number: callers pass only what may be kept, and `detail` is
a short machine-readable code, not free text from the customer.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

import json
import logging

import click
from flask import has_request_context, request
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel, select

from . import clock, metrics
from .db import UTCDateTime
from .fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BRANCH, NAME_KANA, padded_account_number

events_log = logging.getLogger("renkei.events")


class OperationLog(SQLModel, table=True):
    __tablename__ = "operation_log"

    id: Optional[int] = Field(default=None, primary_key=True)
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    tenant: str = Field(max_length=32, index=True)
    flow_id: Optional[int] = Field(default=None, index=True)
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


def record(session, *, tenant: str, screen: str, event: str, result: str, flow=None, detail: str | None = None,
           client_id: str | None = None, branch: str | None = None, account_type: str | None = None,
           account_number: str | None = None) -> OperationLog:
    """Add a log row to `session` (committed with the caller's transaction).

    The row is also counted (webapp/metrics.py: by screen, event and result) and written to the
    server log as a JSON line with its flow's correlation id (webapp/logs.py), when it is added.
    """
    row = OperationLog(
        at=clock.now(), tenant=tenant, screen=screen, event=event, result=result, detail=detail,
        flow_id=getattr(flow, "id", None),
        client_id=client_id or getattr(flow, "client_id", None),
        branch=branch or getattr(flow, "branch", None),
        account_type=account_type or getattr(flow, "account_type", None),
        account_number=account_number or getattr(flow, "account_number", None),
        name_kana=getattr(flow, "name_kana", None),
    )
    if has_request_context():
        row.ip = (request.remote_addr or "")[:64]
        row.user_agent = (request.user_agent.string or "")[:300]
    session.add(row)
    metrics.event_logged(tenant, screen, event, result)
    events_log.info("%s %s %s", screen, event, result,
                    extra={"tenant": tenant, "screen": screen, "event": event, "result": result,
                           "detail": detail, "flow_id": row.flow_id})
    return row


log_cli = AppGroup("log", help="The operation log (staff).")


@log_cli.command("show")
@click.option("--tenant", required=True)
@click.option("--account", help="店番-科目-口座番号, e.g. 115-1-1100026")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), help="JST, e.g. 2026-11-18")
@click.option("--limit", default=200, show_default=True)
@with_appcontext
def show_cmd(tenant, account, since, limit):
    """Print a union's log rows, newest first, one JSON object per line (times in JST)."""
    from . import db

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
    rows = db.session().exec(query.order_by(OperationLog.id.desc()).limit(limit)).all()
    for row in rows:
        data = row.model_dump()
        data["at"] = clock.as_utc(row.at).astimezone(clock.JST).isoformat(timespec="seconds")
        click.echo(json.dumps(data, ensure_ascii=False))
