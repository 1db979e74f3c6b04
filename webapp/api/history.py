"""Which transactions an app may ask for (SPEC §5, FAQ 3-Q2): about the last 3 months.

- The window reaches back the union's `history_months` (default 3) calendar months from today
  (JST): on 2026-11-18 the oldest date is 2026-08-18; on 05-31 it is 02-28 (the month is shorter).
- dateTo defaults to today, dateFrom to the window's oldest date; both are strict YYYY-MM-DD.
- A dateFrom older than the window is refused (date_from_too_old), never silently clamped: the app
  would otherwise believe it had everything. dateFrom after dateTo is refused (invalid_date_range).
- A nextItemKey carries the window of the first page, so paging on across midnight JST keeps the
  same rows: its dateFrom is accepted while inside the window of today or of yesterday.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re

from .problems import ApiError

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def months_back(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def oldest_date(today: dt.date, months: int) -> dt.date:
    return months_back(today, months)


def parse_date(name: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    if not _DATE.fullmatch(value):
        raise ApiError("invalid_date", f"{name}はYYYY-MM-DD形式の実在する日付で指定してください。")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError("invalid_date", f"{name}はYYYY-MM-DD形式の実在する日付で指定してください。") from None


def resolve(date_from: dt.date | None, date_to: dt.date | None, today: dt.date, months: int,
            *, continuing: bool = False) -> tuple[dt.date, dt.date]:
    """The (dateFrom, dateTo) to answer for, or ApiError. `continuing`: a nextItemKey's window."""
    oldest = oldest_date(today, months)
    if continuing:
        oldest = oldest_date(today - dt.timedelta(days=1), months)
    date_to = today if date_to is None else date_to
    date_from = oldest_date(today, months) if date_from is None else date_from
    if date_from < oldest:
        raise ApiError("date_from_too_old",
                       f"照会開始日（dateFrom）は{oldest.isoformat()}以降を指定してください（照会可能期間は{months}か月です）。")
    if date_from > date_to:
        raise ApiError("invalid_date_range")
    return date_from, date_to
