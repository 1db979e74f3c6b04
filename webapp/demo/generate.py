"""Writes the demo sandbox files amami.json and maruhachi.json: `python -m webapp.demo.generate`.

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

START = dt.date(2026, 8, 1)
END = dt.date(2026, 12, 31)
HERE = pathlib.Path(__file__).parent

# Each account: its core-banking facts, who it is for (note), and how its money moves (profile).
ACCOUNTS = {
    "amami": [
        dict(branch="115", type="1", number="1100026", name_kana="ﾃﾞｰﾀ ﾀﾛｳ", birth_date="1980-01-01",
             phone="09011113333", pin="1234", cash_card=True, status="active",
             note="連携できる口座（普通預金）。デモの基本のお客様です。",
             profile=dict(kind="salary", opening=842_310, salary=286_400, bonus=412_000, utility="ｷｭｳﾃﾞﾝ",
                          employer="ｶ)ｱﾏﾐｼｮｳｼﾞ", savings="4100014")),
        dict(branch="115", type="4", number="4100014", name_kana="ﾃﾞｰﾀ ﾀﾛｳ", birth_date="1980-01-01",
             phone="09011113333", pin="1234", cash_card=True, status="active",
             note="連携できる口座（貯蓄預金）。普通預金から毎月積み立てています。",
             profile=dict(kind="savings", opening=1_520_000)),
        dict(branch="101", type="1", number="0000123", name_kana="ｱﾏﾐ ﾊﾅｺ", birth_date="1956-03-15",
             phone="0997521234", pin="9012", cash_card=True, status="active",
             note="連携できる口座（固定電話のお客様）。ロックアウトを試すときはこの口座をお使いください。",
             profile=dict(kind="pension", opening=1_283_900, pension=218_600, utility="ｷｭｳﾃﾞﾝ")),
        dict(branch="115", type="1", number="1100034", name_kana="ﾃﾞｰﾀ ｼﾞﾛｳ", birth_date="1985-04-12",
             phone="09022224444", pin="2345", cash_card=True, status="closed",
             note="解約済みの口座：②の「次へ」で「ご指定の口座は、本サービスではお取り扱いできません。」",
             profile=dict(kind="closed", opening=96_540, closed_on="2026-09-15")),
        dict(branch="115", type="1", number="1100042", name_kana="ﾃﾞｰﾀ ﾊﾅｺ", birth_date="1990-07-07",
             phone="08033335555", pin="3456", cash_card=True, status="moved",
             note="他の店舗へ移管済みの口座（移管先は店番120）：②の「次へ」で「ご指定の口座は、本サービスではお取り扱いできません。」",
             profile=dict(kind="moved", opening=351_200, moved_on="2026-09-01")),
        dict(branch="120", type="1", number="1200018", name_kana="ﾃﾞｰﾀ ﾊﾅｺ", birth_date="1990-07-07",
             phone="08033335555", pin="3456", cash_card=True, status="active",
             note="移管先の新しい口座（連携できます）。",
             profile=dict(kind="salary", opening=0, moved_from="1100042", salary=231_800, bonus=0,
                          utility="ｷｭｳﾃﾞﾝ", employer="ﾅｾﾞｼﾔｸｼｮ", from_date="2026-09-01")),
        dict(branch="115", type="1", number="1100050", name_kana="ﾃﾞｰﾀ ｻﾌﾞﾛｳ", birth_date="1972-11-03",
             phone="07044446666", pin="4567", cash_card=False, status="active",
             note="キャッシュカードのない口座：②の「次へ」で「ご指定の口座は、本サービスではお取り扱いできません。」",
             profile=dict(kind="salary", opening=604_750, salary=198_000, utility="ｷｭｳﾃﾞﾝ",
                          employer="ﾕ)ﾔﾏﾄｳﾝﾕ", counter_only=True)),
    ],
    "maruhachi": [
        dict(branch="201", type="1", number="0012345", name_kana="ﾏﾙﾊﾁ ﾊﾅｺ", birth_date="1975-05-20",
             phone="0534441234", pin="5678", cash_card=True, status="active",
             note="連携できる口座（普通預金）。デモの基本のお客様です。",
             profile=dict(kind="salary", opening=1_106_480, salary=312_500, bonus=455_000, utility="ﾁｭｳﾃﾞﾝ",
                          employer="ｶ)ﾊﾏﾏﾂｾｲｷ")),
        dict(branch="201", type="1", number="0012353", name_kana="ﾏﾙﾊﾁ ｲﾁﾛｳ", birth_date="1951-09-30",
             phone="09055557777", pin="6789", cash_card=True, status="active",
             note="連携できる口座（年金を受け取っているお客様）。ロックアウトを試すときはこの口座をお使いください。",
             profile=dict(kind="pension", opening=2_415_020, pension=236_300, utility="ﾁｭｳﾃﾞﾝ")),
        dict(branch="203", type="1", number="0034567", name_kana="ﾏﾙﾊﾁ ｼﾞﾛｳ", birth_date="1988-02-29",
             phone="08066668888", pin="7890", cash_card=True, status="closed",
             note="解約済みの口座：②の「次へ」で「ご指定の口座は、本サービスではお取り扱いできません。」",
             profile=dict(kind="closed", opening=48_900, closed_on="2026-10-05")),
    ],
}


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
