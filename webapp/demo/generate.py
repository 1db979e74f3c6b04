"""Writes the demo sandbox files amami.json and maruhachi.json from accounts.toml:
`python -m webapp.demo.generate`.

The files are committed; this script is how they were made, so they can be remade (for instance
with later dates). It is deterministic: each account draws from its own seeded generator, and a
test checks that the committed files are exactly what this script writes. Transactions run from
START to END with a running balance that never goes below zero; an account's balance is its last
transaction's. Debits fall on the next weekday, salaries on the previous one.
"""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import random
import tomllib

START = dt.date(2026, 8, 1)
END = dt.date(2026, 12, 31)
HERE = pathlib.Path(__file__).parent

# Each account: its core-banking facts, who it is for (note), and how its money moves (profile).
with (HERE / "accounts.toml").open("rb") as _f:
    ACCOUNTS: dict[str, list[dict]] = tomllib.load(_f)


def _days(start: dt.date = START, end: dt.date = END):
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def _months(start: dt.date = START, end: dt.date = END):
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _next_weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _previous_weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _movements(profile: dict, rng: random.Random, carried: dict) -> list[tuple[dt.date, str, int, str]]:
    """(date, type, amount, remarks) in no particular order; type "1" 入金, "2" 出金."""
    kind = profile["kind"]
    begin = dt.date.fromisoformat(profile.get("from_date", START.isoformat()))
    out = []
    if profile.get("moved_from"):
        out.append((begin, "1", carried[profile["moved_from"]], "ｲｶﾝ ﾆｭｳｷﾝ"))
    if kind == "savings":
        for year, month in _months():
            out.append((_next_weekday(dt.date(year, month, 26)), "1", 30_000, "ﾌﾘｶｴ ﾌﾂｳﾖｷﾝ"))
        out.append((dt.date(2026, 8, 17), "1", 152, "ﾘｿｸ"))
        return out
    if kind in ("closed", "moved"):
        end = dt.date.fromisoformat(profile.get("closed_on") or profile["moved_on"])
        for day in _days(START, end - dt.timedelta(days=1)):
            if day.weekday() < 5 and rng.random() < 0.12:
                out.append((day, "2", rng.randrange(1, 6) * 5_000, "ｶｰﾄﾞ"))
        out.append((_next_weekday(dt.date(2026, 8, 10)), "2", rng.randrange(4_000, 9_000), "ﾃﾞﾝｷﾘｮｳｷﾝ"))
        return out
    for year, month in _months():
        first = dt.date(year, month, 1)
        if profile.get("salary"):
            payday = _previous_weekday(dt.date(year, month, 25))
            if payday >= begin:
                out.append((payday, "1", profile["salary"], f"ｷｭｳﾖ {profile.get('employer', '')}".strip()))
        if profile.get("pension") and month % 2 == 0:
            out.append((_previous_weekday(dt.date(year, month, 15)), "1", profile["pension"], "ﾈﾝｷﾝ"))
        if first < begin:
            continue
        out.append((_next_weekday(dt.date(year, month, 10)), "2", rng.randrange(5_800, 14_900),
                    f"ﾃﾞﾝｷﾘｮｳｷﾝ {profile['utility']}"))
        out.append((_next_weekday(dt.date(year, month, 27)), "2", rng.randrange(3_900, 9_800), "NTTﾄﾞｺﾓ"))
        if month % 2 == 1:
            out.append((_next_weekday(dt.date(year, month, 20)), "2", rng.randrange(3_200, 7_600), "ｽｲﾄﾞｳﾘｮｳｷﾝ"))
        if kind == "salary":
            out.append((_next_weekday(dt.date(year, month, 27)), "2", rng.randrange(28_000, 126_000),
                        "ｸﾚｼﾞｯﾄｶｰﾄﾞ"))
            if profile.get("savings"):
                out.append((_next_weekday(dt.date(year, month, 26)), "2", 30_000, "ﾌﾘｶｴ ﾁｮﾁｸﾖｷﾝ"))
        if kind == "pension":
            out.append((_next_weekday(dt.date(year, month, 5)), "2", rng.randrange(8_000, 22_000), "ｶﾝﾎﾟｾｲﾒｲ"))
        if profile.get("bonus") and month == 12:
            out.append((_previous_weekday(dt.date(year, month, 10)), "1", profile["bonus"],
                        f"ｼｮｳﾖ {profile.get('employer', '')}".strip()))
        cash = "ﾏﾄﾞｸﾞﾁ ｼﾊﾗｲ" if profile.get("counter_only") else "ｶｰﾄﾞ"
        for _ in range(rng.randrange(2, 6)):
            day = dt.date(year, month, rng.randrange(1, 29))
            if day >= begin and (day.weekday() < 5 or not profile.get("counter_only")):
                out.append((day, "2", rng.randrange(1, 6) * 10_000, cash))
        if rng.random() < 0.4:
            day = _next_weekday(dt.date(year, month, rng.randrange(1, 27)))
            if day >= begin:
                out.append((day, "1", rng.randrange(1, 10) * 1_000 + rng.randrange(0, 1_000),
                            "ﾌﾘｺﾐ " + rng.choice(["ﾃﾞｰﾀ ﾖｼｺ", "ﾔﾏﾀﾞ ｹﾝｲﾁ", "ｽｽﾞｷ ﾐｶ", "ﾀﾅｶ ﾋﾛｼ"])))
    return out


def _book(opening: int, movements, profile: dict, carried: dict, number: str) -> tuple[list[dict], int]:
    """Running balance in booking order; withdrawals that would overdraw are dropped."""
    balance, rows = opening, []
    for day, kind, amount, remarks in sorted(movements, key=lambda m: (m[0], m[1])):
        if kind == "2" and amount > balance:
            continue
        balance += amount if kind == "1" else -amount
        rows.append({"date": day.isoformat(), "value_date": day.isoformat(), "type": kind, "amount": amount,
                     "remarks": remarks, "balance": balance})
    end_on = profile.get("closed_on") or profile.get("moved_on")
    if end_on and balance:
        remarks = "ｶｲﾔｸ" if profile["kind"] == "closed" else "ｲｶﾝ ｼｭｯｷﾝ"
        carried[number] = balance
        rows.append({"date": end_on, "value_date": end_on, "type": "2", "amount": balance,
                     "remarks": remarks, "balance": 0})
        balance = 0
    return rows, balance


def build(tenant: str) -> dict:
    """The sandbox file for `tenant`, as a dict in CONTRACT §3's format."""
    carried: dict[str, int] = {}
    accounts = []
    for spec in ACCOUNTS[tenant]:
        profile = spec["profile"]
        rng = random.Random(f"{tenant}/{spec['branch']}/{spec['type']}/{spec['number']}")
        rows, balance = _book(profile["opening"], _movements(profile, rng, carried), profile, carried,
                              spec["number"])
        fields = {k: v for k, v in spec.items() if k not in ("profile", "note")}
        accounts.append({**fields, "balance": balance, "note": spec["note"], "transactions": rows})
    return {"tenant": tenant, "accounts": accounts}


def dumps(doc: dict) -> str:
    """JSON with one transaction a line: readable in a diff, loadable by anything."""
    def one(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{", f'  "tenant": {one(doc["tenant"])},', '  "accounts": [']
    for i, acct in enumerate(doc["accounts"]):
        head = ", ".join(f"{one(k)}: {one(v)}" for k, v in acct.items() if k != "transactions")
        lines.append(f"    {{{head},")
        lines.append('      "transactions": [')
        txs = acct["transactions"]
        lines += [f"        {one(t)}{',' if j < len(txs) - 1 else ''}" for j, t in enumerate(txs)]
        lines.append(f"      ]}}{',' if i < len(doc['accounts']) - 1 else ''}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def main() -> None:
    for tenant in ACCOUNTS:
        path = HERE / f"{tenant}.json"
        path.write_text(dumps(build(tenant)), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
