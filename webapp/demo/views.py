"""The demo launcher (`/demo/`, sandbox only): a stand-in fintech app for each union.

Rules: the authorization request is started by a POST (no state change on GET) and always carries
PKCE S256 — pushed first (PAR) when the FAPI 2.0 switch is on; `state` is single use and must come back with the response, and `iss` must be the union's
issuer (RFC 9207) before a code is exchanged; an unknown `state` is shown as such, never exchanged.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, session

from ..oauth import issuer
from ..oauth.models import OAuthClient
from . import client, customers, tenants_with_data

bp = Blueprint("demo", __name__, url_prefix="/demo")

_PENDING = "demo_requests"  # session[_PENDING][state] = {"tenant", "verifier", "profile"}
_PENDING_MAX = 5  # enough for a few tabs; the oldest is dropped first


@bp.route("/")
def index():
    unions = current_app.extensions["tenants"]
    cards = [dict(union=unions[t], client_id=client.client_id(t), registered=_registered(client.client_id(t)),
                  fapi2=_registered(client.fapi2_client_id(t)), customers=customers(t)) for t in tenants_with_data()]
    base_url = current_app.config["BASE_URL"]
    elsewhere = request.host_url.rstrip("/") != base_url
    return render_template("demo/index.html", cards=cards, base_url=base_url, elsewhere=elsewhere)


def _registered(client_id: str) -> bool:
    row = OAuthClient.by_id(client_id)
    return row is not None and row.revoked_at is None and client.redirect_uri() in row.redirect_uris


@bp.route("/<tenant_id>/start", methods=["POST"])
def start(tenant_id: str):
    if tenant_id not in tenants_with_data():
        abort(404)
    profile = client.FAPI2 if request.form.get("profile") == client.FAPI2 else "oauth2"
    if profile == client.FAPI2:
        auth = client.pushed_authorization_request(tenant_id)
    else:
        auth = client.authorization_request(tenant_id)
    if auth.url is None:  # the union refused the pushed request: say so, nothing pending
        unions = current_app.extensions["tenants"]
        return render_template("demo/callback.html", union=unions[tenant_id], state=auth.state, state_ok=True,
                               iss=None, expected_iss=issuer(tenant_id), iss_ok=False,
                               code=None, error=auth.refused.get("error"),
                               error_description=auth.refused.get("error_description"), exchanged=False,
                               exchange=None), 502
    pending = dict(session.get(_PENDING, {}))
    pending[auth.state] = {"tenant": tenant_id, "verifier": auth.code_verifier, "profile": profile}
    session[_PENDING] = dict(list(pending.items())[-_PENDING_MAX:])
    return redirect(auth.url, code=303)


@bp.route("/callback")
def callback():
    args = request.args
    state = args.get("state", "")
    pending = dict(session.get(_PENDING, {}))
    entry = pending.pop(state, None) if state else None
    session[_PENDING] = pending
    tenant = entry["tenant"] if entry else None
    expected_iss = issuer(tenant) if tenant else None
    iss_ok = tenant is not None and args.get("iss") == expected_iss
    code, error = args.get("code"), args.get("error")
    exchange, exchanged = None, False
    if entry and iss_ok and code and not error:
        if entry.get("profile") == client.FAPI2:
            exchange = client.exchange_code_fapi2(tenant, code, entry["verifier"])
        else:
            exchange = client.exchange_code(tenant, code, entry["verifier"])
        exchanged = True
    unions = current_app.extensions["tenants"]
    return render_template(
        "demo/callback.html", union=unions.get(tenant) if tenant else None, state=state, state_ok=entry is not None,
        iss=args.get("iss"), expected_iss=expected_iss, iss_ok=iss_ok, code=code, error=error,
        error_description=args.get("error_description"), exchanged=exchanged, exchange=exchange)
