"""The one clock. Every rule that depends on time asks `now()`, so tests move time instead of sleeping."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
UTC = dt.timezone.utc

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """The current time, timezone-aware (UTC)."""
    return _frozen if _frozen is not None else dt.datetime.now(UTC)


def now_jst() -> dt.datetime:
    return now().astimezone(JST)


def today_jst() -> dt.date:
    return now_jst().date()


def next_midnight_jst(at: dt.datetime | None = None) -> dt.datetime:
    """00:00 JST of the day after `at` (default: now), as UTC."""
    local = (at or now()).astimezone(JST)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), JST)
    return midnight.astimezone(UTC)


def set_now(value: dt.datetime | None) -> None:
    """Freeze the clock at `value` (aware datetime), or unfreeze with None. For tests and demos."""
    global _frozen
    if value is not None and value.tzinfo is None:
        raise ValueError("set_now needs an aware datetime")
    _frozen = value.astimezone(UTC) if value is not None else None


def as_utc(value: dt.datetime) -> dt.datetime:
    """Datetimes come back from SQLite naive; they are always stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
