"""Lockout: a union's threshold (`lock_threshold` in tenants/<id>.toml) of consecutive identity
failures (② and ⑤ together) locks API連携認証 for that account until 00:00 JST; reason code B84
afterwards.

Each attempt first reserves its slot with one atomic statement, *before* core banking is asked:
`INSERT … ON CONFLICT DO UPDATE SET failures = failures + 1 WHERE failures < threshold RETURNING failures`.
So N parallel attempts on any number of processes evaluate at most `threshold` of them. Only a
completed authentication (⑤ passed) resets the count; a passed ② gives back its own slot and
leaves earlier failures standing; an attempt that turns out not to concern a serviceable account is refunded.
The count belongs to one JST day: the first attempt of a new day starts again at 1, which is how the
lock lifts at midnight. Attempts while locked change nothing (they do not extend the lock).
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import Column, String, and_, bindparam, case, or_, update
from sqlmodel import Field, Session, SQLModel, select

from . import clock, metrics
from . import db as dbmod
from .corebanking import AccountKey
from .fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BRANCH, padded_account_number


LOCKED_EVENT = metrics.LOCKED_EVENT  # the operation log's event for the attempt that locked an account


class AccountLock(SQLModel, table=True):
    __tablename__ = "account_lock"

    tenant: str = Field(sa_column=Column(String(32), primary_key=True))
    branch: str = Field(sa_column=Column(String(BRANCH.max_length), primary_key=True))
    account_type: str = Field(sa_column=Column(String(ACCOUNT_TYPE.max_length), primary_key=True))
    number: str = Field(sa_column=Column(String(ACCOUNT_NUMBER.max_length), primary_key=True))
    day: dt.date  # the JST day the count belongs to
    failures: int = 0


@dataclasses.dataclass(frozen=True)
class Attempt:
    allowed: bool  # False: locked, do not ask core banking (B84)
    failures: int = 0  # the count including this attempt, were it to fail
    threshold: int = 0

    @property
    def locks_if_failed(self) -> bool:
        return self.allowed and self.failures >= self.threshold


def _where(key: AccountKey):
    return and_(AccountLock.tenant == key.tenant, AccountLock.branch == key.branch,
                AccountLock.account_type == key.account_type, AccountLock.number == key.number)


# The hot statements as Core on the table, built once (no ORM bulk-update evaluation, no statement
# construction on each identity check); each call only binds its values.
_LOCKS = AccountLock.__table__
_c = _LOCKS.c
_THIS_ACCOUNT = and_(_c.tenant == bindparam("l_tenant"), _c.branch == bindparam("l_branch"),
                     _c.account_type == bindparam("l_type"), _c.number == bindparam("l_number"))


def _reserve(insert):
    """Count an attempt: the account's row made (with this attempt) or its count raised, in ONE atomic
    statement (ON CONFLICT … DO UPDATE … WHERE: the row is locked and the WHERE read on its latest
    version), or no row back when the account is locked. A new JST day starts again at 1."""
    stmt = insert(_LOCKS).values(tenant=bindparam("l_tenant"), branch=bindparam("l_branch"),
                                 account_type=bindparam("l_type"), number=bindparam("l_number"),
                                 day=bindparam("l_day", type_=_c.day.type), failures=1)
    today = stmt.excluded.day
    return (stmt.on_conflict_do_update(
        index_elements=[_c.tenant, _c.branch, _c.account_type, _c.number],
        set_={"failures": case((_c.day == today, _c.failures + 1), else_=1), "day": today},
        where=or_(_c.day != today, _c.failures < bindparam("l_threshold")))
        .returning(_c.failures))


_RESERVE = dbmod.PerDialect(_reserve)
_REFUND = (update(_LOCKS).where(_THIS_ACCOUNT, _c.failures > 0, _c.day == bindparam("l_day"))
           .values(failures=_c.failures - 1))
_RESET = update(_LOCKS).where(_THIS_ACCOUNT).values(failures=0)
_READ = select(_c.day, _c.failures).where(_THIS_ACCOUNT)  # ② and ⑤ read it on every GET


def _account(key: AccountKey) -> dict:
    return {"l_tenant": key.tenant, "l_branch": key.branch, "l_type": key.account_type, "l_number": key.number}


def reserve_attempt(s: Session, key: AccountKey, threshold: int) -> Attempt:
    """Count this attempt as a failure up front; refuse it when the account is locked (in the
    caller's transaction, which commits it before core banking is asked)."""
    connection = s.connection()
    failures = None if threshold < 1 else connection.execute(_RESERVE.on(connection), {
        **_account(key), "l_day": clock.today_jst(), "l_threshold": threshold}).scalar_one_or_none()
    if failures is None:
        return Attempt(allowed=False, threshold=threshold)
    return Attempt(allowed=True, failures=failures, threshold=threshold)


def record_success(s: Session, key: AccountKey) -> None:
    """A completed authentication (⑤ passed) resets the count (in the caller's transaction)."""
    s.connection().execute(_RESET, _account(key))


def refund(s: Session, key: AccountKey) -> None:
    """Give back a reserved slot: the attempt never reached an identity check (in the caller's transaction)."""
    s.connection().execute(_REFUND, {**_account(key), "l_day": clock.today_jst()})


def is_locked(s: Session, key: AccountKey, threshold: int) -> bool:
    """Today's count has reached the threshold (read in the caller's transaction)."""
    return _reached(s.connection().execute(_READ, _account(key)).first(), threshold)


def is_locked_read(key: AccountKey, threshold: int) -> bool:
    """`is_locked` for a request that only reads (② and ⑤'s GET): read by dbmod.first_read."""
    return _reached(dbmod.first_read(_READ, _account(key)), threshold)


def _reached(row, threshold: int) -> bool:
    return bool(row and row.day == clock.today_jst() and row.failures >= threshold)


def unlock(s: Session, key: AccountKey) -> bool:
    """Staff unlock: clears the count. True when there was a row to clear."""
    result = s.execute(update(AccountLock).where(_where(key)).values(failures=0))
    return result.rowcount > 0


locks_cli = AppGroup("locks", help="Account locks of API連携認証 (staff).")


@locks_cli.command("unlock")
@click.option("--tenant", required=True)
@click.option("--branch", required=True)
@click.option("--type", "account_type", required=True)
@click.option("--number", required=True)
@with_appcontext
def unlock_cmd(tenant, branch, account_type, number):
    """Lift an account's lock before midnight (the customer called the union)."""
    from . import oplog

    key = AccountKey(tenant, branch, account_type, padded_account_number(number))
    s = dbmod.session()
    found = unlock(s, key)
    oplog.record(s, tenant=tenant, screen="ADMIN", event="unlock", result="ok" if found else "fail",
                 branch=key.branch, account_type=key.account_type, account_number=key.number)
    s.commit()
    click.echo("unlocked" if found else "no lock recorded for that account")


@locks_cli.command("report")
@click.option("--tenant", required=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="JST day to start from (default: today)")
@with_appcontext
def report_cmd(tenant, since):
    """Locks caused per address, most first: one address locking many accounts is an attack.

    One JSON object per line: {"ip", "locks", "accounts", "last"} (times in JST)."""
    import json

    from sqlalchemy import func

    from .oplog import OperationLog

    day = since.date() if since else clock.today_jst()
    start = dt.datetime.combine(day, dt.time(0), tzinfo=clock.JST)
    s = dbmod.session()
    rows = s.execute(
        select(OperationLog.ip, func.count(), func.max(OperationLog.at))
        .where(OperationLog.tenant == tenant, OperationLog.event == LOCKED_EVENT, OperationLog.at >= start)
        .group_by(OperationLog.ip).order_by(func.count().desc(), OperationLog.ip)
    ).all()
    for ip, count, last in rows:
        accounts = s.execute(
            select(OperationLog.branch, OperationLog.account_type, OperationLog.account_number).distinct()
            .where(OperationLog.tenant == tenant, OperationLog.event == LOCKED_EVENT, OperationLog.at >= start,
                   OperationLog.ip == ip)
            .order_by(OperationLog.branch, OperationLog.account_type, OperationLog.account_number)
        ).all()
        click.echo(json.dumps({"ip": ip, "locks": count, "accounts": ["-".join(a) for a in accounts],
                               "last": clock.as_utc(last).astimezone(clock.JST).isoformat(timespec="seconds")},
                              ensure_ascii=False))
