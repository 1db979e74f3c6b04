"""Ad hoc maintenance windows that a union's staff announce (臨時メンテナンス).

A window is a row; the customer screens, the authorization start, the API and the FAQ page read the
union's live windows on every request (`rules_for`: one query on the (tenant, ends_at) index,
windows already over are not read; on SQLite a thread reads them again only once the database's
count of window changes has moved since its last read, `_remembered`, `window_now`), so every
worker on every host follows an added or cancelled window at once. Cancelling is one atomic UPDATE;
nothing is ever deleted.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from flask import has_request_context
from sqlalchemy import DDL, Column, Index, String, bindparam, event, update
from sqlmodel import Field, SQLModel, select

from . import clock, db, service_hours
from .db import UTCDateTime


class MaintenanceWindow(SQLModel, table=True):
    """An ad hoc closure a union's staff announced; the customer screens and the FAQ read it at once."""

    __tablename__ = "maintenance_window"
    __table_args__ = (Index("ix_maintenance_window_tenant_end", "tenant", "ends_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=32)
    starts_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reason: str = Field(sa_column=Column(String(200), nullable=False))
    created_by: int = Field(foreign_key="staff_account.id")
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cancelled_at: Optional[dt.datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    cancelled_by: Optional[int] = Field(default=None, foreign_key="staff_account.id")


class MaintenanceChanges(SQLModel, table=True):
    """How many times maintenance_window has changed: one row, counted by the database itself (the
    triggers below, migration 0010) in the transaction that adds, cancels or deletes a window, by
    whatever wrote it (the staff console, the CLI, a hand-typed statement). A worker thread that
    keeps what it read of the windows (`_remembered`, `window_now`) reads them again only when this
    moved; commits to any other table leave it alone. No row yet: nothing has changed.

    The row starts at a random total (migration 0011), not at 1: were it deleted by hand, the next
    change would make it again, and a thread that kept the total it read before the deletion must
    not meet that same total (a chance of 1 in 2**30), or it would keep windows that have changed."""

    __tablename__ = "maintenance_changes"

    id: int = Field(primary_key=True)  # always 1
    total: int


# The same triggers as migrations 0010 and 0011 make, for a schema made from the models
# (db.create_all: tests). A new row's total is random in 1 … 2**30 (MaintenanceChanges).
def _count_a_change(first_total: str) -> str:
    return (f"INSERT INTO maintenance_changes (id, total) VALUES (1, {first_total})"
            " ON CONFLICT (id) DO UPDATE SET total = maintenance_changes.total + 1")


for _action in ("INSERT", "UPDATE", "DELETE"):
    event.listen(MaintenanceWindow.__table__, "after_create", DDL(
        f"CREATE TRIGGER maintenance_window_{_action.lower()} AFTER {_action} ON maintenance_window"
        f" BEGIN {_count_a_change('abs(random() %% 1073741824) + 1')}; END").execute_if(dialect="sqlite"))  # %%: DDL's
event.listen(MaintenanceWindow.__table__, "after_create", DDL(
    "CREATE FUNCTION maintenance_window_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    f" BEGIN {_count_a_change('floor(random() * 1073741824)::integer + 1')}; RETURN NULL; END $$"
).execute_if(dialect="postgresql"))
event.listen(MaintenanceWindow.__table__, "after_create", DDL(
    "CREATE TRIGGER maintenance_window_changed AFTER INSERT OR UPDATE OR DELETE ON maintenance_window"
    " FOR EACH STATEMENT EXECUTE FUNCTION maintenance_window_changed()").execute_if(dialect="postgresql"))

_CHANGES = "SELECT total FROM maintenance_changes WHERE id = 1"


def _changes(plain) -> int:
    """maintenance_changes' total as the kept connection reads it now (autocommit: the last commit's)."""
    row = plain.dbapi_connection.execute(_CHANGES).fetchone()
    return 0 if row is None else row[0]


def rules_for(tenant, now: dt.datetime | None = None) -> tuple[service_hours.Rule, ...]:
    """The union's calendar plus the ad hoc windows its staff announced (those not over at `now`,
    default clock.now()), read on each call, so every worker follows a change at once."""
    extra = adhoc_rules(tenant.id, now)
    return tenant.maintenance + extra if extra else tenant.maintenance


def window_now(tenant) -> service_hours.Window | None:
    """The maintenance window the union is in now, or None while it serves: what
    `service_hours.maintenance_window_at(rules_for(tenant))` answers, asked by every customer
    request, poll, authorization request and API call.

    On SQLite's kept read connection (db._KeptReads) the answer is kept for the rest of the minute
    while no window has changed (MaintenanceChanges), unless a rule begins or ends inside that
    minute. The calendar's rules begin and end on whole minutes of the day, so only an ad hoc
    window with seconds can: in its first and last minute the answer is worked out on each call, as
    it always is on PostgreSQL. With no boundary inside the minute, every moment of it
    gets the same answer. Working it out was ~4 % of a ④ poll's instructions (bench/README, round 18)."""
    now = clock.now()
    plain = db.plain() if has_request_context() else None  # the request's, which rules_for reads on
    if not isinstance(plain, db._KeptReads):
        return service_hours.maintenance_window_at(rules_for(tenant, now), now)
    version = _changes(plain)
    key = ("maintenance_answer", tenant.id)
    kept = plain.remembered.get(key)
    if kept is not None and kept[0] == version and kept[1] <= now < kept[2] and kept[3] is tenant.maintenance:
        return kept[4]
    rules = rules_for(tenant, now)
    answer = service_hours.maintenance_window_at(rules, now)
    start = now.replace(second=0, microsecond=0)
    end = start + _MINUTE
    if not any(start < moment < end for rule in rules if rule.period is not None for moment in rule.period):
        plain.remembered[key] = (version, start, end, tenant.maintenance, answer)
    return answer


_MINUTE = dt.timedelta(minutes=1)


def adhoc_rules(tenant_id: str, now: dt.datetime | None = None) -> tuple[service_hours.Rule, ...]:
    """The union's live (not cancelled, not over) windows as calendar rules.

    Not read in the request's session: that would open its transaction here, before the view, and on
    SQLite hold the write lock through the whole request (the call-status poll would wait for it).
    Every customer request and poll asks this, so the read is a plain DB-API SELECT in autocommit on
    the request's plain connection (db.plain: on SQLite no BEGIN IMMEDIATE, no write lock); the
    request's later reads use the same one."""
    engine = db.engine()
    now = clock.now() if now is None else now
    if engine.dialect.name == "sqlite":
        rows = _sqlite_live_windows(engine, tenant_id, now)
    elif has_request_context():
        # the request's plain connection (db.plain_rows), which its later reads use too
        rows = db.plain_rows(_LIVE, {"tenant": tenant_id, "now": now})
    else:
        with engine.connect() as own:
            rows = own.execute(_LIVE, {"tenant": tenant_id, "now": now}).all()
    return tuple(service_hours.Rule("adhoc", period=(start.astimezone(clock.JST), end.astimezone(clock.JST)))
                 for start, end in rows)


_LIVE = (select(MaintenanceWindow.starts_at, MaintenanceWindow.ends_at)
         .where(MaintenanceWindow.tenant == bindparam("tenant"),
                MaintenanceWindow.ends_at > bindparam("now", type_=UTCDateTime()),
                MaintenanceWindow.cancelled_at.is_(None)))


_SQLITE_LIVE = ("SELECT starts_at, ends_at FROM maintenance_window"
                " WHERE tenant = ? AND ends_at > ? AND cancelled_at IS NULL")


def _sqlite_live_windows(engine, tenant_id: str, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """SQLAlchemy stores UTCDateTime on SQLite as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff', which
    orders as the times do; db.make_engine's connections are in autocommit (isolation_level None)."""
    def stored(value: dt.datetime) -> str:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def loaded(value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)

    def read(dbapi_connection):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_SQLITE_LIVE, (tenant_id, stored(now)))
            return [(loaded(start), loaded(end)) for start, end in cursor.fetchall()]
        finally:
            cursor.close()

    if has_request_context():
        return _remembered(db.plain(), tenant_id, now, read)  # the request's plain connection
    raw = engine.raw_connection()  # from the pool; back to it on close
    try:
        return read(raw)
    finally:
        raw.close()


def _remembered(plain, tenant_id: str, now: dt.datetime, read) -> list[tuple[dt.datetime, dt.datetime]]:
    """read(plain): the union's windows not over at `now`. On the thread's kept SQLite connection
    (db._KeptReads) the windows it read last are used again while no window has changed since
    (MaintenanceChanges) and the clock has not gone back, less those over by now: the same rows the
    query would give. Each customer request asks this; a window added or cancelled by any process
    (another worker, the CLI) makes the next request read again (tests/test_maintenance_processes.py),
    and the commits of customers' steps and of the account API's log do not."""
    if not isinstance(plain, db._KeptReads):
        return read(plain)
    version = _changes(plain)  # before the read: a change after it is seen by the next request
    key = ("maintenance_windows", tenant_id)
    kept = plain.remembered.get(key)
    if kept is not None and kept[0] == version and now >= kept[1]:
        return [window for window in kept[2] if window[1] > now]
    windows = read(plain)
    plain.remembered[key] = (version, now, windows)
    return windows


def upcoming(s, tenant_id: str) -> list[MaintenanceWindow]:
    return list(s.exec(select(MaintenanceWindow).where(
        MaintenanceWindow.tenant == tenant_id, MaintenanceWindow.ends_at > clock.now(),
        MaintenanceWindow.cancelled_at.is_(None)).order_by(MaintenanceWindow.starts_at)))


def recent(s, tenant_id: str, limit: int = 20) -> list[MaintenanceWindow]:
    """Windows over or cancelled, newest first (for the record)."""
    return list(s.exec(select(MaintenanceWindow).where(
        MaintenanceWindow.tenant == tenant_id,
        (MaintenanceWindow.ends_at <= clock.now()) | MaintenanceWindow.cancelled_at.is_not(None))
        .order_by(MaintenanceWindow.starts_at.desc()).limit(limit)))


def add(s, tenant_id: str, start: dt.datetime, end: dt.datetime, reason: str, staff_id: int) -> MaintenanceWindow:
    window = MaintenanceWindow(tenant=tenant_id, starts_at=start, ends_at=end, reason=reason, created_by=staff_id,
                               created_at=clock.now())
    s.add(window)
    s.flush()
    return window


def cancel(s, tenant_id: str, window_id: int, staff_id: int) -> bool:
    """True when this call cancelled the window (it was live and of this union)."""
    done = s.execute(update(MaintenanceWindow).where(
        MaintenanceWindow.id == window_id, MaintenanceWindow.tenant == tenant_id,
        MaintenanceWindow.cancelled_at.is_(None)).values(cancelled_at=clock.now(), cancelled_by=staff_id))
    return done.rowcount == 1


def find(s, tenant_id: str, window_id: int) -> MaintenanceWindow | None:
    return s.exec(select(MaintenanceWindow).where(MaintenanceWindow.id == window_id,
                                                  MaintenanceWindow.tenant == tenant_id)).first()
