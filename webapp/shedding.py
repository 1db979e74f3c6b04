"""Load shedding (SPEC §3 混雑): one noisy address or app is refused before it can fill the whole
service's ceiling, so it cannot make 「ただ今受付が混雑しております…」 for everyone else.

Each request to a customer screen, the FAQ, the authorization server or the account API is
counted first against its own sender, then against the service-wide ceiling (`GLOBAL_REQUEST_LIMIT`):

| requests | counted per | limit (config) |
|---|---|---|
| screens, FAQ, `/oauth/authorize` | address | `REQUESTS_PER_IP` |
| `/oauth/token`, `/par`, `/revoke`, `/introspect` | the app named by the request (else its address) | `TOKEN_REQUESTS_PER_CLIENT` |
| account API | the app (Flask-Limiter's `API_RATE_LIMIT`, checked before this hook) | |

A request refused by its own limit never reaches the ceiling's counter. Static files (served
before Flask), each union's `theme.css`, `/healthz`, the metadata and the telephony webhook are
not counted. These counters keep no `X-RateLimit-*` headers: customers need no hint of the
service's ceiling. They live in Flask-Limiter's storage: per worker with `memory://`, shared with
`REDIS_URL`; the budgets that protect authentication are in the database (webapp/budgets.py).
When Redis cannot be reached they count in the process's memory meanwhile (extensions.Limiter);
a storage that fails otherwise skips shedding (logged): a Redis outage must not stop customers.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import logging

from flask import Flask, current_app, request
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

from .extensions import limiter

log = logging.getLogger("renkei.shedding")

SHED_BLUEPRINTS = {"pages", "flow", "oauth", "callauth", "api"}
NOT_COUNTED = {"pages.theme_css"}
PER_CLIENT = {"oauth.token", "oauth.revoke", "oauth.introspect", "oauth.pushed_authorization_request"}


def _claimed_client_id() -> str | None:
    """The client_id a token-endpoint request names (HTTP Basic, form, or the `sub` of a
    private_key_jwt assertion); unauthenticated, a key only."""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            user = base64.b64decode(header[6:].strip(), validate=True).split(b":", 1)[0]
            return user.decode("utf-8")[:200] or None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return (request.form.get("client_id") or "")[:200] or _assertion_subject(request.form.get("client_assertion"))


def _assertion_subject(assertion: str | None) -> str | None:
    """The `sub` a JWT claims, unverified (the key of a counter, nothing more)."""
    parts = (assertion or "").split(".")
    if len(parts) != 3 or len(parts[1]) > 4000:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: `[[[[…`
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub[:200] if isinstance(sub, str) and sub else None


def _sender(r) -> tuple[str, str] | None:
    """(setting, key) of request `r`'s own limit; None for the API (its per-app limit is Flask-Limiter's)."""
    if r.blueprint == "api":
        return None
    address = r.remote_addr or "-"
    if r.endpoint in PER_CLIENT:
        client = _claimed_client_id()
        return "TOKEN_REQUESTS_PER_CLIENT", f"client:{client}" if client else f"ip:{address}"
    return "REQUESTS_PER_IP", f"ip:{address}"


@functools.lru_cache(maxsize=64)
def _limits(text: str) -> tuple:
    """A limit setting's items, parsed once per text (a setting is read on every counted request)."""
    return tuple(parse_many(text))


def shed_load() -> None:
    r = request._get_current_object()  # one context lookup, not one per attribute
    endpoint = r.endpoint
    if r.blueprint not in SHED_BLUEPRINTS or endpoint in NOT_COUNTED:
        return
    sender = _sender(r)  # from the request alone: a failure here is no reason to skip the limits
    config = current_app._get_current_object().config
    own = _limits(config[sender[0]]) if sender is not None else ()
    counts = [(item, "sender", sender[1]) for item in own]
    counts += [(item, "service", "all") for item in _limits(config["GLOBAL_REQUEST_LIMIT"])]
    try:
        # The sender's limits, then the ceiling's, in order, stopping at the first one reached (one
        # round trip to Redis for all of them); limiter's, not limiter.limiter's: the app's key
        # prefix, and memory while Redis is away.
        refused = limiter.hit_in_order(counts)
        if refused is not None and refused < len(own):
            log.info("sender limit reached: %s on %s", sender[1], endpoint)
            raise TooManyRequests()
        if refused is not None:
            log.warning("service-wide ceiling reached on %s", endpoint)
            raise TooManyRequests()
    except TooManyRequests:
        raise
    except Exception as e:  # the storage is unreachable: serve rather than refuse everyone
        log.warning("load shedding skipped: rate-limit storage unavailable (%s)", type(e).__name__)


def init_app(app: Flask) -> None:
    # Registered after Flask-Limiter's own hook (the API's per-app limit), so that runs first.
    app.before_request(shed_load)
