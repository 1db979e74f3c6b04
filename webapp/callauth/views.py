"""Call authentication routes: the telephony provider's webhook `POST /telephony/inbound`.

Only a post the provider signed is read (the provider's adapter says which: telephony.py); anything
else gets 403 and changes nothing. The answer is always the provider's rejection of the call, so it
is never answered and never billed. The webhook is exempt from CSRF (the provider's signature is its proof of origin) and from
the customer-facing load shedding. The customer screens ③ ④ live in webapp/flow/ (phone.py, call.py);
the `callauth` blueprint is reserved for call-authentication pages outside the flow.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request

from .. import db, metrics, tenants
from ..extensions import csrf
from . import provider, service
from .telephony import Malformed, NotSigned

bp = Blueprint("callauth", __name__, url_prefix="/<tenant>/call")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)

telephony_bp = Blueprint("telephony", __name__, url_prefix="/telephony")


def public_url() -> str:
    """The URL the provider signed: the public origin (BASE_URL, we may sit behind a proxy) + path + query."""
    query = request.query_string.decode("latin-1")
    return current_app.config["BASE_URL"] + request.path + ("?" + query if query else "")


@telephony_bp.route("/inbound", methods=["POST"])
@csrf.exempt
def inbound():
    telephony = provider()
    try:
        call = telephony.read_inbound(public_url(), list(request.form.items(multi=True)), request.headers)
    except NotSigned:
        current_app.logger.warning("telephony webhook: missing or bad signature from %s", request.remote_addr)
        metrics.webhook_answered("forbidden")
        return current_app.response_class("forbidden\n", status=403, mimetype="text/plain")
    except Malformed as e:
        metrics.webhook_answered("bad_request")
        return current_app.response_class(f"{e}\n", status=400, mimetype="text/plain")
    outcome = service.record_inbound_call(db.session(), call_sid=call.call_sid, caller=call.caller,
                                          dialled=call.dialled, direction=call.direction)
    metrics.webhook_answered(outcome)
    answer = telephony.reject_call()
    return current_app.response_class(answer.body, status=answer.status, mimetype=answer.mimetype)
