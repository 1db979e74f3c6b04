"""Service hours (SPEC §4 calendars, §3 service-wide No.1): each rule of each union at its edges, on
real dates (months whose 2nd Sunday falls early and late), the rule kinds' arithmetic, start-up
validation, and the screens a customer sees inside and outside a window."""
from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from conftest import make_app, text_of
from webapp import clock, messages, service_hours, tenants
from webapp.service_hours import CalendarError, Window, maintenance_window_at

TENANTS_DIR = pathlib.Path(tenants.__file__).parent
CALENDARS = {t.id: t.maintenance for t in tenants.load_tenants(TENANTS_DIR).values()}
MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)


def jst(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=clock.JST)


def window(union: str, at: str) -> Window | None:
    return maintenance_window_at(CALENDARS[union], jst(at))


def assert_window(rules, start: str, end: str, label: str, *, resumes: str | None = None) -> None:
    """Open a minute before `start`; inside from `start` to a second before `end`; open at `end`.

    `resumes`: when a window follows without a gap, service resumes later than `end`.
    """
    s, e = jst(start), jst(end)
    expected = Window(s, jst(resumes) if resumes else e, label)
    assert maintenance_window_at(rules, s - MINUTE) is None, f"open before {start}"
    for t in (s, e - MINUTE, e - SECOND):
        assert maintenance_window_at(rules, t) == expected, f"closed at {t:%Y-%m-%d %H:%M:%S}"
    if resumes is None:
        assert maintenance_window_at(rules, e) is None, f"open again at {end}"


def assert_open(union: str, *times: str) -> None:
    for at in times:
        assert window(union, at) is None, f"{union} should be open at {at}"


# --- 奄美信用組合 ------------------------------------------------------------------------------------

def test_amami_calendar_is_the_manuals():
    assert service_hours.describe(CALENDARS["amami"]) == [
        "毎日 0:00～0:01",
        "毎日 4:00～4:05",
        "毎月第1・第3月曜日 2:00～6:00",
        "毎月第2・第4日曜日の前日 23:50～翌7:00",
        "1月1日～3日 0:00～8:00",
        "1月1日～3日 19:00～24:00",
    ]


def test_amami_closed_daily_0000_to_0001():
    assert_window(CALENDARS["amami"], "2026-11-18 00:00", "2026-11-18 00:01", "毎日 0:00～0:01")


def test_amami_closed_daily_0400_to_0405():
    assert_window(CALENDARS["amami"], "2026-11-18 04:00", "2026-11-18 04:05", "毎日 4:00～4:05")


@pytest.mark.parametrize("monday", ["2026-11-02", "2026-11-16", "2026-09-07", "2026-09-21"])
def test_amami_closed_first_and_third_monday_0200_to_0600(monday):
    assert_window(CALENDARS["amami"], f"{monday} 02:00", f"{monday} 06:00", "毎月第1・第3月曜日 2:00～6:00")


def test_amami_open_on_second_fourth_and_fifth_monday_nights():
    assert_open("amami", "2026-11-09 03:00", "2026-11-23 03:00", "2026-11-30 03:00", "2026-09-14 03:00")


@pytest.mark.parametrize("saturday, sunday", [
    ("2026-11-07", "2026-11-08"),  # 2nd Sunday as early as it gets
    ("2026-11-21", "2026-11-22"),
    ("2026-06-13", "2026-06-14"),  # 2nd Sunday as late as it gets
    ("2026-06-27", "2026-06-28"),
])
def test_amami_closed_from_2350_the_day_before_second_and_fourth_sunday_until_0700(saturday, sunday):
    label = "毎月第2・第4日曜日の前日 23:50～翌7:00"
    assert_window(CALENDARS["amami"], f"{saturday} 23:50", f"{sunday} 07:00", label)
    # the daily windows inside it do not cut the closure short
    assert window("amami", f"{sunday} 00:00").end == jst(f"{sunday} 07:00")
    assert window("amami", f"{sunday} 04:02").end == jst(f"{sunday} 07:00")


def test_amami_open_the_night_before_first_third_and_fifth_sunday():
    assert_open("amami", "2026-10-31 23:55", "2026-11-14 23:55", "2026-11-28 23:55", "2026-11-07 23:49")


def test_amami_closed_january_1_to_3_from_0000_to_0800():
    label = "1月1日～3日 0:00～8:00"
    assert_window(CALENDARS["amami"], "2027-01-01 00:00", "2027-01-01 08:00", label)
    for day in ("2027-01-02", "2027-01-03", "2026-01-03"):
        assert window("amami", f"{day} 00:00") == Window(jst(f"{day} 00:00"), jst(f"{day} 08:00"), label)
        assert window("amami", f"{day} 07:59").end == jst(f"{day} 08:00")
    assert_open("amami", "2027-01-01 08:00", "2027-01-03 08:00", "2027-01-04 07:00", "2026-12-31 07:00")


def test_amami_closed_january_1_to_3_from_1900_to_2400():
    label = "1月1日～3日 19:00～24:00"
    # 3 January's evening runs into the daily 0:00–0:01, so service resumes at 0:01 on the 4th
    assert_window(CALENDARS["amami"], "2027-01-03 19:00", "2027-01-04 00:00", label, resumes="2027-01-04 00:01")
    assert_open("amami", "2027-01-04 00:01", "2027-01-01 18:59", "2027-01-04 19:00", "2026-12-31 19:00")


def test_back_to_back_windows_are_one_closure():
    """1 January 19:00–24:00 then 2 January 0:00–8:00: closed until 8:00, not 'until midnight'."""
    for union in ("amami", "maruhachi"):
        assert window(union, "2027-01-01 23:59") == Window(jst("2027-01-01 19:00"), jst("2027-01-02 08:00"),
                                                           "1月1日～3日 19:00～24:00")


# --- 丸八信用組合 ------------------------------------------------------------------------------------

def test_maruhachi_calendar_is_the_manuals():
    assert service_hours.describe(CALENDARS["maruhachi"]) == [
        "毎日 0:00～0:01",
        "毎日 4:00～4:05",
        "毎月第1・第3月曜日 2:00～6:00",
        "毎月第2・第4日曜日 23:40～翌0:10",
        "毎月第2・第4日曜日の前日 23:50～翌7:00",
        "毎月第2・第4日曜日の前々日 23:40～翌0:10",
        "1月1日～3日 0:00～8:00",
        "1月1日～3日 19:00～24:00",
    ]


def test_maruhachi_closed_daily_0000_to_0001():
    """毎日0時から1分程度 (screen ②'s error list, SPEC §4)."""
    assert_window(CALENDARS["maruhachi"], "2026-11-18 00:00", "2026-11-18 00:01", "毎日 0:00～0:01")


def test_maruhachi_closed_daily_0400_to_0405():
    """毎日4時から数分程度."""
    assert_window(CALENDARS["maruhachi"], "2026-11-18 04:00", "2026-11-18 04:05", "毎日 4:00～4:05")


@pytest.mark.parametrize("monday", ["2026-11-02", "2026-11-16", "2026-09-07", "2026-09-21"])
def test_maruhachi_closed_first_and_third_monday_0200_to_0600(monday):
    assert_window(CALENDARS["maruhachi"], f"{monday} 02:00", f"{monday} 06:00", "毎月第1・第3月曜日 2:00～6:00")


@pytest.mark.parametrize("sunday, monday", [
    ("2026-11-08", "2026-11-09"),
    ("2026-11-22", "2026-11-23"),
    ("2026-06-14", "2026-06-15"),
    ("2026-06-28", "2026-06-29"),
    ("2027-02-28", "2027-03-01"),  # ends in the next month
])
def test_maruhachi_closed_second_and_fourth_sunday_2340_until_0010_monday(sunday, monday):
    assert_window(CALENDARS["maruhachi"], f"{sunday} 23:40", f"{monday} 00:10", "毎月第2・第4日曜日 23:40～翌0:10")


@pytest.mark.parametrize("saturday, sunday", [
    ("2026-11-07", "2026-11-08"), ("2026-11-21", "2026-11-22"),
    ("2026-06-13", "2026-06-14"), ("2026-06-27", "2026-06-28"),
])
def test_maruhachi_closed_from_2350_the_day_before_second_and_fourth_sunday_until_0700(saturday, sunday):
    assert_window(CALENDARS["maruhachi"], f"{saturday} 23:50", f"{sunday} 07:00",
                  "毎月第2・第4日曜日の前日 23:50～翌7:00")


@pytest.mark.parametrize("friday, saturday", [
    ("2026-11-06", "2026-11-07"), ("2026-11-20", "2026-11-21"),
    ("2026-06-12", "2026-06-13"), ("2026-06-26", "2026-06-27"),
])
def test_maruhachi_closed_from_2340_two_days_before_second_and_fourth_sunday_until_0010(friday, saturday):
    assert_window(CALENDARS["maruhachi"], f"{friday} 23:40", f"{saturday} 00:10",
                  "毎月第2・第4日曜日の前々日 23:40～翌0:10")


def test_maruhachi_open_around_first_third_and_fifth_sunday():
    assert_open("maruhachi",
                "2026-10-30 23:45", "2026-10-31 23:55", "2026-11-01 23:45",   # 1st Sunday's weekend
                "2026-11-13 23:45", "2026-11-14 23:55", "2026-11-15 23:45",   # 3rd
                "2026-11-27 23:45", "2026-11-28 23:55", "2026-11-29 23:45")   # 5th


def test_maruhachi_closed_january_1_to_3_from_0000_to_0800():
    label = "1月1日～3日 0:00～8:00"
    assert_window(CALENDARS["maruhachi"], "2027-01-01 00:00", "2027-01-01 08:00", label)
    assert window("maruhachi", "2027-01-03 00:00") == Window(jst("2027-01-03 00:00"), jst("2027-01-03 08:00"), label)
    assert_open("maruhachi", "2027-01-03 08:00", "2027-01-04 07:00")


def test_maruhachi_closed_january_1_to_3_from_1900_to_2400():
    # as for 奄美, the evening runs into the daily 0:00–0:01: service resumes at 0:01 on the 4th
    assert_window(CALENDARS["maruhachi"], "2027-01-03 19:00", "2027-01-04 00:00", "1月1日～3日 19:00～24:00",
                  resumes="2027-01-04 00:01")
    assert_open("maruhachi", "2027-01-02 18:59", "2027-01-04 00:01", "2027-01-04 19:00")


# --- the rule kinds ----------------------------------------------------------------------------

def test_adhoc_window_closes_from_its_start_until_its_end():
    rules = service_hours.validate([{"kind": "adhoc", "start": "2026-12-05T22:00", "end": "2026-12-06T06:00"}])
    assert_window(rules, "2026-12-05 22:00", "2026-12-06 06:00", "2026年12月5日 22:00～12月6日 6:00")


def test_adhoc_times_with_an_offset_are_taken_as_given():
    rules = [{"kind": "adhoc", "start": "2026-12-05T13:00+00:00", "end": "2026-12-05T14:00Z"}]
    assert maintenance_window_at(rules, jst("2026-12-05 22:00")).label == "2026年12月5日 22:00～23:00"
    assert maintenance_window_at(rules, jst("2026-12-05 23:00")) is None


def test_faq_leaves_out_adhoc_windows_already_over():
    rules = [{"kind": "daily", "start": "00:00", "end": "00:01"},
             {"kind": "adhoc", "start": "2026-11-01T22:00", "end": "2026-11-02T00:00"},
             {"kind": "adhoc", "start": "2026-12-31T22:00", "end": "2027-01-01T01:30"}]
    assert service_hours.describe(rules, at=jst("2026-11-18 14:00")) == [
        "毎日 0:00～0:01", "2026年12月31日 22:00～2027年1月1日 1:30"]
    assert service_hours.describe(rules, at=jst("2026-11-01 23:00"))[1] == "2026年11月1日 22:00～24:00"


def test_day_before_first_sunday_can_fall_in_the_previous_month():
    rules = [{"kind": "nth_weekday", "weekday": "sun", "nth": [1], "offset_days": -1, "start": "22:00", "end": "02:00"}]
    assert_window(rules, "2026-10-31 22:00", "2026-11-01 02:00", "毎月第1日曜日の前日 22:00～翌2:00")
    assert_window(rules, "2026-10-03 22:00", "2026-10-04 02:00", "毎月第1日曜日の前日 22:00～翌2:00")
    assert maintenance_window_at(rules, jst("2026-11-30 23:00")) is None  # 1 December is a Tuesday


def test_last_weekday_and_days_after_it_can_reach_into_the_next_month():
    rules = [{"kind": "nth_weekday", "weekday": "sun", "nth": [-1], "offset_days": 1, "start": "01:00", "end": "03:00"}]
    assert_window(rules, "2027-03-01 01:00", "2027-03-01 03:00", "毎月最終日曜日の翌日 1:00～3:00")  # after 28 Feb
    assert_window(rules, "2026-11-30 01:00", "2026-11-30 03:00", "毎月最終日曜日の翌日 1:00～3:00")
    assert maintenance_window_at(rules, jst("2026-11-23 02:00")) is None  # after the 4th, not the last


def test_weekly_window_every_such_weekday():
    rules = [{"kind": "weekly", "weekday": "wed", "start": "12:00", "end": "13:00"}]
    for day in ("2026-11-04", "2026-11-11", "2026-11-18"):
        assert_window(rules, f"{day} 12:00", f"{day} 13:00", "毎週水曜日 12:00～13:00")


def test_describe_reads_offsets_and_day_lists_in_japanese():
    rules = [{"kind": "nth_weekday", "weekday": "fri", "nth": [-1, 2], "offset_days": -3, "start": "01:00", "end": "02:00"},
             {"kind": "yearly", "month": 5, "days": [7, 3, 4, 5, 9, 10], "start": "00:00", "end": "24:00"}]
    assert service_hours.describe(rules) == ["毎月第2・最終金曜日の3日前 1:00～2:00",
                                             "5月3日～5日・7日・9日・10日 0:00～24:00"]


def test_time_is_read_in_jst_whatever_zone_it_comes_in():
    midnight_jst_in_utc = dt.datetime(2026, 11, 17, 15, 0, tzinfo=dt.timezone.utc)
    assert maintenance_window_at(CALENDARS["amami"], midnight_jst_in_utc).label == "毎日 0:00～0:01"
    assert maintenance_window_at(CALENDARS["amami"], dt.datetime(2026, 11, 18, 0, 0, tzinfo=dt.timezone.utc)) is None
    with pytest.raises(ValueError):
        maintenance_window_at(CALENDARS["amami"], dt.datetime(2026, 11, 18, 0, 0))


def test_without_a_time_the_clock_decides():
    clock.set_now(jst("2026-11-18 04:02"))
    assert maintenance_window_at(CALENDARS["amami"]).label == "毎日 4:00～4:05"
    clock.set_now(jst("2026-11-18 04:05"))
    assert maintenance_window_at(CALENDARS["amami"]) is None


# --- validation at start-up ----------------------------------------------------------------------

ADHOC_BACKWARDS = '\n[[maintenance]]\nkind = "adhoc"\nstart = "2026-12-06T06:00"\nend = "2026-12-05T22:00"\n'


@pytest.mark.parametrize("union, old, new, expected", [
    ("amami", 'kind = "daily"', 'kind = "dayly"', "amami: [[maintenance]] #1: 'kind' must be one of"),
    ("amami", 'end = "04:05"', 'end = "4:65"', "amami: [[maintenance]] #2 (kind = 'daily'): 'end' must be a time"),
    ("amami", 'nth = [1, 3]', 'nth = [1, 6]', "#3 (kind = 'nth_weekday'): 'nth' must be a whole number in -1, 1, 2, 3, 4, 5"),
    ("amami", 'weekday = "sun"', 'weekday = "sunday"', "amami: [[maintenance]] #4 (kind = 'nth_weekday'): 'weekday'"),
    ("amami", 'offset_days = -1', 'offest_days = -1', "amami: [[maintenance]] #4 (kind = 'nth_weekday'): unknown key offest_days"),
    ("amami", 'nth = [2, 4]\n', '', "amami: [[maintenance]] #4 (kind = 'nth_weekday'): missing nth"),
    ("amami", 'month = 1\ndays = [1, 2, 3]', 'month = 2\ndays = [28, 29, 30]', "#5 (kind = 'yearly'): 'days' must be a whole number in 1..29, got 30"),
    ("amami", 'start = "19:00"', 'start = "24:00"', "#6 (kind = 'yearly'): 'start' must be a time \"HH:MM\" from 00:00 to 23:59"),
    ("maruhachi", 'end = "00:10"', 'end = "0010"', "maruhachi: [[maintenance]] #4 (kind = 'nth_weekday'): 'end'"),
    ("maruhachi", 'offset_days = -2', 'offset_days = "-2"', "maruhachi: [[maintenance]] #6 (kind = 'nth_weekday'): 'offset_days'"),
    ("maruhachi", None, ADHOC_BACKWARDS, "maruhachi: [[maintenance]] #9 (kind = 'adhoc'): 'end' must be after 'start'"),
])
def test_a_typo_in_a_calendar_fails_at_start_up_naming_union_and_rule(tmp_path, union, old, new, expected):
    for path in TENANTS_DIR.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == union:
            if old is None:
                text += new
            else:
                assert old in text
                text = text.replace(old, new, 1)
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError) as raised:
        make_app(f"sqlite:///{tmp_path / 'db.sqlite3'}", TENANTS_DIR=str(tmp_path))
    assert expected in str(raised.value)


# --- what the customer sees ----------------------------------------------------------------------

# 中止する and its result screen stay open inside a window (test_maintenance_notice.py): a customer can always leave.
FLOW_SCREENS = ["flow/account", "flow/customer", "flow/phone", "flow/call", "flow/pin", "flow/consent"]


def assert_maintenance_notice(response):
    assert response.status_code == 503
    assert messages.MAINTENANCE in text_of(response)


def test_every_screen_and_the_authorization_start_are_closed_inside_a_window(amami):
    clock.set_now(jst("2026-11-18 23:50"))
    amami.through_customer()                          # a customer is at ③ when the window opens
    clock.set_now(jst("2026-11-19 00:00"))

    for path in FLOW_SCREENS:
        assert_maintenance_notice(amami.get(path))
    assert_maintenance_notice(amami.account())
    assert_maintenance_notice(amami.post("flow/customer", amami.customer_data()))
    partial = amami.get("flow/phone", headers={"HX-Request": "true"})
    assert_maintenance_notice(partial)
    assert "<html" not in text_of(partial)
    assert_maintenance_notice(amami.client.get("/amami/oauth/authorize", query_string=amami.authorize_params()))

    clock.set_now(jst("2026-11-19 00:01"))            # the window is over: the flow carries on
    page = amami.get("flow/phone")
    assert page.status_code == 200 and "（電話番号の確認）" in text_of(page)
    assert amami.start().status_code == 200


def test_maintenance_is_each_unions_own(amami, maruhachi):
    clock.set_now(jst("2026-11-06 23:45"))           # Maruhachi: two days before the 2nd Sunday
    assert_maintenance_notice(maruhachi.client.get("/maruhachi/oauth/authorize",
                                                   query_string=maruhachi.authorize_params()))
    assert_maintenance_notice(maruhachi.get("flow/account"))
    page = amami.start()
    assert page.status_code == 200 and "（ご利用口座情報入力）" in text_of(page)


def test_outside_every_window_the_screens_work(maruhachi):
    clock.set_now(jst("2026-11-06 23:39"))
    page = maruhachi.start()
    assert page.status_code == 200 and "（ご利用口座情報入力）" in text_of(page)
    assert messages.MAINTENANCE not in text_of(page)
