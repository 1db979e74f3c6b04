"""Consents: a customer's 許可 on ⑥, and its end.

`grant_consent` is 許可する, all or nothing in ONE transaction that the flow hands it (the flow's
side, flow.steps.finish_last_step: it ends "consented" in one atomic UPDATE, so of two parallel
許可する exactly one wins, and writes the log row): the consent row (the union's 認可期間, 30
days), the authorization code (through Authlib, from the authorization request validated when the
flow began and validated again now: a client revoked meanwhile gets nothing), and the completion
mail in the outbox. The account's lock is checked again inside that transaction: a lock taken by a
parallel flow after ⑤ still stops the grant (reason B84).

A flow started from a pushed request (PAR) spends it here, in the same transaction: of two flows
opened from one `request_uri`, only the first 許可する gets a code.

`revoke_consent` ends an authorization at once (the customer asked the union; staff): the consent
`revoke_consent` ends an authorization at once (the customer asked the union; staff): the consent
and every token issued under it; in the same transaction its expiry reminder, if unsent, is
cancelled and the app, if it registered a webhook, gets a `consent_revoked` event.

連携中のアプリ (CONTRACT §10): `live_links` lists an account's live consents with the app, its
operator and the app's last successful API call for the account (read from the operation log, which
already has a row for every call: no write is added to the API's path); `revoke_for_customer`
ends one of them, only of the account the customer proved, and queues the notice.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from sqlalchemy import func, insert, update
from sqlmodel import select

from .. import clock, db, lockout
from ..corebanking import AccountKey
from ..mail import cancel_reminder, queue_completion_mail, queue_revocation_mail
from ..mail.outbox import compose_completion
from ..oplog import OperationLog
from ..webhooks.events import CONSENT_REVOKED, queue_event
from . import issuer, par
from .models import Consent, OAuthClient, Token
from .server import DEFAULT_SCOPE, revoke_tokens, server


_NEW_CONSENT = insert(Consent.__table__).returning(Consent.__table__.c.id)  # built once: every ⑥ runs it


class AccountLocked(Exception):
    """The account is locked (B84): nothing is granted."""


class ClientGone(Exception):
    """The client (or its redirect URI) is no longer registered: nothing is granted, nowhere to go."""


@dataclasses.dataclass(frozen=True)
class Granted:
    location: str  # the client's redirect URI with code, state and iss
    consent: Consent
    outbox_id: int | None

    @property
    def log_detail(self) -> str:
        """What the operation log keeps of it (the consented row)."""
        return f"consent {self.consent.id} until {self.consent.expires_at.date().isoformat()}"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What 許可する works out before its transaction writes anything: the consent row (without its
    id), Authlib's grant with the authorization request validated, and the completion mail."""

    values: dict
    grant: object
    redirect_uri: str
    pushed_request_id: str | None
    mail: tuple[str, str]  # (subject, body)


def prepare_consent(flow, tenant, client: OAuthClient) -> Prepared:
    """The part of 許可する that writes nothing: run before the flow's close, so that on SQLite the
    write gate is not held through Authlib's validation (a client read) and the mail's two templates.
    Raises ClientGone. A client revoked after this gets a code that its token request cannot spend
    (the token endpoint authenticates the client again)."""
    now = clock.now()
    params = dict(flow.oauth_request or {})
    pushed_request_id = params.pop(par.FLOW_KEY, None)
    values = dict(tenant=flow.tenant, client_id=flow.client_id, branch=flow.branch,
                  account_type=flow.account_type, account_number=flow.account_number,
                  scope=params.get("scope") or DEFAULT_SCOPE, flow_id=flow.id, granted_at=now,
                  expires_at=now + dt.timedelta(days=tenant.consent_days), revoked_at=None)
    try:
        grant = server.get_authorization_grant(server.stored_request(params))
        redirect_uri = grant.validate_authorization_request()
    except OAuth2Error as error:
        raise ClientGone(error.error) from error
    unsaved = db.detached(Consent, tuple(values), tuple(values.values()))
    mail = compose_completion(tenant=tenant, flow=flow, consent=unsaved, client=client)
    return Prepared(values=values, grant=grant, redirect_uri=redirect_uri, pushed_request_id=pushed_request_id,
                    mail=mail)


def grant_consent(s, flow, tenant, client: OAuthClient, prepared: Prepared | None = None) -> Granted:
    """許可する, in the transaction `s` the flow hands over (flow.steps.finish_last_step), which also
    ends the flow and commits. `prepared`: prepare_consent's, made before that transaction's first
    write (made here if not given). Raises AccountLocked or ClientGone; the flow then rolls back."""
    if prepared is None:
        prepared = prepare_consent(flow, tenant, client)
    key = AccountKey(flow.tenant, flow.branch, flow.account_type, flow.account_number)
    if lockout.is_locked(s, key, tenant.lock_threshold):
        raise AccountLocked()
    values = dict(prepared.values)
    values["id"] = s.connection().execute(_NEW_CONSENT, values).scalar_one()
    consent = db.detached(Consent, tuple(values), tuple(values.values()))  # the row as written, no ORM flush
    try:
        _status, _body, headers = prepared.grant.create_authorization_response(prepared.redirect_uri, consent)
    except OAuth2Error as error:
        raise ClientGone(error.error) from error
    if prepared.pushed_request_id is not None and not par.spend(s, prepared.pushed_request_id):
        raise ClientGone("request_uri_used")  # another flow from the same pushed request got the code
    location = add_params_to_uri(dict(headers)["Location"], [("iss", issuer(flow.tenant))])
    outbox = queue_completion_mail(s, tenant=tenant, flow=flow, consent=consent, client=client,
                                   message=prepared.mail)
    return Granted(location=location, consent=consent, outbox_id=getattr(outbox, "id", None))


def revoke_consent(s, consent: Consent, reason: str = "union") -> bool:
    """End a customer's authorization: it and all its tokens (in the caller's transaction).

    `reason` is who ended it, for the app's event: `customer` (連携中のアプリ) or `union` (staff).
    False when it had already been revoked (nothing changes, no second event).
    """
    result = s.execute(update(Consent).where(Consent.id == consent.id, Consent.revoked_at.is_(None))
                       .values(revoked_at=clock.now()))
    revoke_tokens(s, Token.consent_id == consent.id)
    if result.rowcount != 1:
        return False
    cancel_reminder(s, consent.id)
    queue_event(s, consent, CONSENT_REVOKED, reason)
    return True


@dataclasses.dataclass(frozen=True)
class Link:
    """One app linked to an account, as 連携中のアプリ shows it."""

    consent: Consent
    app_name: str
    operator: str
    last_used_at: dt.datetime | None  # the app's last successful API call for the account since the grant


def _live_consents(key: AccountKey):
    return (select(Consent, OAuthClient).join(OAuthClient, OAuthClient.client_id == Consent.client_id)
            .where(Consent.tenant == key.tenant, Consent.branch == key.branch,
                   Consent.account_type == key.account_type, Consent.account_number == key.number,
                   Consent.revoked_at.is_(None), Consent.expires_at > clock.now(), OAuthClient.revoked_at.is_(None)))


def _last_calls(s, key: AccountKey, since: dt.datetime) -> dict[str, dt.datetime]:
    """Each app's latest successful API call for the account since `since` (one indexed read)."""
    rows = s.exec(select(OperationLog.client_id, func.max(OperationLog.at))
                  .where(OperationLog.tenant == key.tenant, OperationLog.branch == key.branch,
                         OperationLog.account_type == key.account_type, OperationLog.account_number == key.number,
                         OperationLog.at >= since, OperationLog.screen == "API", OperationLog.result == "ok")
                  .group_by(OperationLog.client_id)).all()
    return {client_id: clock.as_utc(at) for client_id, at in rows}


def live_links(s, key: AccountKey) -> list[Link]:
    """The account's live consents (not ended, not expired, app still registered), newest first."""
    rows = s.exec(_live_consents(key).order_by(Consent.granted_at.desc(), Consent.id.desc())).all()
    if not rows:
        return []
    last = _last_calls(s, key, min(clock.as_utc(consent.granted_at) for consent, _ in rows))
    links = []
    for consent, client in rows:
        used = last.get(consent.client_id)
        links.append(Link(consent, client.name, client.operator,
                          used if used is not None and used >= clock.as_utc(consent.granted_at) else None))
    return links


def find_link(s, key: AccountKey, consent_id: int) -> Link | None:
    """The account's live link `consent_id`; None for any other id (another account's, ended, unknown)."""
    return next((link for link in live_links(s, key) if link.consent.id == consent_id), None)


def revoke_for_customer(s, flow, tenant, link: Link) -> int | None:
    """連携を解除する on 連携中のアプリ: end `link` and queue its notice to the address the customer
    gave at ② of `flow`, in the caller's transaction. The notice's outbox id; None when the consent
    had ended meanwhile (then no notice)."""
    if not revoke_consent(s, link.consent, "customer"):
        return None
    client = s.exec(select(OAuthClient).where(OAuthClient.client_id == link.consent.client_id)).one()
    return queue_revocation_mail(s, tenant=tenant, flow=flow, consent=link.consent, client=client).id
