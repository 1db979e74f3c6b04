"""⑤ SOA211 キャッシュカード暗証番号認証: the cash card PIN, the last factor.

A wrong PIN counts toward the same lock as ② (`check_with_lockout` reserves the slot atomically
before core banking is asked): error 2, then error 3 when it locks, then B84. The PIN lives only in
this request: it is never echoed back (not even after a validation error), and never reaches a log,
the flow row, the session, a template or a URL.
"""
from __future__ import annotations

from flask import g, request

from ..corebanking import AccountCheck, core
from ..render import render_blank, render_page
from . import identity
from .blueprint import bp
from .forms import PinForm, missing_required
from .steps import finish_step, flow_step


@bp.route("/pin", methods=["GET", "POST"])
@flow_step("pin")
def pin():
    flow = g.flow
    alert = None if request.method == "POST" else identity.standing_lock(flow)
    if alert is None and request.method == "GET":
        return render_blank("flow/pin.html", PinForm, missing=False, alert=None)
    form = PinForm()
    if form.validate_on_submit():
        entered = form.pin.data
        result, alert = identity.check_with_lockout(flow, "pin_check", lambda key: core().check_pin(key, entered),
                                                   completes_authentication=True)
        if result is AccountCheck.OK:
            return finish_step(flow)
    form.pin.data = None  # never echoed
    return render_page("flow/pin.html", form=form, missing=missing_required(form), alert=alert)
