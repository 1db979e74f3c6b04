"""Each union's FAQ page (SPEC §4): its own answers, its contact, and the service hours generated
from the same calendar the screens are closed by."""
from __future__ import annotations

import datetime as dt
import pathlib
import re

import pytest

from conftest import make_app, text_of
from webapp import clock, messages, tenants

AMAMI_HOURS = [
    "毎日 0:00～0:01",
    "毎日 4:00～4:05",
    "毎月第1・第3月曜日 2:00～6:00",
    "毎月第2・第4日曜日の前日 23:50～翌7:00",
    "1月1日～3日 0:00～8:00",
    "1月1日～3日 19:00～24:00",
]
MARUHACHI_HOURS = [
    "毎日 0:00～0:01",
    "毎日 4:00～4:05",
    "毎月第1・第3月曜日 2:00～6:00",
    "毎月第2・第4日曜日 23:40～翌0:10",
    "毎月第2・第4日曜日の前日 23:50～翌7:00",
    "毎月第2・第4日曜日の前々日 23:40～翌0:10",
    "1月1日～3日 0:00～8:00",
    "1月1日～3日 19:00～24:00",
]
OTHER_MAINTENANCE = "その他システムメンテナンスの場合"
ACCOUNT_MOVED_Q = "これまで本アプリの認証で使っていた口座を別の店舗に移動(移管)した。どうすればよいか。"


def service_hours_listed(page: str) -> list[str]:
    listing = re.search(r'<ul class="service-hours">(.*?)</ul>', page, re.S)
    assert listing, "the FAQ 3-Q1 list of service hours is missing"
    return re.findall(r"<li>(.*?)</li>", listing.group(1))


@pytest.mark.parametrize("union, hours", [("amami", AMAMI_HOURS), ("maruhachi", MARUHACHI_HOURS)])
def test_faq_lists_each_rule_of_the_unions_calendar(client, union, hours):
    page = client.get(f"/{union}/faq")
    assert page.status_code == 200
    assert "API連携認証がサービス時間外となる時間を確認したい" in text_of(page)
    assert service_hours_listed(text_of(page)) == hours + [OTHER_MAINTENANCE]


def test_amami_faq_shows_its_contact_with_a_tap_to_call_number(client):
    page = text_of(client.get("/amami/faq"))
    assert "奄美信用組合 企画部 ITシステム課" in page
    assert '<a href="tel:0997527111">0997-52-7111</a>' in page
    assert "平日の午前9時～17時" in page
    assert "mailto:" not in page


def test_maruhachi_faq_shows_its_contact_with_phone_and_email(client):
    page = text_of(client.get("/maruhachi/faq"))
    assert "丸八信用組合 管理課" in page
    assert '<a href="tel:0120758408">0120-7584-08</a>' in page
    assert '<a href="mailto:kanri@maruhachi-shinkumi.jp">kanri@maruhachi-shinkumi.jp</a>' in page
    assert "平日の午前9時～17時" in page


@pytest.mark.parametrize("union, answer, other_answer", [
    ("amami", "お口座のある店舗にお問い合わせください。", "窓口にお問い合わせください。"),
    ("maruhachi", "窓口にお問い合わせください。", "お口座のある店舗にお問い合わせください。"),
])
def test_faq_1_q1_gives_the_unions_own_answer(client, union, answer, other_answer):
    page = text_of(client.get(f"/{union}/faq"))
    assert "信用組合に届け出した電話番号がどれだか分からない（忘れた）。" in page
    assert f"<dd>{answer}</dd>" in page
    assert other_answer not in page


def test_amami_faq_answers_account_moved_to_another_branch(client):
    page = text_of(client.get("/amami/faq"))
    assert ACCOUNT_MOVED_Q in page
    assert "旧店舗・旧口座番号(011-1111111)でのアプリ利用(情報更新、API連携認証)は不可となります。" in page


def test_maruhachi_faq_has_no_account_moved_question(client):
    page = text_of(client.get("/maruhachi/faq"))
    assert ACCOUNT_MOVED_Q not in page
    assert "旧店舗・旧口座番号" not in page


def test_faq_stays_readable_inside_a_maintenance_window(client):
    clock.set_now(dt.datetime(2026, 11, 7, 23, 55, tzinfo=clock.JST))  # the night before the 2nd Sunday
    page = client.get("/amami/faq")
    assert page.status_code == 200
    assert 'role="alert"' not in text_of(page)  # the FAQ itself, not the maintenance notice
    assert service_hours_listed(text_of(page)) == AMAMI_HOURS + [OTHER_MAINTENANCE]


def test_adhoc_maintenance_in_the_configuration_is_listed_and_closes_the_screens(tmp_path, database_url):
    source = pathlib.Path(tenants.__file__).parent
    for path in source.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == "maruhachi":
            text += ('\n[[maintenance]]\nkind = "adhoc"\nstart = "2026-12-05T22:00"\nend = "2026-12-06T06:00"\n'
                     '\n[[maintenance]]\nkind = "adhoc"\nstart = "2026-11-01T22:00"\nend = "2026-11-02T01:00"\n')
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    app = make_app(database_url, TENANTS_DIR=str(tmp_path))
    try:
        client = app.test_client()
        listed = service_hours_listed(text_of(client.get("/maruhachi/faq")))
        assert listed == MARUHACHI_HOURS + ["2026年12月5日 22:00～12月6日 6:00", OTHER_MAINTENANCE]  # the past one is gone

        clock.set_now(dt.datetime(2026, 12, 5, 22, 0, tzinfo=clock.JST))
        closed = client.get("/maruhachi/flow/account")
        assert closed.status_code == 503 and messages.MAINTENANCE in text_of(closed)
        assert client.get("/amami/flow/account").status_code != 503
    finally:
        app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("union", ["amami", "maruhachi"])
def test_faq_title_names_the_union_once(client, union):
    title = re.search(r"<title>(.*?)</title>", text_of(client.get(f"/{union}/faq")), re.S).group(1)
    name = {"amami": "奄美信用組合", "maruhachi": "丸八信用組合"}[union]
    assert title == f"よくあるご質問｜{name}"


def test_amami_account_moved_answer_has_the_manuals_example(client):
    page = text_of(client.get("/amami/faq"))
    assert "いままで 011店舗 口座番号1111111" in page and "022店舗 口座番号2222222" in page
    assert "旧店舗・旧口座番号(011-1111111)" in page and "新店舗・新口座番号(022-2222222)" in page


def error_section(page: str) -> list[tuple[str, str | None]]:
    """(message, 対処方法 or None) for each entry of 「エラーメッセージが表示されたとき」."""
    section = re.search(r'<section class="faq errors".*?</section>', page, re.S)
    assert section, "the FAQ has no section for error messages"
    entries = re.findall(r'<li>\s*<p class="error-message">(.*?)</p>(.*?)</li>', section.group(0), re.S)
    return [(message, (re.findall(r"<dt>対処方法</dt><dd>(.*?)</dd>", rest) or [None])[0]) for message, rest in entries]


@pytest.mark.parametrize("union, lock_advice", [
    ("amami", "お急ぎの場合は、当信用組合にお問合せください。"),
    ("maruhachi", None),  # 丸八's manual gives none for No.4
])
def test_faq_explains_every_error_message_and_what_to_do(client, union, lock_advice):
    entries = dict(error_section(text_of(client.get(f"/{union}/faq"))))
    assert entries[messages.ACCOUNT_NOT_SERVICEABLE] == "キャッシュカードや通帳を参照し、正しい科目、口座番号を入力する。"
    assert entries[messages.IDENTITY_MISMATCH] == "当信用組合に届けている情報を正しく入力する。"
    assert entries[messages.LOCKED_NOW] == "アカウントロックは翌日0時に自動解除されますので、その後改めて操作する。"
    assert entries[f"{messages.LOCKED} {messages.LOCKED_REASON}"] == lock_advice
    assert entries[messages.MAINTENANCE] == "上記の時間を避けて、改めて操作する。"
    assert entries[messages.BUSY] == "しばらくしてから、改めて操作する。"
    assert entries[messages.SYSTEM_ERROR].startswith("しばらくしてから、改めて操作し")
    assert messages.UNAVAILABLE in entries
