"""Queueing: an event for the app whose consent (or tokens) were just revoked, in that transaction.

So the revocation and its event commit or roll back together. Only apps with a webhook URL get
events; a revoked (deregistered) app gets none.

- `consent_revoked`: the customer (`reason: customer`, 連携中のアプリ) or the union's staff
  (`union`: console, CLI) ended the consent; every token under it is dead.
- `tokens_revoked`: a replayed authorization code (`code_replayed`) or refresh token
  (`refresh_replayed`) revoked tokens of the consent; the consent itself stays, and the app may
  start a new authorization.
"""
from __future__ import annotations

import uuid

from sqlmodel import Session, select

from .. import clock
from ..api.keys import account_id
from ..corebanking import AccountKey
from ..deliveries import PENDING
from ..oauth.models import Consent, OAuthClient
from .models import WebhookOutbox

CONSENT_REVOKED, TOKENS_REVOKED = "consent_revoked", "tokens_revoked"


def queue_event(s: Session, consent: Consent, event: str, reason: str) -> bool:
    """Add `event` about `consent` to `s`'s transaction if its app has a webhook URL; True if added."""
    client = s.exec(select(OAuthClient).where(OAuthClient.client_id == consent.client_id)).first()
    if client is None or client.revoked_at is not None or not client.webhook_url:
        return False
    key = AccountKey(consent.tenant, consent.branch, consent.account_type, consent.account_number)
    now = clock.now()
    s.add(WebhookOutbox(event_id=str(uuid.uuid4()), tenant=consent.tenant, client_id=consent.client_id, event=event,
                        consent_id=consent.id, account_id=account_id(consent.client_id, key), reason=reason,
                        occurred_at=now, url=client.webhook_url, state=PENDING, attempts=0, next_attempt_at=now,
                        created_at=now))
    return True
