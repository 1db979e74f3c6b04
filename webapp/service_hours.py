"""Service hours: each union's maintenance calendar (tenants/<id>.toml [[maintenance]]), in JST.

(Placeholder: evaluates nothing yet; the calendar rules land with their tests.)
"""
from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    label: str


def maintenance_window_at(rules, at: dt.datetime | None = None) -> Window | None:
    return None


def describe(rules) -> list[str]:
    return [r.get("label", "") for r in rules]
