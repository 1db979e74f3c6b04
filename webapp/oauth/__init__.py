"""OAuth 2.0 authorization server, one issuer per union: `{BASE_URL}/{tenant}`."""
from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from flask import current_app


def issuer(tenant_id: str) -> str:
    return f"{current_app.config['BASE_URL']}/{tenant_id}"


def error_redirect_url(flow, error: str = "access_denied", description: str | None = None) -> str:
    """The client's redirect URI carrying an error response (RFC 6749 §4.1.2.1, RFC 9207 iss)."""
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    state = (flow.oauth_request or {}).get("state")
    if state:
        params.append(("state", state))
    params.append(("iss", issuer(flow.tenant)))
    return add_params_to_uri(flow.redirect_uri, params)
