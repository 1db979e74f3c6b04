"""Screens ③ SOA208 and ④ SOA209 as the customer sees them, with the clock moved instead of waiting."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from conftest import QUIET_TIME, text_of
from test_callauth_support import (PHONE_E164, attempts, call_from_registered_phone, call_log, e164, flows,
                                   log_rows, pool_number_on, poll, signed_call, to_call_screen, to_phone_screen)
from webapp import clock
from webapp.callauth import service

EXPIRED_120 = "お電話の受付時間（120秒）が過ぎました。"  # issue 11: plainly, then what to do (retry, or 最初に戻る)


def later(seconds: float):
    clock.set_now(QUIET_TIME + dt.timedelta(seconds=seconds))


# --- ③ ------------------------------------------------------------------------------------------

def test_phone_screen_masks_all_but_last_four_digits(amami):
    body = text_of(to_phone_screen(amami))
    assert "API連携認証（電話番号の確認）" in body and "画面ID : SOA208" in body
    assert "電話番号での認証を行います。" in body and "お届け出電話番号" in body
    assert "*******3333" in body
    assert "09011113333" not in body and "9011113333" not in body and "1111" not in body
    assert "電話番号の決定" in body and "中止する" in body


def test_phone_screen_masks_a_ten_digit_number(maruhachi):
    body = text_of(to_phone_screen(maruhachi))
    assert "******1234" in body and "0534441234" not in body and "053444" not in body


@pytest.mark.parametrize("digits, masked", [("09011113333", "*******3333"), ("0534441234", "******1234"),
                                            ("0312345678", "******5678")])
def test_mask_keeps_only_the_last_four_digits(digits, masked):
    assert service.mask(digits) == masked
    assert service.masked_phone(service.caller_e164(digits)) == masked


def test_a_phone_is_read_from_e164_as_phonenumbers_parses_it():
    """national_digits builds a +81 number without parsing it (service._read_e164): for what ② stores
    from any 10 or 11 digits a customer may type, and for numbers in other forms, the national digits
    are phonenumbers' own."""
    import random

    import phonenumbers

    from webapp.flow.customer import e164

    def parsed(number):
        return re.sub(r"[^0-9]", "", phonenumbers.format_number(phonenumbers.parse(number, "JP"),
                                                                phonenumbers.PhoneNumberFormat.NATIONAL))

    rng = random.Random(15)
    typed = ["".join(rng.choice("0123456789") for _ in range(rng.choice((10, 11)))) for _ in range(4000)]
    typed += ["09011113333", "0534441234", "0120111001", "0080636083", "0101234567", "00376801234", "9011113333"]
    stored = set()
    for t in typed:
        try:
            stored.add(e164(t))
        except phonenumbers.NumberParseException:  # phonenumbers cannot read it: nothing to compare
            pass
    stored |= {"+8190", "+81", "+819011113333x", "+1 202 555 0100", "+442079460000", "+810312345678"}
    built = 0
    for number in sorted(stored):
        try:
            expected = parsed(number)
        except phonenumbers.NumberParseException:
            continue
        assert service.national_digits(number) == expected, number
        built += number.startswith("+81") and number[3:].isdigit() and number[3] != "0"
    assert built > 3000  # most took the shortcut


def test_deciding_the_phone_leads_to_the_call_screen(amami):
    to_phone_screen(amami)
    response = amami.post("flow/phone", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/call")


def test_deciding_the_phone_without_csrf_token_changes_nothing(amami):
    to_phone_screen(amami)
    amami.csrf = "forged"
    response = amami.post("flow/phone", {})
    assert response.status_code == 400
    assert [f.step for f in flows(amami.app)] == ["phone"]


def test_call_screen_cannot_be_reached_before_the_phone_is_decided(amami):
    to_phone_screen(amami)
    response = amami.get("flow/call")
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/phone")
    assert attempts(amami.app) == []


def test_cancel_on_phone_screen_reaches_cancel_screen(amami):
    to_phone_screen(amami)
    response = amami.post("flow/cancel", {"confirm": "yes"}, follow_redirects=True)
    assert "API連携認証を中止しました。" in text_of(response)


# --- ④ ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_call_screen_shows_caller_masked_and_a_pool_number_as_tel_link(request, tenant):
    actions = request.getfixturevalue(tenant)
    page = to_call_screen(actions)
    body = text_of(page)
    assert "API連携認証（電話番号認証）" in body and "画面ID : SOA209" in body
    assert "発信元" in body and "発信先" in body and "認証先電話番号（通話料無料）" in body
    assert service.masked_phone(PHONE_E164[tenant]) in body
    number = pool_number_on(page)
    assert number in [n for n in actions.app.extensions["tenants"][tenant].call_pool]
    assert "本画面が表示されてから120秒以内に、お電話ください。" in body
    assert "「186」" in body and "2～3コール後、自動で電話が切れ、認証完了します。アナウンスは流れません。" in body
    assert "確定する" in body and "中止する" in body


def test_call_screen_reload_keeps_the_same_number_and_window(amami):
    first = to_call_screen(amami)
    later(60)
    again = amami.get("flow/call")
    assert pool_number_on(again) == pool_number_on(first)
    [attempt] = attempts(amami.app)
    assert attempt.started_at == QUIET_TIME.astimezone(dt.timezone.utc)
    assert attempt.expires_at - attempt.started_at == dt.timedelta(seconds=120)


def test_confirm_before_the_call_stays_with_waiting_for_call(amami):
    to_call_screen(amami)
    response = amami.post("flow/call", {})
    assert response.status_code == 200
    body = text_of(response)
    assert "API連携認証（電話番号認証）" in body
    # the answer stands right under the button pressed, not in the status area far above
    assert re.search(r'確定する</button>\s*<p class="pressed-early" id="pressed-early">認証中（認証着信待ち）</p>',
                     body)
    assert [f.step for f in flows(amami.app)] == ["call"]


def test_confirm_before_the_call_with_htmx_swaps_the_screen(amami):
    to_call_screen(amami)
    response = amami.post("flow/call", {}, htmx=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    body = text_of(response)
    assert body.strip().startswith('<div id="screen"') and "認証中（認証着信待ち）" in body and "<html" not in body


def test_confirm_after_the_call_leads_to_pin_screen(amami):
    page = to_call_screen(amami)
    later(30)
    assert call_from_registered_phone(amami, page).status_code == 200
    response = amami.post("flow/call", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/pin")
    pin = amami.get("flow/pin")
    assert "（キャッシュカード暗証番号認証）" in text_of(pin)
    assert [f.step for f in flows(amami.app)] == ["pin"]
    assert [a.state for a in attempts(amami.app)] == ["used"]


def test_confirm_after_the_call_with_htmx_redirects_to_pin(amami):
    page = to_call_screen(amami)
    call_from_registered_phone(amami, page)
    response = amami.post("flow/call", {}, htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith("/amami/flow/pin")


def test_a_confirmed_call_is_used_once(amami):
    page = to_call_screen(amami)
    call_from_registered_phone(amami, page)
    csrf = amami.csrf
    amami.post("flow/call", {})
    amami.csrf = csrf
    again = amami.post("flow/call", {})
    assert again.status_code == 303 and again.headers["Location"].endswith("/flow/pin")
    assert [f.step for f in flows(amami.app)] == ["pin"]
    assert len([r for r in log_rows(amami.app) if r.event == "call_confirm" and r.result == "ok"]) == 1


def test_confirm_after_the_window_is_refused_with_the_manual_message(amami):
    page = to_call_screen(amami)
    later(60)
    call_from_registered_phone(amami, page)  # the call came in time …
    later(121)
    response = amami.post("flow/call", {})  # … but 「確定する」 did not
    body = text_of(response)
    assert EXPIRED_120 in body and ">最初に戻る</button>" in body
    assert [f.step for f in flows(amami.app)] == ["call"]


def test_window_ends_exactly_at_the_configured_seconds(amami):
    page = to_call_screen(amami)
    later(119.999)
    assert 'hx-trigger' in text_of(poll(amami))
    call_from_registered_phone(amami, page)  # still inside: counts
    assert "着信を確認しました。" in text_of(poll(amami))
    later(120)
    body = text_of(poll(amami))
    assert EXPIRED_120 in body and "hx-trigger" not in body


def test_call_after_the_window_does_not_authenticate(amami):
    page = to_call_screen(amami)
    later(121)
    call_from_registered_phone(amami, page)
    assert [a.state for a in attempts(amami.app)] == ["waiting"]
    [row] = call_log(amami.app)
    assert row.result == "fail" and row.detail.startswith("late ")
    later(122)
    assert EXPIRED_120 in text_of(amami.post("flow/call", {}))


@pytest.mark.parametrize("app_config", [{"PHONE_AUTH_WINDOW_SECONDS": 45}])
def test_configured_window_changes_the_seconds_everywhere(amami, app_config):
    body = text_of(to_call_screen(amami))
    assert "本画面が表示されてから45秒以内に、お電話ください。" in body
    later(46)
    expired = text_of(amami.get("flow/call"))
    assert "お電話の受付時間（45秒）が過ぎました。" in expired
    assert "120秒" not in expired


def test_expired_screen_offers_restart_at_screen_one_in_the_same_request(amami):
    to_call_screen(amami)
    later(121)
    amami.get("flow/call")
    response = amami.post("flow/call/restart", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/account")
    page = amami.get("flow/account")
    assert "API連携認証（ご利用口座情報入力）" in text_of(page)
    old, new = sorted(flows(amami.app), key=lambda f: f.id)
    assert old.outcome == "expired" and old.ended_at is not None
    assert new.step == "account" and new.ended_at is None
    assert (new.client_id, new.redirect_uri, new.oauth_request) == (old.client_id, old.redirect_uri, old.oauth_request)
    assert new.phone_e164 is None and new.branch is None  # nothing of the old flow carries over


def test_restart_is_refused_while_the_window_runs(amami):
    to_call_screen(amami)
    response = amami.post("flow/call/restart", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/call")
    assert [f.ended_at for f in flows(amami.app)] == [None]


def test_old_flow_cannot_be_used_after_restart(amami):
    page = to_call_screen(amami)
    later(121)
    amami.post("flow/call/restart", {})
    later(122)
    call_from_registered_phone(amami, page)
    response = amami.get("flow/call")
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/account")


# --- the polled status --------------------------------------------------------------------------

def test_waiting_status_polls_itself_every_two_seconds(amami):
    to_call_screen(amami)
    response = poll(amami)
    body = text_of(response)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert body.strip().startswith('<div id="call-status"') and "<html" not in body
    assert 'hx-trigger="every 2s"' in body and 'hx-get="/amami/flow/call/status"' in body
    assert len(body) < 600  # the smallest fragment that can change


def test_status_shows_the_call_and_stops_polling(amami):
    page = to_call_screen(amami)
    call_from_registered_phone(amami, page)
    body = text_of(poll(amami))
    assert "着信を確認しました。「確定する」ボタンを押してください。" in body
    assert "hx-trigger" not in body and "hx-get" not in body


def test_expired_status_stops_polling(amami):
    to_call_screen(amami)
    later(121)
    body = text_of(poll(amami))
    assert EXPIRED_120 in body and "hx-trigger" not in body and ">最初に戻る</button>" in body


def test_full_page_in_a_final_state_has_no_polling(amami):
    page = to_call_screen(amami)
    assert 'hx-trigger="every 2s"' in text_of(page)
    call_from_registered_phone(amami, page)
    assert "hx-trigger" not in text_of(amami.get("flow/call"))


def test_status_poll_only_reads(amami):
    to_call_screen(amami)
    before = (len(log_rows(amami.app)), [(a.state, a.expires_at) for a in attempts(amami.app)])
    for _ in range(3):
        poll(amami)
    later(500)
    poll(amami)
    assert (len(log_rows(amami.app)), [(a.state, a.expires_at) for a in attempts(amami.app)]) == before


def test_status_in_maintenance_says_why_and_keeps_polling(amami):
    to_call_screen(amami)
    clock.set_now(dt.datetime(2026, 11, 19, 4, 2, tzinfo=clock.JST))  # daily 04:00–04:05
    response = amami.client.get("/amami/flow/call/status",
                                headers={"HX-Request": "true", "HX-Target": "call-status"})
    body = text_of(response)
    assert response.status_code == 503 and "ただ今の時間はサービスを行っていません。ご了承下さい。" in body
    assert body.strip().startswith('<div id="call-status"') and "<html" not in body
    assert 'hx-trigger="every 2s"' in body and 'hx-get="/amami/flow/call/status"' in body


def test_htmx_swaps_the_service_wide_answers_and_no_other_refusal(amami):
    import html
    import json
    import re

    page = text_of(amami.start())
    config = json.loads(html.unescape(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', page).group(1)))

    def swapped(status: int) -> bool:  # htmx takes the first entry whose regular expression matches
        return next(r for r in config["responseHandling"] if re.search(r["code"], str(status)))["swap"]

    assert [s for s in (200, 204, 303, 400, 403, 404, 429, 500, 503) if swapped(s)] == [200, 303, 429, 500, 503]


def test_status_without_htmx_goes_to_the_call_screen(amami):
    to_call_screen(amami)
    response = amami.client.get("/amami/flow/call/status")
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/call")


def test_status_after_the_flow_moved_on_sends_the_page_there(amami):
    page = to_call_screen(amami)
    call_from_registered_phone(amami, page)
    amami.post("flow/call", {})
    response = poll(amami)
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith("/amami/flow/pin")


def test_status_after_cancel_stops_polling(amami):
    to_call_screen(amami)
    amami.post("flow/cancel", {"confirm": "yes"})
    response = poll(amami)
    body = text_of(response)
    assert response.status_code == 200 and "hx-trigger" not in body and "有効な手続きがありません" in body


def test_status_tells_about_a_withheld_call_and_186(amami):
    page = to_call_screen(amami)
    assert "非通知" not in text_of(poll(amami))  # the waiting area every customer gets, kept (render_kept)
    signed_call(amami.client, amami.app, "anonymous", e164(pool_number_on(page)))
    body = text_of(poll(amami))
    assert "非通知の着信がありました。" in body and "「186」" in body and "hx-trigger" in body
    assert "非通知の着信がありました。" in text_of(amami.get("flow/call"))


# --- the sandbox demo button --------------------------------------------------------------------

def test_demo_button_records_the_call_like_the_webhook(amami):
    page = to_call_screen(amami)
    assert "（デモ）この番号から発信する" in text_of(page)
    response = amami.post("flow/call/demo", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/call")
    assert "着信を確認しました。" in text_of(amami.get("flow/call"))
    [row] = call_log(amami.app, "inbound_call")
    assert row.result == "ok" and row.detail == f"matched from=*******3333 to={pool_number_on(page)}"
    assert amami.post("flow/call", {}).headers["Location"].endswith("/flow/pin")


def test_demo_button_with_htmx_leaves_the_update_to_the_poll(amami):
    to_call_screen(amami)
    response = amami.post("flow/call/demo", {}, htmx=True)
    assert response.status_code == 204 and "HX-Redirect" not in response.headers
    assert "着信を確認しました。" in text_of(poll(amami))


@pytest.mark.parametrize("app_config", [{"SANDBOX": False}])
def test_demo_button_does_not_exist_outside_sandbox(amami, app_config):
    page = to_call_screen(amami)
    assert "（デモ）" not in text_of(page) and "call/demo" not in text_of(page)
    response = amami.post("flow/call/demo", {})
    assert response.status_code == 404
    assert [a.state for a in attempts(amami.app)] == ["waiting"] and call_log(amami.app) == []


# --- pool numbers on the screen -----------------------------------------------------------------

def test_two_tabs_for_the_same_phone_get_different_numbers(app, customers):
    from conftest import FlowActions

    tabs = [FlowActions(app, app.test_client(), "amami") for _ in range(2)]
    numbers = [pool_number_on(to_call_screen(tab)) for tab in tabs]
    assert numbers[0] != numbers[1]
    # a call to the first tab's number confirms only the first tab
    signed_call(tabs[0].client, app, PHONE_E164["amami"], e164(numbers[0]))
    assert "着信を確認しました。" in text_of(poll(tabs[0]))
    assert "着信を確認しました。" not in text_of(poll(tabs[1]))


def test_superseded_tab_is_told_and_offered_a_restart(app, customers):
    from conftest import FlowActions

    pool_size = len(app.extensions["tenants"]["maruhachi"].call_pool)
    tabs = [FlowActions(app, app.test_client(), "maruhachi") for _ in range(pool_size + 1)]
    for i, tab in enumerate(tabs):
        later(i)
        to_call_screen(tab)
    body = text_of(poll(tabs[0]))
    assert "別の画面で電話番号認証が開始されたため" in body and "hx-trigger" not in body
    assert ">最初に戻る</button>" in body
    assert all("hx-trigger" in text_of(poll(t)) for t in tabs[1:])
    response = tabs[0].post("flow/call/restart", {})
    assert response.headers["Location"].endswith("/maruhachi/flow/account")


# --- 「もう一度電話番号認証を行う」 (issue 11) ----------------------------------------------------------

RETRY = "もう一度電話番号認証を行う"


def retry(actions):
    return actions.post("flow/call/retry", {})


def test_after_the_window_four_offers_a_retry_and_nothing_to_call(amami):
    page = to_call_screen(amami)
    later(121)
    body = text_of(amami.get("flow/call"))
    assert EXPIRED_120 in body and "新しい認証先電話番号が表示されます" in body
    assert f">{RETRY}</button>" in body and ">最初に戻る</button>" in body
    assert "tel:" not in body.split("<footer")[0] and "確定する</button>" not in body  # the old number and 確定する are gone
    assert page is not None


def test_retry_gives_a_new_number_and_a_fresh_window_without_one_and_two(amami):
    page = to_call_screen(amami)
    old_number = pool_number_on(page)
    later(121)
    response = retry(amami)
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/call")
    again = amami.get("flow/call")
    new_number = pool_number_on(again)
    assert new_number != old_number
    assert "認証先電話番号へのお電話をお待ちしています。" in text_of(again)
    [attempt] = attempts(amami.app)
    assert attempt.attempts == 2 and attempt.state == "waiting"
    assert attempt.expires_at - attempt.started_at == dt.timedelta(seconds=120)
    assert [(f.step, f.ended_at) for f in flows(amami.app)] == [("call", None)]  # the same flow, still at ④
    renewed = [r for r in log_rows(amami.app) if r.event == "call_attempt_renewed"]
    assert len(renewed) == 1 and renewed[0].screen == "SOA209" and renewed[0].detail.startswith("attempt=2 ")
    # a call to the new number from the registered phone confirms; then 確定する goes on to ⑤
    call_from_registered_phone(amami, again)
    assert amami.post("flow/call", {}).headers["Location"].endswith("/amami/flow/pin")


def test_a_call_to_the_old_number_after_a_retry_does_not_confirm(amami):
    page = to_call_screen(amami)
    later(121)
    retry(amami)
    call_from_registered_phone(amami, page)  # the number the first window showed
    assert [a.state for a in attempts(amami.app)] == ["waiting"]


def test_retry_is_refused_while_the_window_runs(amami):
    to_call_screen(amami)
    retry(amami)
    [attempt] = attempts(amami.app)
    assert attempt.attempts == 1


def test_three_windows_at_most_then_only_back_to_the_start(amami):
    to_call_screen(amami)
    for n in (2, 3):
        later(121 * (n - 1))  # this window is over
        assert retry(amami).status_code == 303
        assert [a.attempts for a in attempts(amami.app)] == [n]
    later(121 * 3)
    body = text_of(amami.get("flow/call"))
    assert f">{RETRY}</button>" not in body and ">最初に戻る</button>" in body
    assert "電話番号認証をやり直せる回数を超えました。" in body
    retry(amami)  # pressed anyway (an old tab): nothing changes
    [attempt] = attempts(amami.app)
    assert attempt.attempts == 3 and attempt.state in ("waiting", "expired")
    assert EXPIRED_120 in text_of(amami.get("flow/call"))


def test_the_screen_says_until_when_to_call_as_a_clock_time(amami):
    body = text_of(to_call_screen(amami))
    [attempt] = attempts(amami.app)
    deadline = attempt.expires_at.astimezone(clock.JST)
    assert f"{deadline.hour}:{deadline.minute:02d} までにお電話ください" in body
    assert 'data-seconds-left="120"' in body  # the live countdown's start (shown by JavaScript only)


def test_the_number_is_a_big_call_button_with_the_digits_readable(amami):
    body = text_of(to_call_screen(amami))
    number = re.search(r'<span class="call-number">([0-9-]+)</span>', body).group(1)
    assert re.search(rf'<a class="button call-button" href="tel:[0-9]+">{number} に電話をかける</a>', body)
    for line in ("上のボタンを押して電話をかけてください。", "この画面を開いたまま、お届け出電話番号の電話から",
                 "アプリを閉じてしまった場合は、アプリから最初に操作してください。"):
        assert line in body


def test_the_confirmed_state_puts_confirm_first_and_focused(amami):
    page = to_call_screen(amami)
    call_from_registered_phone(amami, page)
    body = text_of(amami.get("flow/call"))
    assert 'class="call-status confirmed"' in body and "✓" in body
    assert body.index("着信を確認しました。") < body.index('autofocus>確定する</button>') < body.index("中止する")
    assert "tel:" not in body.split('<footer')[0]


def test_final_poll_brings_the_whole_screen_back_once(amami):
    page = to_call_screen(amami)
    call_from_registered_phone(amami, page)
    response = poll(amami)
    assert response.headers["HX-Retarget"] == "#screen" and response.headers["HX-Reswap"] == "outerHTML"
    body = text_of(response)
    assert body.strip().startswith('<div id="screen"') and "hx-trigger" not in body
