"""OAuth endpoints per union under /{tenant}/oauth/. (Authorization request start; the rest lands with the OAuth issue.)"""
from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from .. import messages, service_hours, tenants
from ..errors import render_notice
from ..flow import state as flow_state
from .models import OAuthClient

bp = Blueprint("oauth", __name__, url_prefix="/<tenant>/oauth")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)


@bp.before_request
def refuse_authorization_outside_service_hours():
    """The authorization request opens the customer's screens, so it is closed in maintenance too."""
    if request.endpoint == "oauth.authorize" and service_hours.maintenance_window_at(g.tenant.maintenance):
        return render_notice(messages.MAINTENANCE, 503)


def error_page(message: str, status: int = 400):
    return render_template(g.tenant.templates("oauth/error.html"), message=message), status


@bp.route("/authorize", methods=["GET"])
def authorize():
    params = request.args.to_dict(flat=True)
    client = OAuthClient.by_id(params.get("client_id", ""))
    if client is None or client.tenant != g.tenant.id or client.revoked_at is not None:
        return error_page("連携元アプリを確認できませんでした（client_id が正しくありません）。")
    if params.get("redirect_uri") not in client.redirect_uris:
        return error_page("連携元アプリの戻り先を確認できませんでした（redirect_uri が登録と一致しません）。")
    flow_state.start(g.tenant.id, client.client_id, params["redirect_uri"], params)
    return redirect(url_for("flow.account"), code=303)
