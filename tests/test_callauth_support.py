"""Helpers shared by the call-authentication tests (this module holds no test).

`to_call_screen(actions)` walks a customer from the authorization request to ④; `signed_call()`
posts what the telephony provider would post, signed like the provider signs it.
"""
from __future__ import annotations

import re

from sqlmodel import Session, select

from webapp import db
from webapp.callauth import service, twilio
from webapp.callauth.models import CallAttempt, InboundCall
from webapp.flow.models import Flow
from webapp.oplog import OperationLog

WEBHOOK = "/telephony/inbound"
TEL_RE = re.compile(r'<a class="button call-button" href="tel:([0-9]+)">()')
PHONE_E164 = {"amami": "+819011113333", "maruhachi": "+81534441234"}


def to_phone_screen(actions):
    actions.through_customer()
    return actions.get("flow/phone")


def to_call_screen(actions):
    """③ then 「電話番号の決定」 then ④ (GET): the attempt exists and its window runs."""
    to_phone_screen(actions)
    response = actions.post("flow/phone", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/call"), response.status_code
    page = actions.get("flow/call")
    assert page.status_code == 200
    return page


def pool_number_on(page) -> str:
    """The 発信先 number of ④ as the tel: link gives it (what a customer taps)."""
    m = TEL_RE.search(page.get_data(as_text=True))
    assert m, "no tel: link for the 認証先電話番号"
    return m.group(1) or m.group(2)


def provider_params(caller: str, dialled: str, call_sid: str | None = None, **extra) -> dict:
    params = {"CallSid": call_sid or service.new_call_sid(), "AccountSid": "AC" + "0" * 32,
              "From": caller, "To": dialled, "CallStatus": "ringing", "Direction": "inbound",
              "ApiVersion": "2010-04-01"}
    params.update(extra)
    return params


def e164(national: str) -> str:
    return service.dialled_e164(national)


def signed_call(client, app, caller: str, dialled: str, call_sid: str | None = None, token: str | None = None,
                signature: str | None = None, **extra):
    """POST the webhook as the provider does: E.164 numbers, X-Twilio-Signature over BASE_URL + path."""
    params = provider_params(caller, dialled, call_sid, **extra)
    if signature is None:
        signature = twilio.compute_signature(app.config["BASE_URL"] + WEBHOOK, params.items(),
                                              token or app.config["TELEPHONY_AUTH_TOKEN"])
    return client.post(WEBHOOK, data=params, headers={"X-Twilio-Signature": signature})


def call_from_registered_phone(actions, page):
    """The customer calls the shown number from the registered phone."""
    return signed_call(actions.client, actions.app, PHONE_E164[actions.tenant], e164(pool_number_on(page)))


def rows(app, model, *where):
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(model).where(*where)).all())


def attempts(app):
    return rows(app, CallAttempt)


def inbound_calls(app):
    return rows(app, InboundCall)


def call_log(app, event: str | None = None):
    found = rows(app, OperationLog, OperationLog.screen == "CALL")
    return [r for r in found if event is None or r.event == event]


def log_rows(app):
    return rows(app, OperationLog)


def flows(app):
    return rows(app, Flow)


def poll(actions, pressed: bool = False):
    return actions.client.get(actions.url("flow/call/status") + ("?pressed=1" if pressed else ""),
                              headers={"HX-Request": "true"})
