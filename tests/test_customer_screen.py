"""② SOA202 お客様情報入力: field rules and the checks against the core banking record."""
import datetime as dt

import re

import pytest
from sqlmodel import select

from conftest import add_account, text_of
from webapp import clock, db
from webapp.flow.models import Flow
from webapp.oplog import OperationLog


@pytest.fixture
def at_customer(amami):
    amami.start()
    amami.account()
    return amami


def test_customer_screen_shows_account_entered_on_screen_one(at_customer):
    html = text_of(at_customer.get("flow/customer"))
    assert "店番 115 普通預金 1100026" in html
    assert "本人確認を行います。" in html and "お名前、生年月日、電話番号を入力してください。" in html
    assert "画面ID : SOA202" in html
    assert "中止する" in html


def test_missing_fields_dialog_on_customer_screen(at_customer):
    html = text_of(at_customer.customer(name_kana="", birth_year="", phone="", email="", email_confirm=""))
    assert "入力されていない項目があります。" in html
    under_fields = re.findall(r'<p class="field-error" id="([a-z_]+)-error">必ず入力して下さい。</p>', html)
    assert under_fields == ["name_kana", "birth_year", "phone", "email", "email_confirm"]


def test_birth_month_and_day_start_unchosen(at_customer):
    html = text_of(at_customer.get("flow/customer"))
    assert '<option value="" selected>--</option>' in html
    assert '<option value="01" selected>' not in html


def test_untouched_month_and_day_are_required_not_an_identity_check(at_customer):
    """Only the year typed: 「必ず入力して下さい。」 for month and day, the 「エラー」 dialog naming
    them, and nothing counted toward the lock (core banking is not asked)."""
    html = text_of(at_customer.customer(birth_month="", birth_day=""))
    assert "入力されていない項目があります。" in html
    assert '<p class="field-error" id="birth_month-error">必ず入力して下さい。</p>' in html
    assert '<p class="field-error" id="birth_day-error">必ず入力して下さい。</p>' in html
    assert re.search(r'<select id="birth_month"[^>]*aria-invalid="true"', html)
    assert re.search(r'<select id="birth_day"[^>]*aria-invalid="true"', html)
    assert '<li><a href="#birth_month">生年月日（月）</a></li>' in html
    with at_customer.app.app_context():
        assert db.session().exec(select(OperationLog).where(OperationLog.event == "identity_check")).all() == []


@pytest.mark.parametrize("typed, western", [
    ("昭和55", "1980"), ("S55", "1980"), ("s55", "1980"), ("昭和５５年", "1980"), ("平成2", "1990"),
    ("平成元年", "1989"), ("H1", "1989"), ("令和3", "2021"), ("1980", "1980"), ("１９８０", "1980"),
])
def test_birth_year_accepts_japanese_era_years(typed, western):
    from webapp.fields import western_year

    assert western_year(typed) == western


def test_a_japanese_era_year_passes_two(at_customer):
    """The demo customer was born in 1980 (昭和55): typed as 和暦, ② passes."""
    assert at_customer.customer(birth_year="昭和55").status_code == 303


def test_kana_hint_says_hiragana_and_katakana_are_fine(at_customer):
    html = text_of(at_customer.get("flow/customer"))
    assert "ひらがな・カタカナで入力できます (例) ﾃﾞｰﾀ ﾀﾛｳ" in html
    assert "昭和55・S55 のような和暦でも入力できます" in html


@pytest.mark.parametrize("name", ["データ タロウ", "でーた たろう", "ﾃﾞｰﾀ ﾀﾛｳ", "データ　タロウ"])
def test_kana_name_accepts_hiragana_and_full_width_katakana(at_customer, name):
    assert at_customer.customer(name_kana=name).status_code == 303
    with at_customer.app.app_context():
        flow = db.session().exec(select(Flow)).one()
        assert flow.name_kana == "ﾃﾞｰﾀ ﾀﾛｳ"


def test_kana_name_rejects_kanji(at_customer):
    assert "半角カタカナで入力して下さい。" in text_of(at_customer.customer(name_kana="山田太郎"))


def test_kana_name_at_most_48_characters(at_customer):
    assert "48文字以内で入力して下さい。" in text_of(at_customer.customer(name_kana="ｱ" * 49))
    assert at_customer.customer(name_kana="ｱ" * 48).status_code == 303


def test_birth_date_must_exist(at_customer):
    html = text_of(at_customer.customer(birth_year="1980", birth_month="02", birth_day="30"))
    assert "存在しない日付です。" in html


def test_birth_date_not_in_the_future(at_customer):
    html = text_of(at_customer.customer(birth_year="2027"))
    assert "未来の日付は入力できません。" in html


@pytest.mark.parametrize("field", ["birth_month", "birth_day"])
def test_huge_birth_month_gets_field_message_not_500(at_customer, field):
    # a select is only a suggestion to a browser: anything can be posted, here a number int() takes
    # but no date does (OverflowError, not ValueError)
    response = at_customer.customer(**{field: "99999999999999999999"})
    assert response.status_code == 200
    html = text_of(response)
    assert '<p class="field-error" id="birth_year-error">存在しない日付です。生年月日を確認して下さい。</p>' in html
    assert 'value="1980"' in html and 'value="09011113333"' in html and 'value="taro@example.jp"' in html


@pytest.mark.parametrize("month, day", [("13", "01"), ("00", "01"), ("01", "32"), ("1", "1"), ("-1", "01"),
                                        ("01", "０１")])
def test_birth_month_or_day_not_on_the_list_gets_field_message(at_customer, month, day):
    html = text_of(at_customer.customer(birth_month=month, birth_day=day))
    assert "存在しない日付です。生年月日を確認して下さい。" in html


def test_birth_year_four_digits(at_customer):
    assert "西暦（半角数字4桁）、または昭和55のような和暦で入力して下さい。" in text_of(at_customer.customer(birth_year="80"))


@pytest.mark.parametrize("phone", ["090111133", "090111133334", "0901111333a"])
def test_phone_10_or_11_digits(at_customer, phone):
    assert "半角数字10桁または11桁で入力して下さい。" in text_of(at_customer.customer(phone=phone))


@pytest.mark.parametrize("phone", ["090-1111-3333", "０９０－１１１１－３３３３", "090ー1111ー3333"])
def test_phone_hyphens_and_full_width_are_normalised(at_customer, phone):
    assert at_customer.customer(phone=phone).status_code == 303


def test_email_must_be_valid(at_customer):
    html = text_of(at_customer.customer(email="taro@", email_confirm="taro@"))
    assert "メールアドレスの形式が正しくありません。" in html


def test_email_at_most_64_characters(at_customer):
    long = "a" * 55 + "@example.jp"  # 66
    assert "64文字以内で入力して下さい。" in text_of(at_customer.customer(email=long, email_confirm=long))


def test_email_confirmation_must_match(at_customer):
    html = text_of(at_customer.customer(email="taro@example.jp", email_confirm="jiro@example.jp"))
    assert "メールアドレスが一致しません。" in html


def test_full_width_email_is_normalised(at_customer):
    assert at_customer.customer(email="ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", email_confirm="taro@example.jp").status_code == 303


def test_wrong_birth_date_gets_error_2(at_customer):
    html = text_of(at_customer.customer(birth_year="1981"))
    assert "本人認証情報が誤っています。本人認証項目をご確認のうえ、再度入力して下さい。" in html


def test_wrong_phone_gets_error_2(at_customer):
    assert "本人認証情報が誤っています。" in text_of(at_customer.customer(phone="09099998888"))


def test_name_is_not_checked_only_logged(at_customer):
    response = at_customer.customer(name_kana="ﾍﾞﾂ ﾅﾏｴ")
    assert response.status_code == 303
    with at_customer.app.app_context():
        rows = db.session().exec(select(OperationLog).where(OperationLog.event == "identity_check")).all()
        assert rows[-1].name_kana == "ﾍﾞﾂ ﾅﾏｴ" and rows[-1].result == "ok"


def test_email_is_not_checked(at_customer):
    assert at_customer.customer(email="other@example.com", email_confirm="other@example.com").status_code == 303


@pytest.mark.parametrize("status,cash_card", [("closed", True), ("moved", True), ("active", False)])
def test_unusable_account_gets_error_1_back_on_screen_one(app, amami, status, cash_card):
    add_account(app, "amami", branch="115", account_type="1", number="2200001", name_kana="ｱ", birth_date=dt.date(1970, 1, 1),
                phone="09000000001", pin="0000", status=status, cash_card=cash_card)
    amami.start()
    amami.account(number="2200001")
    response = amami.customer(birth_year="1970", phone="09000000001", follow_redirects=True)
    html = text_of(response)
    assert "ご指定の口座は、本サービスではお取り扱いできません。" in html
    assert "（ご利用口座情報入力）" in html
    assert 'value="2200001"' in html


def test_unknown_account_gets_error_1(amami):
    amami.start()
    amami.account(number="9999999")
    html = text_of(amami.customer(follow_redirects=True))
    assert "ご指定の口座は、本サービスではお取り扱いできません。" in html


def test_savings_account_of_amami_is_checked_with_its_type(app, amami):
    add_account(app, "amami", branch="115", account_type="4", number="1100026", name_kana="ｱ",
                birth_date=dt.date(1990, 3, 3), phone="09022224444", pin="4321")
    amami.start()
    amami.account(account_type="4")
    assert amami.customer(birth_year="1990", birth_month="03", birth_day="03", phone="09022224444").status_code == 303


def test_success_stores_registered_phone_for_call_step(at_customer):
    at_customer.customer()
    with at_customer.app.app_context():
        flow = db.session().exec(select(Flow)).one()
        assert flow.step == "phone" and flow.phone_e164 == "+819011113333"


def test_field_errors_are_summarised_at_the_top_as_links_and_in_the_title(at_customer):
    """Without JavaScript the page reloads at its top: the GOV.UK error summary is what the customer
    meets first (it takes focus), each wrong field a link to it, and the title says エラー."""
    html = text_of(at_customer.customer(name_kana="", phone="12"))
    summary = re.search(r'<div class="error-summary"[^>]*autofocus>(.*?)</div>', html, re.S)
    assert summary, "no error summary"
    assert html.index('class="error-summary"') < html.index("<form method=\"post\"")
    assert re.findall(r'<li><a href="#([a-z_]+)">', summary.group(1)) == ["name_kana", "phone"]
    assert '<a href="#name_kana">お名前：必ず入力して下さい。</a>' in summary.group(1)
    assert re.search(r"<title>エラー：API連携認証（お客様情報入力）｜奄美信用組合</title>", html)


def test_required_dialog_names_each_missing_field_as_a_link(at_customer):
    html = text_of(at_customer.customer(name_kana="", email="", email_confirm=""))
    dialog = re.search(r'<dialog open data-modal class="error-dialog".*?</dialog>', html, re.S).group(0)
    assert 'aria-modal="true"' in dialog
    assert re.findall(r'<li><a href="#([a-z_]+)">(.*?)</a></li>', dialog) == [
        ("name_kana", "お名前"), ("email", "メールアドレス"), ("email_confirm", "メールアドレス（確認用）")]


def test_a_clean_screen_has_no_summary_and_a_plain_title(at_customer):
    html = text_of(at_customer.get("flow/customer"))
    assert "error-summary" not in html and "<title>API連携認証（お客様情報入力）｜奄美信用組合</title>" in html


def test_identity_mismatch_is_announced_once(at_customer):
    """The alertdialog is announced; the banner left on the page after OK is not a second alert."""
    html = text_of(at_customer.customer(phone="09099999999"))
    assert html.count("本人認証情報が誤っています。") == 2  # banner + dialog, shown
    assert html.count('role="alert"') == 0 and html.count('role="alertdialog"') == 1
