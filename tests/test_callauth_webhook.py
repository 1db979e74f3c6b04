"""The telephony webhook POST /telephony/inbound: signed or refused, and which calls authenticate."""
from __future__ import annotations

import random
import string

import pytest

from conftest import text_of
from test_callauth_support import (PHONE_E164, WEBHOOK, attempts, call_log, e164, inbound_calls, log_rows,
                                   pool_number_on, poll, provider_params, signed_call, to_call_screen)
from webapp.callauth import service, twilio
from sql_support import statements_during

# Twilio's documented example (webhook security docs and its helper library's tests).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_TOKEN = "12345"
DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


# --- the signature ------------------------------------------------------------------------------

def test_signature_matches_twilios_documented_example():
    assert twilio.compute_signature(DOC_URL, DOC_PARAMS.items(), DOC_TOKEN) == DOC_SIGNATURE
    assert twilio.valid_signature(DOC_URL, list(DOC_PARAMS.items()), DOC_SIGNATURE, DOC_TOKEN)


def test_signature_sorts_repeated_parameters_like_twilio():
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio.compute_signature(DOC_URL, params, DOC_TOKEN) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_signature_accepts_the_url_with_or_without_its_default_port():
    with_port = DOC_URL.replace(".com", ".com:1234")
    assert twilio.valid_signature(with_port, list(DOC_PARAMS.items()), DOC_SIGNATURE, DOC_TOKEN)
    signed_with_443 = "kvajT1Ptam85bY51eRf/AJRuM3w="  # Twilio's vector: the same URL signed as host:443
    assert twilio.valid_signature(DOC_URL, list(DOC_PARAMS.items()), signed_with_443, DOC_TOKEN)


@pytest.mark.parametrize("signature, token", [(DOC_SIGNATURE, "54321"), ("RSOYDt4T1cUTdK1PDd93/VVr8B8", DOC_TOKEN),
                                              ("", DOC_TOKEN), (None, DOC_TOKEN), (DOC_SIGNATURE, ""),
                                              ("ＲＳＯＹ", DOC_TOKEN)])
def test_signature_rejects_wrong_token_or_signature(signature, token):
    assert not twilio.valid_signature(DOC_URL, list(DOC_PARAMS.items()), signature, token)


def test_signature_rejects_a_changed_parameter():
    changed = {**DOC_PARAMS, "From": "+14158675310"}
    assert not twilio.valid_signature(DOC_URL, list(changed.items()), DOC_SIGNATURE, DOC_TOKEN)


def test_signature_agrees_with_twilios_own_validator():
    from twilio.request_validator import RequestValidator

    rng = random.Random(7)
    for _ in range(200):
        params = {"".join(rng.choices(string.ascii_letters, k=rng.randint(1, 8))):
                  "".join(rng.choices(string.printable + "日本語＋", k=rng.randint(0, 12))) for _ in range(rng.randint(0, 8))}
        token = "".join(rng.choices(string.ascii_letters + string.digits, k=32))
        url = f"https://renkei.example/telephony/inbound?x={rng.randint(0, 9)}"
        assert twilio.compute_signature(url, params.items(), token) == RequestValidator(token).compute_signature(url, params)


# --- the endpoint -------------------------------------------------------------------------------

def test_signed_call_gets_twiml_that_rejects_it(amami):
    page = to_call_screen(amami)
    response = signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page)))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert '<Response><Reject reason="busy"/></Response>' in text_of(response)


def test_webhook_needs_no_csrf_token_but_the_screens_do(amami):
    page = to_call_screen(amami)
    assert signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page))).status_code == 200
    assert amami.client.post("/amami/flow/call", data={}).status_code == 400


@pytest.mark.parametrize("how", ["missing", "wrong_token", "other_url", "tampered", "garbage"])
def test_bad_or_missing_signature_gets_403_and_changes_nothing(amami, how):
    page = to_call_screen(amami)
    number = e164(pool_number_on(page))
    logs_before = len(log_rows(amami.app))
    if how == "missing":
        params = provider_params(PHONE_E164["amami"], number)
        response = amami.client.post(WEBHOOK, data=params)
    elif how == "wrong_token":
        response = signed_call(amami.client, amami.app, PHONE_E164["amami"], number, token="not-the-token")
    elif how == "other_url":
        params = provider_params(PHONE_E164["amami"], number)
        sig = twilio.compute_signature("http://localhost" + WEBHOOK, params.items(), amami.app.config["TELEPHONY_AUTH_TOKEN"])
        response = amami.client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": sig})
    elif how == "tampered":
        params = provider_params("+819099998888", number)
        sig = twilio.compute_signature(amami.app.config["BASE_URL"] + WEBHOOK, params.items(),
                                        amami.app.config["TELEPHONY_AUTH_TOKEN"])
        response = amami.client.post(WEBHOOK, data={**params, "From": PHONE_E164["amami"]},
                                     headers={"X-Twilio-Signature": sig})
    else:
        response = signed_call(amami.client, amami.app, PHONE_E164["amami"], number, signature="x" * 28)
    assert response.status_code == 403
    assert "Reject" not in text_of(response)
    assert [a.state for a in attempts(amami.app)] == ["waiting"]
    assert inbound_calls(amami.app) == [] and len(log_rows(amami.app)) == logs_before


@pytest.mark.parametrize("app_config", [{"TELEPHONY_AUTH_TOKEN": ""}])
def test_webhook_without_a_configured_token_refuses_everything(amami, app_config):
    page = to_call_screen(amami)
    response = signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page)), token="x")
    assert response.status_code == 403 and [a.state for a in attempts(amami.app)] == ["waiting"]


@pytest.mark.postgres
@pytest.mark.parametrize("field, value, status", [("CallSid", "CA\x00" + "1" * 31, 400), ("CallSid", "CA-1", 400),
                                                  ("To", "+81120111002\x00", 200), ("From", "\x00", 200)])
def test_nul_in_a_signed_webhook_post_is_refused_or_recorded_not_500_on_postgres(amami_on_postgres, field, value,
                                                                                   status):
    # signed, so it is read; PostgreSQL refuses NUL in text, so it must never reach an INSERT as it is
    page = to_call_screen(amami_on_postgres)
    app = amami_on_postgres.app
    params = {"From": PHONE_E164["amami"], "To": e164(pool_number_on(page)), field: value}
    response = signed_call(amami_on_postgres.client, app, params.pop("From"), params.pop("To"),
                           **({"call_sid": value} if field == "CallSid" else {}), **params)
    assert response.status_code == status
    assert [a.state for a in attempts(app)] == ["waiting"]


def test_call_from_the_registered_phone_to_the_shown_number_authenticates(amami):
    page = to_call_screen(amami)
    signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page)), call_sid="CA" + "1" * 32)
    [attempt] = attempts(amami.app)
    assert attempt.state == "confirmed" and attempt.call_sid == "CA" + "1" * 32
    [row] = call_log(amami.app, "inbound_call")
    assert row.result == "ok" and row.flow_id == attempt.flow_id and row.tenant == "amami"
    assert row.detail == f"matched from=*******3333 to={pool_number_on(page)}"


def test_caller_in_national_format_is_normalised(amami):
    page = to_call_screen(amami)
    signed_call(amami.client, amami.app, "09011113333", pool_number_on(page))
    assert [a.state for a in attempts(amami.app)] == ["confirmed"]


@pytest.mark.parametrize("caller", ["anonymous", "Anonymous", "Restricted", "Unknown", "", "  ", "abc123",
                                    "+266696687", "+7378742833", "０９０１１１１３３３", "0901111333３", "12"])
def test_withheld_or_non_numeric_caller_never_authenticates(amami, caller):
    page = to_call_screen(amami)
    response = signed_call(amami.client, amami.app, caller, e164(pool_number_on(page)))
    assert response.status_code == 200 and "<Reject reason=\"busy\"/>" in text_of(response)
    assert [a.state for a in attempts(amami.app)] == ["waiting"]
    [row] = call_log(amami.app, "inbound_call")
    assert row.result == "fail" and row.detail.startswith("withheld from=withheld")
    assert "非通知の着信がありました。" in text_of(poll(amami))


def test_call_from_another_number_does_not_authenticate_and_is_logged_masked(amami):
    page = to_call_screen(amami)
    signed_call(amami.client, amami.app, "+819099998888", e164(pool_number_on(page)))
    assert [a.state for a in attempts(amami.app)] == ["waiting"]
    [row] = call_log(amami.app, "inbound_call")
    assert row.result == "fail" and row.detail == f"wrong_number from=*******8888 to={pool_number_on(page)}"
    assert "着信を確認しました" not in text_of(poll(amami))


def test_call_to_another_pool_number_does_not_authenticate(amami):
    page = to_call_screen(amami)
    shown = pool_number_on(page)
    other = next(n for n in amami.app.extensions["tenants"]["amami"].call_pool if n != shown)
    signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(other))
    assert [a.state for a in attempts(amami.app)] == ["waiting"]
    [row] = call_log(amami.app, "inbound_call")
    assert row.detail.startswith("wrong_pool_number from=*******3333") and row.result == "fail"


def test_call_to_another_unions_number_does_not_authenticate(amami):
    to_call_screen(amami)
    maruhachi_number = amami.app.extensions["tenants"]["maruhachi"].call_pool[0]
    signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(maruhachi_number))
    assert [a.state for a in attempts(amami.app)] == ["waiting"]


def test_call_to_a_number_outside_every_pool_is_refused_in_the_log(amami):
    to_call_screen(amami)
    response = signed_call(amami.client, amami.app, PHONE_E164["amami"], "+81312345678")
    assert response.status_code == 200 and "<Reject reason=\"busy\"/>" in text_of(response)
    [row] = call_log(amami.app, "inbound_call")
    assert row.result == "refused" and row.detail.startswith("unknown_number")


def test_outbound_direction_does_not_authenticate(amami):
    page = to_call_screen(amami)
    signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page)), Direction="outbound-api")
    assert [a.state for a in attempts(amami.app)] == ["waiting"]


def test_same_call_sid_twice_counts_once(amami):
    page = to_call_screen(amami)
    sid = service.new_call_sid()
    for _ in range(3):
        response = signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page)), call_sid=sid)
        assert response.status_code == 200 and "<Reject reason=\"busy\"/>" in text_of(response)
    assert len(inbound_calls(amami.app)) == 1 and len(call_log(amami.app, "inbound_call")) == 1
    assert [a.state for a in attempts(amami.app)] == ["confirmed"]


def test_retried_call_sid_cannot_authenticate_a_later_attempt(app, customers):
    """A CallSid seen once (here: before ④ existed) is never evaluated again."""
    from conftest import FlowActions

    tab = FlowActions(app, app.test_client(), "amami")
    sid = service.new_call_sid()
    for number in app.extensions["tenants"]["amami"].call_pool:
        signed_call(tab.client, app, PHONE_E164["amami"], e164(number), call_sid=sid)
    page = to_call_screen(tab)
    signed_call(tab.client, app, PHONE_E164["amami"], e164(pool_number_on(page)), call_sid=sid)
    assert [a.state for a in attempts(app)] == ["waiting"]


def test_missing_call_sid_is_a_bad_request(amami):
    page = to_call_screen(amami)
    response = signed_call(amami.client, amami.app, PHONE_E164["amami"], e164(pool_number_on(page)), call_sid="",
                           CallSid="")
    assert response.status_code == 400 and [a.state for a in attempts(amami.app)] == ["waiting"]


def test_no_full_phone_number_reaches_the_log(amami):
    page = to_call_screen(amami)
    number = e164(pool_number_on(page))
    for caller in ("+819099998888", "anonymous", PHONE_E164["amami"], PHONE_E164["amami"]):
        signed_call(amami.client, amami.app, caller, number)
    amami.post("flow/call", {})
    for row in log_rows(amami.app):
        text = " ".join(str(v) for v in row.model_dump().values())
        assert "9011113333" not in text and "9099998888" not in text
    for call in inbound_calls(amami.app):
        assert "9011113333" not in call.from_masked and "9099998888" not in call.from_masked


# --- one write of the call's row (issue 13, round 6) ---------------------------------------------

def inbound_call_writes(app, call):
    """The SQL statements that write inbound_call while `call()` runs."""
    _result, seen = statements_during(app, call)
    return [sql[:40] for sql in seen if "inbound_call" in sql and not sql.upper().startswith("SELECT")]


@pytest.mark.parametrize("caller", ["registered", "other", "anonymous"])
def test_a_call_is_recorded_with_its_outcome_by_one_insert(amami, caller):
    page = to_call_screen(amami)
    number = e164(pool_number_on(page))
    phone = {"registered": PHONE_E164["amami"], "other": "+819099998888", "anonymous": "anonymous"}[caller]
    writes = inbound_call_writes(amami.app, lambda: signed_call(amami.client, amami.app, phone, number))
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO inbound_call")
    [call] = inbound_calls(amami.app)
    outcome = {"registered": "matched", "other": "wrong_number", "anonymous": "withheld"}[caller]
    [attempt] = attempts(amami.app)
    assert (call.outcome, call.attempt_id, call.tenant) == (
        outcome, attempt.id if caller == "registered" else None, "amami")
    assert call.from_masked == {"registered": "*******3333", "other": "*******8888", "anonymous": "withheld"}[caller]
    assert (attempt.state, attempt.withheld_call_at is not None) == (
        "confirmed" if caller == "registered" else "waiting", caller == "anonymous")


def test_a_retried_call_sid_undoes_its_confirmation_and_withheld_flag(app, customers):
    """The call's row is written after the attempt is confirmed (or flagged): a CallSid already
    recorded rolls both back, so it still counts once."""
    from conftest import FlowActions

    tab = FlowActions(app, app.test_client(), "amami")
    page = to_call_screen(tab)
    number = e164(pool_number_on(page))
    sid = service.new_call_sid()
    signed_call(tab.client, app, PHONE_E164["amami"], "+81120999999", call_sid=sid)  # not a pool number
    for caller in (PHONE_E164["amami"], "anonymous"):
        assert signed_call(tab.client, app, caller, number, call_sid=sid).status_code == 200
    [attempt] = attempts(app)
    assert (attempt.state, attempt.withheld_call_at) == ("waiting", None)
    assert [(c.outcome, c.attempt_id) for c in inbound_calls(app)] == [("unknown_number", None)]
    assert len(call_log(app, "inbound_call")) == 1


CALLERS = ["+819011113333", "09011113333", "0312345678", "+81312345678", "+14158675309", "+442071838750",
           "+390612345678", "+61491570156", "0120111001", "anonymous", "", None, "+266696687", "12", "+819011",
           "０９０１１１１３３３", "090-1111-3333"]


@pytest.mark.parametrize("raw", CALLERS)
def test_the_caller_parsed_once_gives_what_parsing_twice_gave(raw):
    e164_ = service.caller_e164(raw)
    assert service._caller(raw) == ((e164_, service.masked_phone(e164_)) if e164_ else (None, "withheld"))


def test_pool_numbers_in_e164_skip_phonenumbers_with_the_same_answer(app):
    with app.app_context():
        pools = service._pool_tenants()
        assert len(pools) >= 3
        for number, tenant in pools.items():
            assert service.dialled_e164(number) == service._dialled_e164(number) == number
            assert service.tenant_of_pool_number(number) == tenant
            assert service.pool_national_digits(number) == service.national_digits(number)
        for raw in ("0120111001", "+81120999999", "abc", "", None, "+81 120 111 001"):
            assert service._dialled_e164(raw) == service.dialled_e164(raw)
