"""③ SOA208 電話番号の確認: the registered phone, masked (all but the last four digits as *).

「電話番号の決定」 moves the flow on to ④, where the call must come from that number.
"""
from __future__ import annotations

from flask import g, request
from flask_wtf import FlaskForm

from ..callauth import service as callauth
from ..render import render_blank, render_page
from .blueprint import bp
from .steps import finish_step, flow_step


@bp.route("/phone", methods=["GET", "POST"])
@flow_step("phone")
def phone():
    flow = g.flow
    if request.method == "GET":
        return render_blank("flow/phone.html", FlaskForm, text={"masked_phone": callauth.masked_phone(flow.phone_e164)})
    form = FlaskForm()  # CSRF only
    if form.validate_on_submit():
        return finish_step(flow)
    return render_page("flow/phone.html", form=form, masked_phone=callauth.masked_phone(flow.phone_e164))
