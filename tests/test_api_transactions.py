"""Transactions: newest first by (date desc, seq desc), at most 500 a page, keyset paging that never
skips or repeats a row, about the last 3 months (the union's history_months)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from webapp import clock
from webapp.api import history

from conftest import DEMO, add_account
from test_api_support import ApiActions, add_transactions, api, daily_rows, sandbox_account_id  # noqa: F401

TODAY = dt.date(2026, 11, 18)  # conftest's QUIET_TIME
OLDEST = dt.date(2026, 8, 18)


@pytest.fixture(params=["sqlite", "postgres"])
def engine_app(request):
    """The same rule on both engines the product supports."""
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    add_account(app, "amami", **DEMO["amami"])
    return app


def keys_of(rows) -> list[str]:
    return [r["itemKey"] for r in rows]


def test_default_window_is_three_months_to_today_newest_first(api):
    account = sandbox_account_id(api.app)
    add_transactions(api.app, account, [(dt.date(2026, 8, 17), 1), (OLDEST, 2), (dt.date(2026, 10, 1), 3),
                                        (dt.date(2026, 10, 1), 4), (TODAY, 5)])
    body = api.transactions().get_json()
    assert (body["dateFrom"], body["dateTo"]) == ("2026-08-18", "2026-11-18")
    assert keys_of(body["transactions"]) == ["20261118-5", "20261001-4", "20261001-3", "20260818-2"]
    assert (body["hasNext"], body["nextItemKey"], body["count"], body["currencyCode"]) == (False, None, 4, "JPY")
    assert body["transactions"][0] == {"itemKey": "20261118-5", "transactionDate": "2026-11-18",
                                       "valueDate": "2026-11-18", "transactionType": "1", "amount": 1005,
                                       "remarks": "取引5", "balance": 1000005}


def test_the_stdlib_encoder_writes_the_same_page_as_orjson(api, monkeypatch):
    # The rows' dates reach json_response as date objects; without orjson (or when it refuses a
    # value) json.dumps must write them, and every other byte, exactly as orjson does.
    from webapp.api import problems

    add_transactions(api.app, sandbox_account_id(api.app), [(dt.date(2026, 10, 1), 1), (TODAY, 2)])
    fast = api.transactions().get_data()
    monkeypatch.setattr(problems, "orjson", None)
    assert api.transactions().get_data() == fast
    assert b'"transactionDate":"2026-11-18","valueDate":"2026-11-18"' in fast


def test_explicit_window_is_inclusive(api):
    add_transactions(api.app, sandbox_account_id(api.app),
                     [(dt.date(2026, 9, 30), 1), (dt.date(2026, 10, 1), 2), (dt.date(2026, 10, 31), 3),
                      (dt.date(2026, 11, 1), 4)])
    body = api.transactions(dateFrom="2026-10-01", dateTo="2026-10-31").get_json()
    assert keys_of(body["transactions"]) == ["20261031-3", "20261001-2"]


def test_pages_hold_at_most_500_and_cover_every_row_exactly_once(engine_app):
    api = ApiActions(engine_app, engine_app.test_client(), "amami")
    rows = daily_rows(OLDEST, TODAY, per_day=13)  # 93 days × 13 = 1,209 rows
    add_transactions(engine_app, sandbox_account_id(engine_app), rows)
    pages = api.all_pages()
    assert [len(p) for p in pages] == [500, 500, 209]
    seen = [r["itemKey"] for page in pages for r in page]
    expected = [f"{d:%Y%m%d}-{s}" for d, s in sorted(rows, reverse=True)]
    assert seen == expected


def test_rows_booked_between_pages_are_never_skipped_or_repeated(engine_app):
    api = ApiActions(engine_app, engine_app.test_client(), "amami")
    account = sandbox_account_id(engine_app)
    rows = daily_rows(OLDEST, TODAY, per_day=11)  # 1,023 rows
    add_transactions(engine_app, account, rows)
    first = api.transactions().get_json()
    # New bookings arrive: today (after every row read so far) and, late, on a day not yet read.
    late_seq = len(rows) + 1
    add_transactions(engine_app, account, [(TODAY, late_seq), (TODAY, late_seq + 1), (dt.date(2026, 9, 1), late_seq + 2)])
    seen = keys_of(first["transactions"])
    key = first["nextItemKey"]
    while key:
        body = api.transactions(nextItemKey=key).get_json()
        seen += keys_of(body["transactions"])
        key = body["nextItemKey"]
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(f"{d:%Y%m%d}-{s}" for d, s in rows) <= set(seen)  # nothing skipped
    assert f"20260901-{late_seq + 2}" in seen  # a row landing in the unread part is picked up
    fresh = keys_of(api.transactions().get_json()["transactions"])  # a new first page shows today's arrivals
    assert fresh[:2] == [f"20261118-{late_seq + 1}", f"20261118-{late_seq}"]


def test_paging_on_across_midnight_keeps_the_first_pages_window(app, client, customers):
    api = ApiActions(app, client, "amami", access_seconds=86400)
    add_transactions(api.app, sandbox_account_id(api.app), daily_rows(OLDEST, TODAY, per_day=6))  # 558
    first = api.transactions().get_json()
    clock.set_now(dt.datetime(2026, 11, 19, 0, 10, tzinfo=clock.JST))
    second = api.transactions(nextItemKey=first["nextItemKey"]).get_json()
    assert (second["dateFrom"], second["dateTo"]) == ("2026-08-18", "2026-11-18")
    assert second["transactions"][-1]["transactionDate"] == "2026-08-18"
    assert len(first["transactions"]) + len(second["transactions"]) == 558


def test_next_item_key_from_days_ago_is_refused_once_its_window_has_passed(app, client, customers):
    api = ApiActions(app, client, "amami", access_seconds=7 * 86400)
    add_transactions(api.app, sandbox_account_id(api.app), daily_rows(OLDEST, TODAY, per_day=6))
    key = api.transactions().get_json()["nextItemKey"]
    clock.set_now(dt.datetime(2026, 11, 21, 14, 0, tzinfo=clock.JST))
    response = api.transactions(nextItemKey=key)
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "date_from_too_old"


def test_date_from_older_than_the_window_gets_400(api):
    response = api.transactions(dateFrom="2026-08-17")
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "date_from_too_old"
    assert api.transactions(dateFrom="2026-08-18").status_code == 200


def test_window_follows_the_unions_history_months(api):
    tenants = api.app.extensions["tenants"]
    tenants["amami"] = dataclasses.replace(tenants["amami"], history_months=1)
    assert api.transactions(dateFrom="2026-10-17").get_json()["errorCode"] == "date_from_too_old"
    assert api.transactions().get_json()["dateFrom"] == "2026-10-18"


def test_date_from_after_date_to_gets_400(api):
    response = api.transactions(dateFrom="2026-11-02", dateTo="2026-11-01")
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "invalid_date_range"
    future = api.transactions(dateFrom="2026-11-19")  # dateTo defaults to today
    assert future.get_json()["errorCode"] == "invalid_date_range"


@pytest.mark.parametrize("value", ["2026-02-30", "20261001", "2026-1-01", "２０２６-１１-０１", "", "2026-11-01T00:00",
                                   "yesterday"])
@pytest.mark.parametrize("name", ["dateFrom", "dateTo"])
def test_bad_dates_get_400_invalid_date(api, name, value):
    response = api.transactions(**{name: value})
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "invalid_date"


def test_tampered_or_foreign_next_item_key_gets_400(app, client, customers):
    api = ApiActions(app, client, "amami")
    other = ApiActions(app, client, "amami")  # another app: another accountId
    add_transactions(app, sandbox_account_id(app), daily_rows(OLDEST, TODAY, per_day=6))
    key = api.transactions().get_json()["nextItemKey"]
    tampered = key[:-2] + ("AA" if key[-2:] != "AA" else "BB")
    for bad in (tampered, "garbage", "x" * 100, key + "A"):
        response = api.transactions(nextItemKey=bad)
        assert response.status_code == 400, bad
        assert response.get_json()["errorCode"] == "invalid_next_item_key"
    assert other.transactions(nextItemKey=key).get_json()["errorCode"] == "invalid_next_item_key"


def test_next_item_key_with_a_different_window_gets_400(api):
    add_transactions(api.app, sandbox_account_id(api.app), daily_rows(OLDEST, TODAY, per_day=6))
    key = api.transactions(dateFrom="2026-08-20").get_json()["nextItemKey"]
    assert api.transactions(nextItemKey=key, dateFrom="2026-08-20").status_code == 200
    response = api.transactions(nextItemKey=key, dateFrom="2026-10-01")
    assert response.get_json()["errorCode"] == "invalid_next_item_key"


def test_page_size_never_exceeds_500_even_if_configured_higher(app, client, customers):
    app.config["API_PAGE_SIZE"] = 10_000
    api = ApiActions(app, client, "amami")
    add_transactions(app, sandbox_account_id(app), daily_rows(OLDEST, TODAY, per_day=6))  # 558
    body = api.transactions().get_json()
    assert (body["count"], body["hasNext"]) == (500, True)


@pytest.mark.parametrize("today,months,oldest", [
    (dt.date(2026, 11, 18), 3, dt.date(2026, 8, 18)),
    (dt.date(2026, 5, 31), 3, dt.date(2026, 2, 28)),
    (dt.date(2028, 5, 31), 3, dt.date(2028, 2, 29)),
    (dt.date(2026, 2, 15), 3, dt.date(2025, 11, 15)),
])
def test_window_is_calendar_months_clamped_to_the_month_end(today, months, oldest):
    assert history.oldest_date(today, months) == oldest
