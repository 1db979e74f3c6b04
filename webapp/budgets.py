"""Identity-check budgets: how many checks of ② and ⑤ an address, a fintech app's flows and a whole
union may make in a time window. They stop what the per-account lock cannot: one PIN or birth date
tried across many accounts (the 2020 ドコモ口座 fraud), from one address or from a botnet.

| budget | key | counts | default (config) |
|---|---|---|---|
| per address | the client's IP (after ProxyFix) | every check | 30 per 10 minutes (`IDENTITY_CHECKS_PER_IP`) |
| per client | the fintech app | failed checks | 300 per 10 minutes (`IDENTITY_FAILURES_PER_CLIENT`) |
| per union | the union | failed checks | 1000 per 10 minutes (`IDENTITY_FAILURES_PER_UNION`) |

A failed check is a mismatch (error No.2), an unknown or unusable account (No.1, so probing which
accounts exist costs the same as guessing) or an attempt on a locked account. The counts live in
the database beside the lock, not in a worker's memory, so they hold for every process and host
on SQLite and PostgreSQL alike. Like the lock, a slot is reserved before core banking is asked, by
one atomic `INSERT … ON CONFLICT DO UPDATE … WHERE used < limit RETURNING` for all the budgets (one
round trip, not one a budget); a check that passes gives its failure slots back. Windows are fixed (a count belongs to one window of the limit's length).

On PostgreSQL that statement, and the one giving slots back, each run as a transaction of their own
(autocommit), not inside the check's: the union's row and the app's are written by every check of the
union, and a row written in a transaction stays locked until its COMMIT. Held across the check's
other statements (the account's lock, the flow, the log row), each a round trip made by a thread
that then waits its turn for the worker's GIL, they queued every ② and ⑤ of the union behind one
another: at 16 customers ② answered in 129–155 ms at the median and 333–404 ms at p99, against
105/125 ms on SQLite (bench/README, round 28). In a statement of its own a row is locked only while
PostgreSQL runs it. A check that dies between its budgets and its lock (a process killed, the database
gone) has spent its slots: it counts as a check, which is the safe side. SQLite keeps them in the
check's transaction: it has one writer at a time anyway (db._WriteGate), and a transaction more
would cost a turn of that lock.
"""
from __future__ import annotations

import dataclasses
import functools

from limits import parse
from sqlalchemy import Column, Integer, String, bindparam, case, or_, update
from sqlmodel import Field, Session, SQLModel

from . import clock
from . import db as dbmod


class CheckBudget(SQLModel, table=True):
    __tablename__ = "check_budget"

    key: str = Field(sa_column=Column(String(200), primary_key=True))  # e.g. "ip:203.0.113.5"
    window: int = Field(sa_column=Column(Integer, nullable=False))  # epoch seconds // window length
    used: int = Field(sa_column=Column(Integer, nullable=False))


@dataclasses.dataclass(frozen=True)
class Budget:
    name: str  # "ip", "client", "union": said in the log when it refuses
    key: str
    limit: str  # a limits string, e.g. "30 per 10 minutes"
    failures_only: bool  # True: a passed check gives its slot back


def identity_budgets(config, *, tenant: str, client_id: str, address: str) -> list[Budget]:
    """The budgets one identity check draws on, in a fixed order (so parallel checks never deadlock)."""
    return [
        Budget("ip", f"ip:{address}", config["IDENTITY_CHECKS_PER_IP"], failures_only=False),
        Budget("client", f"client:{tenant}:{client_id}", config["IDENTITY_FAILURES_PER_CLIENT"], failures_only=True),
        Budget("union", f"union:{tenant}", config["IDENTITY_FAILURES_PER_UNION"], failures_only=True),
    ]


@functools.cache
def _parsed(limit: str) -> tuple[int, int]:
    item = parse(limit)  # the config's few strings, parsed once each
    return item.amount, item.get_expiry()


def _window(limit: str) -> tuple[int, int]:
    amount, period = _parsed(limit)
    return amount, int(clock.now().timestamp()) // period


_BUDGET = CheckBudget.__table__  # Core statements: no budget row is ever loaded as an object to keep in step
_c = _BUDGET.c


@functools.cache
def _take(count: int) -> dbmod.Precompiled:
    """Take a slot of `count` budgets in ONE atomic statement: each budget's row made (with this slot)
    or its count raised (ON CONFLICT … DO UPDATE … WHERE: the row is locked and the WHERE read on its
    latest version), rows taken in the budgets' order; a budget whose window's slots are spent is not
    updated and not returned. A new window starts again at 1. Each budget's limit (`a0`, `a1`, …)
    is picked by its key (`k0`, …), the rows having no column for it."""

    def build(insert):
        stmt = insert(_BUDGET).values([{"key": bindparam(f"k{n}"), "window": bindparam(f"w{n}", type_=Integer),
                                        "used": 1} for n in range(count)])
        new_window, key = stmt.excluded.window, stmt.excluded.key
        amount = case(*((key == bindparam(f"k{n}"), bindparam(f"a{n}", type_=Integer)) for n in range(count)))
        return (stmt.on_conflict_do_update(
            index_elements=[_c.key],
            set_={"used": case((_c.window == new_window, _c.used + 1), else_=1), "window": new_window},
            where=or_(_c.window != new_window, _c.used < amount))
            .returning(_c.key))

    return dbmod.Precompiled(build)  # compiled once per dialect and count; each call only binds its values


_GIVE_BACK = (update(_BUDGET)
              .where(_c.key == bindparam("b_key"), _c.window == bindparam("b_window"), _c.used > 0)
              .values(used=_c.used - 1))


_GIVE_BACK_APART = dbmod.Precompiled(lambda _insert: _GIVE_BACK)


def _apart(s: Session):
    """PostgreSQL: the engine on which a budget statement runs as a transaction of its own
    (db.by_itself; the module's docstring says why). None on SQLite: the caller's transaction."""
    bind = s.get_bind()
    return bind if bind.dialect.name == "postgresql" else None


def reserve(s: Session, budgets: list[Budget]) -> Budget | None:
    """Take one slot of every budget, or none: the first budget that is spent, else None.

    One statement for all of them (their keys distinct). On SQLite it runs in the caller's
    transaction, and when a budget is spent the transaction is rolled back, so the slots the
    statement took are given back. On PostgreSQL it is a transaction of its own, and when a budget is
    spent a second statement gives back the slots the first took; meanwhile a parallel check may find
    a budget one slot fuller than it will be, and be refused (the safe side). A budget of no slots
    refuses without a statement.
    """
    if not budgets:
        return None
    windows = [_window(budget.limit) for budget in budgets]
    for budget, (amount, _) in zip(budgets, windows):
        if amount < 1:
            s.rollback()
            return budget
    values = {}
    for n, (budget, (amount, window)) in enumerate(zip(budgets, windows)):
        values.update({f"k{n}": budget.key, f"w{n}": window, f"a{n}": amount})
    apart = _apart(s)
    if apart is None:
        taken = set(_take(len(budgets)).execute(s.connection(), values).scalars())
    else:
        taken = {row[0] for row in dbmod.by_itself(apart, _take(len(budgets)), [values])}
        if taken and len(taken) < len(budgets):
            dbmod.by_itself(apart, _GIVE_BACK_APART, [{"b_key": budget.key, "b_window": window}
                                                      for budget, (_, window) in zip(budgets, windows)
                                                      if budget.key in taken])
    for budget in budgets:
        if budget.key not in taken:
            s.rollback()
            return budget
    return None


def give_back(s: Session, budgets: list[Budget]) -> None:
    """A passed check: return the slots of the budgets that count failures only, in the caller's
    transaction on SQLite, at once and by themselves on PostgreSQL (the module's docstring says why)."""
    slots = [{"b_key": budget.key, "b_window": _window(budget.limit)[1]} for budget in budgets if budget.failures_only]
    if not slots:
        return
    apart = _apart(s)
    if apart is None:
        s.connection().execute(_GIVE_BACK, slots)  # one executemany
        return
    dbmod.by_itself(apart, _GIVE_BACK_APART, slots)
