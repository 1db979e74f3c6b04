"""Pushed Authorization Requests (RFC 9126): `POST {issuer}/oauth/par`.

The client authenticates (its usual method: `private_key_jwt` for a FAPI 2.0 client) and pushes the
authorization request's parameters; they are validated exactly as the authorization endpoint would
(response type, registered redirect URI, PKCE S256, scope; a DPoP proof sent along, or a
`dpop_jkt`, binds the code to that key, RFC 9449 §10) and kept behind a `request_uri`
(`urn:ietf:params:oauth:request_uri:` + 256 random bits, stored only as SHA-256) that opens the
authorization endpoint for REQUEST_URI_SECONDS (60 s, FAPI 2.0 §5.3.2.2 item 5), and only for that
client at that union. It may be opened again until the customer's 許可する issues a code — a reload
of the page is no new authorization (the FAPI 2.0 conformance suite's "reused request_uri before
authentication completion succeeds") — and is spent then, by one atomic UPDATE (`spend`); once spent
it opens nothing. Errors are JSON (§2.3), never a redirect.
"""
from __future__ import annotations

import datetime as dt
import secrets

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, UnsupportedResponseTypeError
from flask import g
from flask import request as flask_request
from sqlalchemy import delete, update
from sqlmodel import select

from .. import clock, db
from . import dpop
from .models import PushedRequest, secret_hash
from .server import AUTHORIZATION_PARAMS, CLIENT_AUTH_METHODS, RESPONSE_TYPES, DPoPProofError, server

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
REQUEST_URI_SECONDS = 60
MAX_PARAM_LENGTH = 2000  # as much as an authorization request's URL could carry; state comes back in a Location
KEEP_AFTER_EXPIRY = dt.timedelta(days=1)  # longer than any flow lives: ⑥ still finds its row
FLOW_KEY = "pushed_request_id"  # in a flow's oauth_request: the pushed request ⑥ spends
# client authentication travels in the same form; it is not part of the authorization request
CLIENT_AUTH_PARAMS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")


def create_par_response():
    """The PAR endpoint's answer: 201 with `request_uri` and `expires_in`, or a JSON error."""
    request = server.create_oauth2_request(None)
    try:
        client = server.authenticate_client(request, CLIENT_AUTH_METHODS, endpoint="par")
        params = _pushed_params(client)
        _bind_code_to_proof(params)
        grant = server.get_consent_grant(request=server.stored_request(params), end_user=None)
        params["scope"] = grant.request.scope
    except OAuth2Error as error:
        error.redirect_uri, error.state = None, None  # §2.3: an error response, not a redirect
        return server.handle_error_response(request, error)
    request_uri = push(g.tenant.id, client.client_id, params)
    headers = default_json_headers + [("Cache-Control", "no-store")]
    return server.handle_response(201, {"request_uri": request_uri, "expires_in": REQUEST_URI_SECONDS}, headers)


def _pushed_params(client) -> dict:
    form = flask_request.form
    if any(len(form.getlist(name)) > 1 for name in form):
        raise InvalidRequestError("A parameter is repeated.")
    if any(len(form[name]) > MAX_PARAM_LENGTH for name in AUTHORIZATION_PARAMS if name in form):
        raise InvalidRequestError(f"A parameter is longer than {MAX_PARAM_LENGTH} characters.")
    if "request_uri" in form:
        raise InvalidRequestError("'request_uri' cannot be pushed (RFC 9126 section 2.1).")
    if "request" in form:
        raise InvalidRequestError("Request objects are not supported; push the parameters themselves.")
    if form.get("client_id") not in (None, client.client_id):
        raise InvalidRequestError("'client_id' is not the authenticated client.")
    if form.get("response_type") not in RESPONSE_TYPES:
        raise UnsupportedResponseTypeError("Only response_type=code is supported.", form.get("response_type"))
    params = {name: form[name] for name in AUTHORIZATION_PARAMS if form.get(name)}
    params["client_id"] = client.client_id
    return params


def _bind_code_to_proof(params: dict) -> None:
    """A DPoP proof sent with the pushed request binds the code to its key (RFC 9449 §10.1), as a
    `dpop_jkt` parameter does; both at once must name the same key."""
    proofs = flask_request.headers.getlist("DPoP")
    if not proofs:
        return
    try:
        jkt = dpop.verify(proofs, "POST", dpop.public_url(flask_request.path))
    except dpop.ProofError as error:
        raise DPoPProofError(error) from None
    if params.get("dpop_jkt", jkt) != jkt:
        raise DPoPProofError(dpop.ProofError("'dpop_jkt' is not the key of the DPoP proof."))
    params["dpop_jkt"] = jkt


def push(tenant: str, client_id: str, params: dict) -> str:
    """Keep validated parameters (in the request's transaction); the request_uri that opens them."""
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    s = db.session()
    s.execute(delete(PushedRequest).where(PushedRequest.expires_at < now - KEEP_AFTER_EXPIRY))
    s.add(PushedRequest(request_uri_hash=secret_hash(request_uri), tenant=tenant, client_id=client_id,
                                   params=dict(params), created_at=now,
                                   expires_at=now + dt.timedelta(seconds=REQUEST_URI_SECONDS)))
    return request_uri


def pending(tenant: str, client_id: str | None, request_uri) -> PushedRequest | None:
    """The pushed request behind `request_uri` if it may open the authorization endpoint now: this
    union's, this client's, not expired, not spent."""
    if not isinstance(request_uri, str) or not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
        return None
    row = db.session().exec(select(PushedRequest).where(
        PushedRequest.request_uri_hash == secret_hash(request_uri))).first()
    if (row is None or row.tenant != tenant or row.client_id != client_id
            or row.used_at is not None or row.expires_at <= clock.now()):
        return None
    return row


def spend(s, pushed_request_id: int) -> bool:
    """Spend a pushed request, in the caller's transaction: True for exactly one caller."""
    result = s.execute(update(PushedRequest)
                       .where(PushedRequest.id == pushed_request_id, PushedRequest.used_at.is_(None))
                       .values(used_at=clock.now()))
    return result.rowcount == 1
