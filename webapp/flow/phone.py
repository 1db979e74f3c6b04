"""③ SOA208 電話番号の確認: the registered phone, masked (all but the last four digits as *).

「電話番号の決定」 moves the flow on to ④, where the call must come from that number.
"""
from __future__ import annotations

from flask import g, url_for
from flask_wtf import FlaskForm

from .. import db, oplog
from ..callauth import service as callauth
from .render import go, screen
from .state import NEXT, advance, flow_step
from .views import bp


@bp.route("/phone", methods=["GET", "POST"])
@flow_step("phone")
def phone():
    flow = g.flow
    form = FlaskForm()  # CSRF only
    if form.validate_on_submit():
        if advance(flow, NEXT["phone"]):
            s = db.session()
            oplog.record(s, tenant=flow.tenant, screen="SOA208", event="phone_confirmed", result="ok", flow=flow)
            s.commit()
        return go(url_for("flow.call"))
    return screen("phone", "phone_confirm", form=form, masked_phone=callauth.masked_phone(flow.phone_e164))
