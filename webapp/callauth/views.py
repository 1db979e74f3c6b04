"""Call authentication routes: the telephony provider's webhook `POST /telephony/inbound`.

Only a correctly signed post (see service.valid_signature) is read; anything else gets 403 and
changes nothing. The answer is always TwiML that rejects the call, so it is never answered and never
billed. The webhook is exempt from CSRF (the provider's signature is its proof of origin) and from
the customer-facing load shedding. The customer screens ③ ④ live in webapp/flow/ (phone.py, call.py);
the `callauth` blueprint is reserved for call-authentication pages outside the flow.
"""
from __future__ import annotations

import re

from flask import Blueprint, current_app, request

from .. import db, metrics, tenants
from ..extensions import csrf
from . import service

bp = Blueprint("callauth", __name__, url_prefix="/<tenant>/call")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)

telephony_bp = Blueprint("telephony", __name__, url_prefix="/telephony")

# The provider's call ids are letters and digits (CA + 32 hex); anything else is not one, and is
# not stored (PostgreSQL refuses a NUL in text).
CALL_SID = re.compile(r"[A-Za-z0-9]{1,64}")
REJECT_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Reject/></Response>'


def public_url() -> str:
    """The URL the provider signed: the public origin (BASE_URL, we may sit behind a proxy) + path + query."""
    query = request.query_string.decode("latin-1")
    return current_app.config["BASE_URL"] + request.path + ("?" + query if query else "")


@telephony_bp.route("/inbound", methods=["POST"])
@csrf.exempt
def inbound():
    params = list(request.form.items(multi=True))
    if not service.valid_signature(public_url(), params, request.headers.get("X-Twilio-Signature"),
                                   current_app.config.get("TELEPHONY_AUTH_TOKEN")):
        current_app.logger.warning("telephony webhook: missing or bad signature from %s", request.remote_addr)
        metrics.webhook_answered("forbidden")
        return current_app.response_class("forbidden\n", status=403, mimetype="text/plain")
    call_sid = request.form.get("CallSid", "")
    if not CALL_SID.fullmatch(call_sid):
        metrics.webhook_answered("bad_request")
        return current_app.response_class("CallSid missing or malformed\n", status=400, mimetype="text/plain")
    outcome = service.record_inbound_call(db.session(), call_sid=call_sid, caller=request.form.get("From"),
                                          dialled=request.form.get("To"), direction=request.form.get("Direction"))
    metrics.webhook_answered(outcome)
    return current_app.response_class(REJECT_TWIML, status=200, mimetype="text/xml")
