"""Consents: a customer's 許可 on ⑥, and its end.

`grant_consent` is 許可する, all or nothing in ONE transaction: the flow ends "consented" (one atomic
UPDATE, so of two parallel 許可する exactly one wins), the consent row (the union's 認可期間, 30
days), the authorization code (through Authlib, from the authorization request validated when the
flow began and validated again now: a client revoked meanwhile gets nothing), and the completion
mail in the outbox. The account's lock is checked again inside that transaction: a lock taken by a
parallel flow after ⑤ still stops the grant (reason B84).

`revoke_consent` ends an authorization at once (the customer asked the union; staff): the consent
and every token issued under it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from sqlalchemy import update

from .. import clock, db, lockout, metrics, oplog
from ..corebanking import AccountKey
from ..flow.models import Flow
from ..mail import queue_completion_mail
from . import issuer
from .models import Consent, OAuthClient, Token
from .server import DEFAULT_SCOPE, revoke_tokens, server


class AccountLocked(Exception):
    """The account is locked (B84): nothing is granted."""


class ClientGone(Exception):
    """The client (or its redirect URI) is no longer registered: nothing is granted, nowhere to go."""


@dataclasses.dataclass(frozen=True)
class Granted:
    location: str  # the client's redirect URI with code, state and iss
    consent: Consent
    outbox_id: int | None


def grant_consent(flow: Flow, tenant, client: OAuthClient) -> Granted | None:
    """許可する. Commits on success; None when another request already ended the flow."""
    s = db.session()
    now = clock.now()
    key = AccountKey(flow.tenant, flow.branch, flow.account_type, flow.account_number)
    if lockout.is_locked(s, key, tenant.lock_threshold):
        raise AccountLocked()
    ended = s.execute(
        update(Flow).where(Flow.id == flow.id, Flow.step == "consent", Flow.handle_hash == flow.handle_hash,
                           Flow.ended_at.is_(None))
        .values(ended_at=now, outcome="consented", updated_at=now))
    if ended.rowcount != 1:
        s.rollback()
        return None
    params = dict(flow.oauth_request or {})
    consent = Consent(tenant=flow.tenant, client_id=flow.client_id, branch=flow.branch,
                      account_type=flow.account_type, account_number=flow.account_number,
                      scope=params.get("scope") or DEFAULT_SCOPE, flow_id=flow.id, granted_at=now,
                      expires_at=now + dt.timedelta(days=tenant.consent_days))
    s.add(consent)
    s.flush()
    try:
        grant = server.get_authorization_grant(server.stored_request(params))
        redirect_uri = grant.validate_authorization_request()
        _status, _body, headers = grant.create_authorization_response(redirect_uri, consent)
    except OAuth2Error as error:
        s.rollback()
        raise ClientGone(error.error) from error
    location = add_params_to_uri(dict(headers)["Location"], [("iss", issuer(flow.tenant))])
    outbox = queue_completion_mail(s, tenant=tenant, flow=flow, consent=consent, client=client)
    oplog.record(s, tenant=flow.tenant, screen="SOA206", event="consented", result="ok", flow=flow,
                 detail=f"consent {consent.id} until {consent.expires_at.date().isoformat()}")
    s.commit()
    metrics.flow_ended(flow.tenant, "consent", "consented")
    flow.ended_at, flow.outcome = now, "consented"
    return Granted(location=location, consent=consent, outbox_id=getattr(outbox, "id", None))


def revoke_consent(s, consent: Consent) -> None:
    """End a customer's authorization: it and all its tokens (in the caller's transaction)."""
    s.execute(update(Consent).where(Consent.id == consent.id, Consent.revoked_at.is_(None))
              .values(revoked_at=clock.now()))
    revoke_tokens(s, Token.consent_id == consent.id)
