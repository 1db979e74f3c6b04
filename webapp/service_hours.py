"""Service hours: a union is closed inside any window of its maintenance calendar (JST).

The calendar is configuration (`[[maintenance]]` in `tenants/<id>.toml`), checked once at start-up
by `validate()`, which names the union and the rule of any mistake. Every customer screen and the
authorization start refuse service inside a window (SPEC §3 service-wide No.1), and the FAQ page
lists the same rules through `describe()`, so what a customer reads is what the checks enforce.

Rule kinds (times "HH:MM" in JST; a window is [start, end); `end <= start` ends the next day;
"24:00" is the end of the day):

- `daily`                                  every day
- `weekly`      `weekday`                  every such weekday
- `nth_weekday` `weekday`, `nth`           e.g. the 1st and 3rd Monday (`nth = [1, 3]`; -1 = last);
                [`offset_days`]            the window starts that many days from that weekday
                                           (-1: the day before; may fall in the previous month)
- `yearly`      `month`, `days`            e.g. 1–3 January
- `adhoc`       `start`, `end`             ISO datetimes (JST unless an offset is given)
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Iterable

from . import clock

JST = clock.JST
DAY_MINUTES = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS_JA = "月火水木金土日"
_HHMM = re.compile(r"([01]?[0-9]|2[0-4]):([0-5][0-9])")
_OFFSET_JA = {-2: "の前々日", -1: "の前日", 0: "", 1: "の翌日", 2: "の翌々日"}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb 29 exists in leap years

_KEYS = {  # kind → (required keys, optional keys), besides "kind"
    "daily": ({"start", "end"}, set()),
    "weekly": ({"start", "end", "weekday"}, set()),
    "nth_weekday": ({"start", "end", "weekday", "nth"}, {"offset_days"}),
    "yearly": ({"start", "end", "month", "days"}, set()),
    "adhoc": ({"start", "end"}, set()),
}


class CalendarError(ValueError):
    """A `[[maintenance]]` rule that cannot be understood; raised at start-up."""


@dataclasses.dataclass(frozen=True)
class Window:
    """One closure, as aware JST datetimes; `end` is when service resumes."""
    start: dt.datetime
    end: dt.datetime
    label: str


@dataclasses.dataclass(frozen=True)
class Rule:
    """One validated line of a calendar. Build with `validate()`."""
    kind: str
    start: int = 0                       # minutes after 00:00 on the day the window starts
    end: int = 0                         # minutes after 00:00; <= start: the next day
    weekday: int | None = None           # Monday = 0
    nth: tuple[int, ...] = ()
    offset_days: int = 0
    month: int | None = None
    days: tuple[int, ...] = ()
    period: tuple[dt.datetime, dt.datetime] | None = None   # adhoc

    def starts_on(self, day: dt.date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "weekly":
            return day.weekday() == self.weekday
        if self.kind == "nth_weekday":
            anchor = day - dt.timedelta(days=self.offset_days)
            if anchor.weekday() != self.weekday:
                return False
            last = (anchor + dt.timedelta(days=7)).month != anchor.month
            return (anchor.day - 1) // 7 + 1 in self.nth or (last and -1 in self.nth)
        if self.kind == "yearly":
            return day.month == self.month and day.day in self.days
        return False

    def window_containing(self, at: dt.datetime) -> Window | None:
        """This rule's window around `at`, if `at` is inside one (a rule's windows never overlap)."""
        if self.period is not None:
            start, end = self.period
            return Window(start, end, self.label) if start <= at < end else None
        # Compare minutes of the day first and build datetimes only for a hit: this runs per request.
        local = at.astimezone(JST)
        today = local.date()
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        overnight = self.end <= self.start
        if self.start <= minute < (DAY_MINUTES if overnight else self.end) and self.starts_on(today):
            day = today
        elif overnight and minute < self.end and self.starts_on(today - dt.timedelta(days=1)):
            day = today - dt.timedelta(days=1)
        else:
            return None
        start = dt.datetime.combine(day, dt.time(0), JST) + dt.timedelta(minutes=self.start)
        length = self.end - self.start + (DAY_MINUTES if overnight else 0)
        return Window(start, start + dt.timedelta(minutes=length), self.label)

    @functools.cached_property
    def label(self) -> str:
        return describe_rule(self)


# --- checking ------------------------------------------------------------------------------------

def maintenance_window_at(rules: Iterable, at: dt.datetime | None = None) -> Window | None:
    """The maintenance window the union is in at `at` (default: now), or None when it is open.

    Windows that overlap or follow each other without a gap (3 January 19:00–24:00, then the
    daily 00:00–00:01) are one closure: `end` is when service actually resumes.
    """
    at = clock.now() if at is None else at
    if at.tzinfo is None:
        raise ValueError("maintenance_window_at needs an aware datetime")
    rules = _as_rules(rules)
    found = _latest_ending(rules, at)
    if found is None:
        return None
    end = found.end
    for _ in range(31):  # bounded: a calendar of back-to-back whole days would otherwise never end
        following = _latest_ending(rules, end)
        if following is None or following.end <= end:
            break
        end = following.end
    return dataclasses.replace(found, start=found.start.astimezone(JST), end=end.astimezone(JST))


def _latest_ending(rules: tuple[Rule, ...], at: dt.datetime) -> Window | None:
    found = None
    for rule in rules:
        window = rule.window_containing(at)
        if window is not None and (found is None or window.end > found.end):
            found = window
    return found


# --- describing ----------------------------------------------------------------------------------

def describe(rules: Iterable, at: dt.datetime | None = None) -> list[str]:
    """One Japanese line per rule, for the FAQ page; ad hoc windows already over are left out."""
    at = clock.now() if at is None else at
    return [r.label for r in _as_rules(rules) if r.period is None or r.period[1] > at]


def describe_rule(rule: Rule) -> str:
    if rule.kind == "adhoc":
        return _describe_period(*rule.period)
    hours = f"{_hm(rule.start)}～{'翌' if rule.end <= rule.start else ''}{_hm(rule.end)}"
    if rule.kind == "daily":
        return f"毎日 {hours}"
    weekday = f"{_WEEKDAYS_JA[rule.weekday]}曜日" if rule.weekday is not None else ""
    if rule.kind == "weekly":
        return f"毎週{weekday} {hours}"
    if rule.kind == "nth_weekday":
        nths = "・".join("最終" if n == -1 else f"第{n}" for n in sorted(rule.nth, key=lambda n: n if n > 0 else 6))
        offset = _OFFSET_JA[rule.offset_days] if rule.offset_days in _OFFSET_JA else \
            f"の{abs(rule.offset_days)}日{'前' if rule.offset_days < 0 else '後'}"
        return f"毎月{nths}{weekday}{offset} {hours}"
    return f"{rule.month}月{_day_runs(rule.days)} {hours}"


def resumes_text(window: Window) -> str:
    """When a closure ends, for the maintenance notice: 「12月6日 7:00」 (JST; 24:00 reads as the next day's 0:00)."""
    end = window.end.astimezone(JST)
    return f"{end.month}月{end.day}日 {_clock(end)}"


def _hm(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _day_runs(days: tuple[int, ...]) -> str:
    """(1, 2, 3, 5) → 「1日～3日・5日」"""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [f"{r[0]}日～{r[-1]}日" if len(r) >= 3 else "・".join(f"{d}日" for d in r) for r in runs]
    return "・".join(parts)


def _describe_period(start: dt.datetime, end: dt.datetime) -> str:
    start, end = start.astimezone(JST), end.astimezone(JST)
    if end.time() == dt.time(0) and end.date() == start.date() + dt.timedelta(days=1):
        last = "24:00"
    elif end.date() == start.date():
        last = _clock(end)
    elif end.year == start.year:
        last = f"{end.month}月{end.day}日 {_clock(end)}"
    else:
        last = f"{end.year}年{end.month}月{end.day}日 {_clock(end)}"
    return f"{start.year}年{start.month}月{start.day}日 {_clock(start)}～{last}"


def _clock(moment: dt.datetime) -> str:
    return _hm(moment.hour * 60 + moment.minute)


# --- validating ----------------------------------------------------------------------------------

def validate(rules: Iterable, union: str = "") -> tuple[Rule, ...]:
    """Check a union's `[[maintenance]]` list and return it as rules; a mistake raises
    CalendarError naming the union, the rule's position (1-based) and what is wrong."""
    where = f"{union}: [[maintenance]]" if union else "[[maintenance]]"
    if isinstance(rules, (dict, str)):
        raise CalendarError(f"{where} must be a list of tables")
    return tuple(_parse_rule(raw, f"{where} #{i}") for i, raw in enumerate(rules, 1))


def _as_rules(rules: Iterable) -> tuple[Rule, ...]:
    rules = rules if isinstance(rules, tuple) else tuple(rules)
    return rules if all(isinstance(r, Rule) for r in rules) else validate(rules)


def _parse_rule(raw, where: str) -> Rule:
    if isinstance(raw, Rule):
        return raw
    if not isinstance(raw, dict):
        raise CalendarError(f"{where}: must be a table, got {raw!r}")
    kind = raw.get("kind")
    if kind not in _KEYS:
        raise CalendarError(f"{where}: 'kind' must be one of {', '.join(_KEYS)}, got {kind!r}")
    where = f"{where} (kind = {kind!r})"
    required, optional = _KEYS[kind]
    if missing := sorted(required - raw.keys()):
        raise CalendarError(f"{where}: missing {', '.join(missing)}")
    if unknown := sorted(raw.keys() - required - optional - {"kind"}):
        raise CalendarError(f"{where}: unknown key {', '.join(unknown)}")

    if kind == "adhoc":
        start, end = _datetime(raw["start"], "start", where), _datetime(raw["end"], "end", where)
        if end <= start:
            raise CalendarError(f"{where}: 'end' must be after 'start'")
        return Rule(kind, period=(start, end))

    fields = {"start": _minutes(raw["start"], "start", where, end=False),
              "end": _minutes(raw["end"], "end", where, end=True)}
    if "weekday" in raw:
        if raw["weekday"] not in WEEKDAYS:
            raise CalendarError(f"{where}: 'weekday' must be one of {', '.join(WEEKDAYS)}, got {raw['weekday']!r}")
        fields["weekday"] = WEEKDAYS.index(raw["weekday"])
    if "nth" in raw:
        fields["nth"] = _int_list(raw["nth"], "nth", where, allowed=(-1, 1, 2, 3, 4, 5))
    if "offset_days" in raw:
        fields["offset_days"] = _int(raw["offset_days"], "offset_days", where, range(-31, 32))
    if kind == "yearly":
        month = fields["month"] = _int(raw["month"], "month", where, range(1, 13))
        fields["days"] = _int_list(raw["days"], "days", where, allowed=range(1, _DAYS_IN_MONTH[month - 1] + 1))
    return Rule(kind, **fields)


def _minutes(value, key: str, where: str, *, end: bool) -> int:
    if isinstance(value, dt.time) and not value.second and not value.microsecond and value.tzinfo is None:
        return value.hour * 60 + value.minute
    m = _HHMM.fullmatch(value) if isinstance(value, str) else None
    minutes = int(m[1]) * 60 + int(m[2]) if m else -1
    if not 0 <= minutes <= DAY_MINUTES or (minutes == DAY_MINUTES and not end):
        latest = "24:00" if end else "23:59"
        raise CalendarError(f"{where}: '{key}' must be a time \"HH:MM\" from 00:00 to {latest}, got {value!r}")
    return minutes


def _datetime(value, key: str, where: str) -> dt.datetime:
    try:
        parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None:
        raise CalendarError(f"{where}: '{key}' must be a date and time like \"2026-12-05T22:00\", got {value!r}")
    return parsed.replace(tzinfo=JST) if parsed.tzinfo is None else parsed


def _int(value, key: str, where: str, allowed) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise CalendarError(f"{where}: '{key}' must be a whole number in {_span(allowed)}, got {value!r}")
    return value


def _int_list(value, key: str, where: str, allowed) -> tuple[int, ...]:
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(values, list) or not values:
        raise CalendarError(f"{where}: '{key}' must be a non-empty list, got {value!r}")
    return tuple(sorted({_int(v, key, where, allowed) for v in values}))


def _span(allowed) -> str:
    return f"{allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else ", ".join(map(str, allowed))
