"""本日の状況: what a union's office watches during the day (JST), from rows already kept.

- Flows started today, by the step each reached: completed (許可), abandoned there (cancelled, denied,
  or no request for longer than the flow's idle limit), still in progress there.
- Accounts locked today (B84 until midnight) and the ones still locked now.
- Failed identity checks (② and ⑤) per address: one address failing on many accounts is an attack
  (a reverse brute force), not a forgetful customer.
- The completion-mail outbox: messages waiting, failed for good, and the oldest waiting.
Each figure is one grouped query on an index that leads with the union.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from flask import current_app
from sqlalchemy import func
from sqlmodel import select

from .. import clock, lockout
from ..flow.models import AUTHORIZE, Flow
from ..flow.state import ROUTES
from ..lockout import AccountLock
from ..mail.models import FAILED, PENDING, MailOutbox
from ..oplog import OperationLog

IDENTITY_EVENTS = ("identity_check", "pin_check")
STEP_NAMES = {"account": "① ご利用口座情報入力", "customer": "② お客様情報入力", "phone": "③ 電話番号の確認",
              "call": "④ 電話番号認証", "pin": "⑤ 暗証番号認証", "consent": "⑥ 情報連携認可"}


@dataclasses.dataclass
class StepFigures:
    step: str
    name: str
    reached: int = 0
    abandoned: int = 0
    in_progress: int = 0


@dataclasses.dataclass
class Day:
    started: int
    completed: int
    abandoned: int
    steps: list[StepFigures]
    locks_today: int
    locked_now: list[AccountLock]
    failures_by_address: list[tuple[str, int, int, dt.datetime]]  # ip, failures, accounts, last
    mail_pending: int
    mail_failed: int
    mail_oldest_pending: dt.datetime | None


def start_of_today() -> dt.datetime:
    return dt.datetime.combine(clock.today_jst(), dt.time(0), clock.JST)


def today(s, tenant) -> Day:
    since = start_of_today()
    now = clock.now()
    idle = dt.timedelta(seconds=int(current_app.config["FLOW_IDLE_SECONDS"]))
    stale = (Flow.ended_at.is_(None)) & (Flow.updated_at < now - idle)
    rows = s.exec(select(Flow.step, Flow.outcome, stale, func.count())
                  .where(Flow.tenant == tenant.id, Flow.purpose == AUTHORIZE, Flow.created_at >= since)
                  .group_by(Flow.step, Flow.outcome, stale)).all()
    order = list(ROUTES[AUTHORIZE])
    steps = {name: StepFigures(name, STEP_NAMES.get(name, name)) for name in order}
    started = completed = abandoned = 0
    for step, outcome, is_stale, count in rows:
        started += count
        index = order.index(step) if step in order else 0
        for earlier in order[:index + 1]:
            steps[earlier].reached += count
        if outcome == "consented":
            completed += count
        elif outcome is not None or is_stale:
            abandoned += count
            steps[order[index]].abandoned += count
        else:
            steps[order[index]].in_progress += count

    locks_today = s.exec(select(func.count()).select_from(OperationLog).where(
        OperationLog.tenant == tenant.id, OperationLog.event == lockout.LOCKED_EVENT, OperationLog.at >= since)).one()
    locked_now = list(s.exec(select(AccountLock).where(
        AccountLock.tenant == tenant.id, AccountLock.day == clock.today_jst(),
        AccountLock.failures >= tenant.lock_threshold).order_by(AccountLock.branch, AccountLock.number)))

    accounts = func.count(func.distinct(OperationLog.account_type + OperationLog.branch + OperationLog.account_number))
    failures = s.exec(select(OperationLog.ip, func.count(), accounts, func.max(OperationLog.at))
                      .where(OperationLog.tenant == tenant.id, OperationLog.event.in_(IDENTITY_EVENTS),
                             OperationLog.result == "fail", OperationLog.at >= since)
                      .group_by(OperationLog.ip).order_by(func.count().desc(), OperationLog.ip).limit(20)).all()

    pending, oldest = s.exec(select(func.count(), func.min(MailOutbox.created_at)).where(
        MailOutbox.tenant == tenant.id, MailOutbox.state == PENDING)).one()
    failed = s.exec(select(func.count()).select_from(MailOutbox).where(
        MailOutbox.tenant == tenant.id, MailOutbox.state == FAILED)).one()
    return Day(started, completed, abandoned, [steps[n] for n in order], locks_today, locked_now,
               [(ip or "不明", n, a, clock.as_utc(last)) for ip, n, a, last in failures],
               pending, failed, clock.as_utc(oldest) if oldest else None)
