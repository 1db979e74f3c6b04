"""OAuth endpoints per union under /{tenant}/oauth/, and each union's RFC 8414 metadata.

The authorization endpoint validates the whole request before any screen is shown. What cannot be
trusted as a destination (an unknown client, a redirect URI not registered exactly) gets an error
page and never a redirect; every other error goes back to that redirect URI with `state` and `iss`.
Only a valid request starts a flow (screen ①). A request may come pushed (RFC 9126: `client_id`
and `request_uri` only, the parameters from `par.py`); a FAPI 2.0 client's must. The PAR, token,
revocation and introspection endpoints are called by the fintech's server, not a browser: no CSRF
token, client authentication instead.
"""
from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from .. import db, maintenance, messages, oplog, render, service_hours, tenants
from ..webhooks.keys import public_jwks
from ..errors import render_notice
from ..extensions import csrf
from ..flow import state as flow_state
from . import authorization_response_url, dpop, issuer, par
from .client_keys import ASSERTION_ALGORITHMS
from .server import (AUTHORIZATION_PARAMS, CLIENT_AUTH_METHODS, CODE_CHALLENGE_METHODS, GRANT_TYPES,
                     RESPONSE_TYPES, SCOPES, query_client, server)

bp = Blueprint("oauth", __name__, url_prefix="/<tenant>/oauth")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)

metadata_bp = Blueprint("oauth_metadata", __name__)


def error_page(message: str, status: int = 400):
    return render_template(render.themed("oauth/error.html"), message=message), status


def _refused(detail: str, client_id: str | None = None) -> None:
    s = db.session()
    oplog.record(s, tenant=g.tenant.id, screen="OAUTH", event="authorize_refused", result="refused",
                 client_id=client_id, detail=detail[:200])
    s.commit()


def _error_redirect(redirect_uri: str, client_id: str, error: str, description: str | None, state: str | None):
    _refused(error, client_id)
    params = [("error", error)] + ([("error_description", description)] if description else [])
    return redirect(authorization_response_url(redirect_uri, g.tenant.id, params, state), code=303)


@bp.route("/authorize", methods=["GET"])
def authorize():
    pushed = None
    if "request_uri" in request.args:
        pushed = _pushed_request()
        if pushed is None:
            return error_page(messages.BAD_AUTHORIZATION_REQUEST)
    args = MultiDict(pushed.params) if pushed else request.args
    window = maintenance.window_now(g.tenant)
    client, redirect_uri, refused = _client_and_redirect_uri(args)
    state = args.get("state")
    if window is not None:
        # Closed: the notice with when service resumes; for a known app and its registered redirect
        # URI also the way back to it (temporarily_unavailable), for anything else no link.
        _refused("maintenance", client.client_id if client else None)
        back = None if refused else authorization_response_url(
            redirect_uri, g.tenant.id, [("error", "temporarily_unavailable"), ("error_description", "maintenance")],
            state)
        return render_notice(messages.MAINTENANCE, 503, resumes=service_hours.resumes_text(window), return_url=back)
    if refused:
        _refused(refused[0], client.client_id if client else None)
        return error_page(refused[1])
    if client.is_fapi2 and pushed is None:
        return _error_redirect(redirect_uri, client.client_id, "invalid_request",
                               "This client must push its authorization requests (PAR, RFC 9126).", state)
    if args.get("response_type") not in RESPONSE_TYPES:
        return _error_redirect(redirect_uri, client.client_id, "unsupported_response_type",
                               "Only response_type=code is supported.", state)
    try:
        grant = server.get_consent_grant(request=server.stored_request(pushed.params) if pushed else None,
                                         end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _error_redirect(error.redirect_uri, client.client_id, error.error, error.description, state)
        _refused(error.error, client.client_id)
        return error_page(messages.BAD_AUTHORIZATION_REQUEST)
    params = {name: args[name] for name in AUTHORIZATION_PARAMS if args.get(name)}
    params["scope"] = grant.request.scope
    if pushed is not None:
        params[par.FLOW_KEY] = pushed.id
    flow_state.start(g.tenant.id, client.client_id, redirect_uri, params)
    return redirect(url_for("flow.account"), code=303)


def _pushed_request():
    """The pushed request `request_uri` names, for `client_id` (RFC 9126 §4); None (logged) when
    unknown, another client's, expired or spent. Other parameters beside them are ignored."""
    args = request.args
    if any(len(args.getlist(name)) > 1 for name in ("client_id", "request_uri")):
        _refused("duplicate client_id or request_uri")
        return None
    client = query_client(args.get("client_id"))
    pushed = par.pending(g.tenant.id, client.client_id if client else None, args.get("request_uri"))
    if pushed is None:
        _refused("unknown, expired or used request_uri", client.client_id if client else None)
    return pushed


def _client_and_redirect_uri(args):
    """(client, redirect_uri, None) for a known app and its registered redirect URI; otherwise
    (client or None, None, (log detail, error page message)): such a request gets no redirect."""
    if any(len(args.getlist(name)) > 1 for name in ("client_id", "redirect_uri")):
        return None, None, ("duplicate client_id or redirect_uri", messages.BAD_AUTHORIZATION_REQUEST)
    client = query_client(args.get("client_id"))
    if client is None:
        return None, None, ("unknown client", messages.UNKNOWN_CLIENT)
    redirect_uri = args.get("redirect_uri")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return client, None, ("unregistered redirect_uri", messages.UNKNOWN_REDIRECT)
    return client, redirect_uri, None


def _finish(response, endpoint: str):
    """Commit what the endpoint wrote when it succeeded; otherwise roll back and log the refusal."""
    s = db.session()
    if response.status_code in (200, 201):
        s.commit()
    else:
        s.rollback()
        error = (response.get_json(silent=True) or {}).get("error", str(response.status_code))
        oplog.record(s, tenant=g.tenant.id, screen="OAUTH", event=f"{endpoint}_refused", result="refused",
                     detail=str(error)[:200])
        s.commit()
    return response


@bp.route("/par", methods=["POST"])
@csrf.exempt
def pushed_authorization_request():
    return _finish(par.create_par_response(), "par")


@bp.route("/token", methods=["POST"])
@csrf.exempt
def token():
    response = _finish(server.create_token_response(), "token")
    if "DPoP" in request.headers:
        response.headers["DPoP-Nonce"] = dpop.new_nonce(g.tenant.id)  # RFC 9449 §8.2: the nonce for the next proof
    return response


@bp.route("/revoke", methods=["POST"])
@csrf.exempt
def revoke():
    return _finish(server.create_endpoint_response("revocation"), "revocation")


@bp.route("/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    return _finish(server.create_endpoint_response("introspection"), "introspection")


@metadata_bp.route("/.well-known/oauth-authorization-server/<tenant>", methods=["GET"])
def metadata(tenant):
    """RFC 8414 metadata of one union's authorization server (its issuer has a path: §3.1)."""
    iss = issuer(tenants.get_tenant(tenant).id)
    response = jsonify({
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "token_endpoint": f"{iss}/oauth/token",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "scopes_supported": list(SCOPES),
        "response_types_supported": list(RESPONSE_TYPES),
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": list(CODE_CHALLENGE_METHODS),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "authorization_response_iss_parameter_supported": True,
        # FAPI 2.0 (per client: only a fapi2 client must push its requests)
        "pushed_authorization_request_endpoint": f"{iss}/oauth/par",
        "require_pushed_authorization_requests": False,
        "dpop_signing_alg_values_supported": dpop.ALGORITHMS,
        "jwks_uri": f"{iss}/jwks.json",
    })
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@metadata_bp.route("/<tenant>/jwks.json", methods=["GET"])
def jwks(tenant):
    """The union's public keys (RFC 7517): they verify the events it POSTs to apps' webhooks."""
    response = jsonify(public_jwks(tenants.get_tenant(tenant).id))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
