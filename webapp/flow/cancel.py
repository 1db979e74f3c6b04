"""中止する / 拒否する → the cancel screen 「API連携認証の中止」 → 連携元画面へ (access_denied).

Cancelling ends the flow server-side at once; the cancel screen only offers the way back to the
client app, which learns the customer cancelled (`error=access_denied`, with `state` and `iss`).
A 連携中のアプリ flow has no app to go back to: its way back is the links page's start.
"""
from __future__ import annotations

from flask import g, request, session, url_for
from flask_wtf import FlaskForm

from .. import db, messages
from ..oauth import error_redirect_url
from ..render import go, render_page
from .blueprint import bp
from .models import LINKS, Flow
from .state import STEPS, load
from .steps import end_flow, no_flow_response, screen_url

_CANCELLED_KEY = "cancelled"  # session[_CANCELLED_KEY][tenant] = id of the flow just cancelled


@bp.route("/cancel", methods=["POST"])
def cancel():
    """First 「中止してよろしいですか」 (a dialog with htmx, a page without); `confirm=yes` ends the flow."""
    form = FlaskForm()  # CSRF only
    if not form.validate_on_submit():
        return no_flow_response()
    flow = load()
    if flow is None:
        return no_flow_response()
    if request.form.get("confirm") != "yes":
        g.screen_id, g.screen_title = STEPS[flow.step].screen_id, messages.CANCEL_CONFIRM_TITLE
        return render_page("flow/cancel_confirm.html", form=form, back_url=screen_url(flow),
                           label="拒否する" if flow.step == "consent" else "中止する")
    outcome = "denied" if flow.step == "consent" else "cancelled"
    end_flow(flow, outcome, event=outcome)
    session[_CANCELLED_KEY] = {**session.get(_CANCELLED_KEY, {}), flow.tenant: flow.id}
    return go(url_for("flow.cancelled"))


@bp.route("/leave", methods=["POST"])
def leave():
    """連携元画面へ on the maintenance notice: end the flow and go straight back to the app, which
    learns the service is closed for now (`error=temporarily_unavailable`, RFC 6749 §4.1.2.1)."""
    form = FlaskForm()  # CSRF only
    flow = load() if form.validate_on_submit() else None
    if flow is None:
        return no_flow_response()
    end_flow(flow, "maintenance", event="left_in_maintenance")
    if flow.purpose == LINKS:
        return go(url_for("my.links"))
    return go(error_redirect_url(flow, "temporarily_unavailable", "maintenance"))


@bp.route("/cancelled", methods=["GET"])
def cancelled():
    flow_id = session.get(_CANCELLED_KEY, {}).get(g.tenant.id)
    flow = db.session().get(Flow, flow_id) if flow_id else None
    if flow is None or flow.tenant != g.tenant.id or flow.outcome not in ("cancelled", "denied"):
        return no_flow_response()
    if flow.purpose == LINKS:
        return render_page("flow/cancelled.html", return_url=url_for("my.links"), return_label=messages.LINKS_TITLE)
    return render_page("flow/cancelled.html", return_url=error_redirect_url(flow, "access_denied"))
