"""⑤ SOA211 キャッシュカード暗証番号認証: the cash card PIN, the last factor.

A wrong PIN counts toward the same lock as ② (`check_with_lockout` reserves the slot atomically
before core banking is asked): error 2, then error 3 when it locks, then B84. The PIN lives only in
this request: it is never echoed back (not even after a validation error), and never reaches a log,
the flow row, the session, a template or a URL.
"""
from __future__ import annotations

from flask import g, url_for

from ..corebanking import AccountCheck, core
from . import identity
from .forms import PinForm, missing_required
from .render import go, screen
from .state import NEXT, advance, flow_step
from .views import bp


@bp.route("/pin", methods=["GET", "POST"])
@flow_step("pin")
def pin():
    flow = g.flow
    form = PinForm()
    alert = None
    if form.validate_on_submit():
        entered = form.pin.data
        result, alert = identity.check_with_lockout(flow, "SOA211", "pin_check", lambda key: core().check_pin(key, entered),
                                                   completes_authentication=True)
        if result is AccountCheck.OK:
            advance(flow, NEXT["pin"])
            return go(url_for("flow.consent"))
    form.pin.data = None  # never echoed
    return screen("pin", "pin_form", form=form, missing=missing_required(form), alert=alert)
