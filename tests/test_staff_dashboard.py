"""本日の状況: today's flows per step, locks, identity failures per address, the mail outbox."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from webapp import clock

from conftest import text_of
from staff_support import app_config, staff  # noqa: F401  (fixtures: fast hashing, amami's operator signed in)


def figure(page: str, label: str) -> int:
    return int(re.search(rf"<dt>{label}</dt><dd>([0-9]+)</dd>", page).group(1))


def step_row(page: str, name: str) -> list[int]:
    m = re.search(rf"<tr><td>{name}</td><td>([0-9]+)</td><td>([0-9]+)</td><td>([0-9]+)</td></tr>", page)
    return [int(x) for x in m.groups()]


def test_flows_started_abandoned_and_in_progress_per_step(app, staff, amami, maruhachi):
    amami.start()                      # flow 1: stops at ①, later idle → abandoned at ①
    amami.start()
    amami.account()                    # flow 2 (same browser, a new flow): at ②
    amami.get("flow/customer")
    amami.post("flow/cancel", {"confirm": "yes"})  # … cancelled at ②
    maruhachi.start()                  # the other union's: never counted here
    page = text_of(staff.get(""))
    assert figure(page, "開始") == 2 and figure(page, "完了（許可）") == 0
    assert figure(page, "中断") == 1
    assert step_row(page, "① ご利用口座情報入力") == [2, 0, 1]
    assert step_row(page, "② お客様情報入力") == [1, 1, 0]
    clock.set_now(clock.now() + dt.timedelta(minutes=16))
    staff.log_in()
    page = text_of(staff.get(""))
    assert figure(page, "中断") == 2 and step_row(page, "① ご利用口座情報入力") == [2, 1, 0]


def test_locks_today_and_failures_per_address(app, staff, amami):
    amami.start()
    amami.account()
    for _ in range(5):
        amami.customer(birth_year="1999")
    page = text_of(staff.get(""))
    assert '<dd id="locks-today">1</dd>' in page
    assert "115-1-1100026" in page  # still locked, with a link to the account
    m = re.search(r'<td>127\.0\.0\.1</td><td>([0-9]+)</td><td>([0-9]+)</td>', page)
    assert m and m.groups() == ("5", "1")


def test_mail_outbox_backlog(app, staff, amami):
    from test_oauth_support import tokens

    tokens(amami)  # a completed flow queues its completion mail
    page = text_of(staff.get(""))
    assert figure(page, "送信待ち") == 1 and figure(page, "完了（許可）") == 1
    assert step_row(page, "⑥ 情報連携認可")[0] == 1
