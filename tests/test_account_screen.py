"""① SOA201 ご利用口座情報入力: field rules, the 「エラー」 dialog, and what each union offers."""
import re

import pytest

from conftest import text_of


def test_screen_one_shows_manual_texts_and_footer(amami):
    html = text_of(amami.start())
    assert "当信用組合をご利用いただきましてありがとうございます。お手元にご利用中の口座のキャッシュカードをご準備いただき口座情報を入力してください。" in html
    assert "免責事項" in html and "注意事項" in html
    assert "本機能はお客様の金融情報をアイ・ティ・リアライズ株式会社に提供するものです。" in html
    assert "画面ID : SOA201" in html
    assert 'href="tel:0997527111"' in html and "0997-52-7111" in html
    assert "API利用規定" in html and "よくあるご質問" in html and 'href="/amami/faq"' in html
    assert "Copyright © 2021 奄美信用組合 All Rights Reserved." in html


def test_amami_offers_ordinary_and_savings_deposits(amami):
    html = text_of(amami.start())
    assert '<option value="1" selected>普通預金</option>' in html or '<option value="1">普通預金</option>' in html
    assert ">貯蓄預金</option>" in html


def test_maruhachi_offers_only_ordinary_deposits(maruhachi):
    html = text_of(maruhachi.start())
    assert ">普通預金</option>" in html
    assert "貯蓄預金" not in html
    assert "丸八信用組合" in html and 'href="tel:0120758408"' in html


def test_missing_fields_show_error_dialog_and_required_under_each(amami):
    amami.start()
    response = amami.account(branch="", number="")
    html = text_of(response)
    assert response.status_code == 200
    assert "<h2 id=\"error-dialog-title\">エラー</h2>" in html
    assert "入力されていない項目があります。" in html
    assert re.findall(r'<p class="field-error" id="([a-z_]+)-error">必ず入力して下さい。</p>', html) == \
        ["branch", "account_number"]
    assert ">OK</button>" in html


def test_missing_fields_keep_entered_values(amami):
    amami.start()
    html = text_of(amami.account(branch="115", number=""))
    assert 'value="115"' in html
    assert "必ず入力して下さい。" in html


def test_htmx_post_gets_only_the_form_partial(amami):
    amami.start()
    response = amami.account(branch="", number="", htmx=True)
    html = text_of(response)
    assert "HX-Request" in response.headers["Vary"]
    assert "入力されていない項目があります。" in html
    assert "<html" not in html and 'id="screen"' in html


def test_htmx_success_redirects_with_hx_redirect(amami):
    amami.start()
    response = amami.account(htmx=True)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/amami/flow/customer"


@pytest.mark.parametrize("branch", ["11", "1155", "11a", "１１"])
def test_branch_must_be_three_digits(amami, branch):
    amami.start()
    html = text_of(amami.account(branch=branch))
    assert "半角数字3桁で入力して下さい。" in html


def test_full_width_digits_are_accepted_in_branch_and_number(amami):
    amami.start()
    response = amami.account(branch="１１５", number="１１０００２６")
    assert response.status_code == 303


def test_short_account_number_is_zero_padded_to_seven(amami):
    amami.start()
    amami.account(number="26")
    html = text_of(amami.get("flow/customer"))
    assert "店番 115 普通預金 0000026" in html


@pytest.mark.parametrize("number", ["12345678", "12a4567"])
def test_account_number_up_to_seven_digits(amami, number):
    amami.start()
    assert "半角数字7桁以内で入力して下さい。" in text_of(amami.account(number=number))


def test_account_type_outside_the_unions_list_is_refused(maruhachi):
    maruhachi.start()
    response = maruhachi.account(account_type="4")
    assert response.status_code == 200
    assert "/flow/customer" not in response.headers.get("Location", "")
