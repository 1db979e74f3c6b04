"""OAuth 2.0 authorization server, one issuer per union: `{BASE_URL}/{tenant}`.

Every authorization response — a code, an error, the customer's 拒否する or 中止する — goes back to
the client's registered redirect URI with `state` (when the client sent one) and `iss` (RFC 9207),
so a client can tell which union answered. The protocol itself is in `server.py`.
"""
from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from flask import current_app


def issuer(tenant_id: str) -> str:
    return f"{current_app.config['BASE_URL']}/{tenant_id}"


def authorization_response_url(redirect_uri: str, tenant_id: str, params: list[tuple[str, str]],
                               state: str | None) -> str:
    """`redirect_uri` carrying `params`, then `state` and `iss` (RFC 6749 §4.1.2, RFC 9207 §2)."""
    params = list(params)
    if state:
        params.append(("state", state))
    params.append(("iss", issuer(tenant_id)))
    return add_params_to_uri(redirect_uri, params)


def error_redirect_url(flow, error: str = "access_denied", description: str | None = None) -> str:
    """The client's redirect URI carrying an error response (RFC 6749 §4.1.2.1, RFC 9207 iss)."""
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    return authorization_response_url(flow.redirect_uri, flow.tenant, params, (flow.oauth_request or {}).get("state"))
