"""Sending: each event is signed with the union's key and POSTed once, retried with back-off.

The body is a Security Event Token (RFC 8417): a compact JWS (ES256, `typ: secevent+jwt`, the
union's `kid`) over
    {"iss": issuer, "aud": client_id, "iat": when it happened, "jti": the event's id,
     "events": {"urn:renkei:event:consent-revoked": {"consent_id", "account_id", "reason"}}}
POSTed as `Content-Type: application/secevent+jwt` (RFC 8935). The app verifies it with the
union's JWKS (`{issuer}/jwks.json`), checks `iss` and `aud`, answers 2xx (202 per RFC 8935) and
ignores a `jti` it has seen (a resend after a crash mid-delivery carries the same one).

Claiming, back-off (1 min, 2, 4, … at most 1 h; failed after WEBHOOK_MAX_ATTEMPTS, 20) and the
sent-once guarantee are the outbox rule of webapp/deliveries.py, as for the mail. One app's server
being down does not stop the run: the next event may go elsewhere.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from flask import current_app
from joserfc import jws

from .. import clock, deliveries
from ..oauth import issuer
from .events import CONSENT_REVOKED, TOKENS_REVOKED
from .keys import ALGORITHM, signing_key
from .models import WebhookOutbox
from .post import post

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
LEASE_SECONDS = 120
TIMEOUT_SECONDS = 5
CONTENT_TYPE = "application/secevent+jwt"
EVENT_TYPES = {CONSENT_REVOKED: "urn:renkei:event:consent-revoked",
               TOKENS_REVOKED: "urn:renkei:event:tokens-revoked"}

EVENT_COLUMNS = (WebhookOutbox.event_id, WebhookOutbox.tenant, WebhookOutbox.client_id, WebhookOutbox.event,
                 WebhookOutbox.consent_id, WebhookOutbox.account_id, WebhookOutbox.reason,
                 WebhookOutbox.occurred_at, WebhookOutbox.url)


def event_claims(row) -> dict:
    """The SET's claims for one outbox row."""
    return {"iss": issuer(row.tenant), "aud": row.client_id, "iat": int(clock.as_utc(row.occurred_at).timestamp()),
            "jti": row.event_id,
            "events": {EVENT_TYPES[row.event]: {"consent_id": row.consent_id, "account_id": row.account_id,
                                                "reason": row.reason}}}


def signed_event(row) -> str:
    key = signing_key(row.tenant)
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "secevent+jwt"}
    payload = json.dumps(event_claims(row), separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])


def _deliver(claim: deliveries.Claim) -> None:
    config = current_app.config
    post(claim.row.url, signed_event(claim.row).encode(), CONTENT_TYPE, sandbox=bool(config["SANDBOX"]),
         timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS", TIMEOUT_SECONDS)))


def send_pending(limit: int = 50) -> deliveries.Report:
    """POST up to `limit` due events (inside an app context). Safe to run in parallel anywhere."""
    config = current_app.config
    return deliveries.deliver_due(
        WebhookOutbox, EVENT_COLUMNS, _deliver, limit=limit, log=log,
        lease=dt.timedelta(seconds=float(config.get("WEBHOOK_CLAIM_LEASE_SECONDS", LEASE_SECONDS))),
        max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS", MAX_ATTEMPTS)))
