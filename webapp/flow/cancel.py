"""中止する / 拒否する → the cancel screen 「API連携認証の中止」 → 連携元画面へ (access_denied).

Cancelling ends the flow server-side at once; the cancel screen only offers the way back to the
client app, which learns the customer cancelled (`error=access_denied`, with `state` and `iss`).
"""
from __future__ import annotations

from flask import g, session, url_for
from flask_wtf import FlaskForm

from .. import db
from ..oauth import error_redirect_url
from ..render import go, render_page
from .blueprint import bp
from .models import Flow
from .state import load
from .steps import end_flow, no_flow_response

_CANCELLED_KEY = "cancelled"  # session[_CANCELLED_KEY][tenant] = id of the flow just cancelled


@bp.route("/cancel", methods=["POST"])
def cancel():
    form = FlaskForm()  # CSRF only
    if not form.validate_on_submit():
        return no_flow_response()
    flow = load()
    if flow is None:
        return no_flow_response()
    outcome = "denied" if flow.step == "consent" else "cancelled"
    end_flow(flow, outcome, event=outcome)
    session[_CANCELLED_KEY] = {**session.get(_CANCELLED_KEY, {}), flow.tenant: flow.id}
    return go(url_for("flow.cancelled"))


@bp.route("/cancelled", methods=["GET"])
def cancelled():
    flow_id = session.get(_CANCELLED_KEY, {}).get(g.tenant.id)
    flow = db.session().get(Flow, flow_id) if flow_id else None
    if flow is None or flow.tenant != g.tenant.id or flow.outcome not in ("cancelled", "denied"):
        return no_flow_response()
    return render_page("flow/cancelled.html", return_url=error_redirect_url(flow, "access_denied"))
