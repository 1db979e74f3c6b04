"""Flow state: the Flow row and the browser's handle to it. The only writer of Flow rows.

The browser's signed session cookie holds only an opaque handle per union; the Flow row holds the
state. Each completed stage rotates the handle, so an old cookie (replayed, or from before a stage)
no longer reaches the flow. Which step follows which, and the guard that keeps a request on its
step, are in steps.py.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import NamedTuple

from flask import current_app, session
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value

from .. import clock, db, metrics, oplog
from ..oauth.models import OAuthClient
from ..tenants import current as current_tenant
from .models import AUTHORIZE, LINKS, Flow


class Step(NamedTuple):
    endpoint: str  # its screen
    screen_id: str  # 画面ID: in the footer and on every log row the step writes
    title: str  # after 「API連携認証」
    done_event: str | None  # the log row of its completion (None: its passed identity check is that row)


# Every step, by name. ROUTES gives the order a flow of each purpose passes them: steps.finish_step
# moves along its route, steps.finish_last_step ends an authorization flow on ⑥, and a links flow
# stays on its last step (連携中のアプリ) until the customer ends it or it expires.
STEPS = {
    "account": Step("flow.account", "SOA201", "（ご利用口座情報入力）", "account_entered"),
    "customer": Step("flow.customer", "SOA202", "（お客様情報入力）", None),
    "phone": Step("flow.phone", "SOA208", "（電話番号の確認）", "phone_confirmed"),
    "call": Step("flow.call", "SOA209", "（電話番号認証）", "call_confirm"),
    "pin": Step("flow.pin", "SOA211", "（キャッシュカード暗証番号認証）", None),
    "consent": Step("flow.consent", "SOA206", "（情報連携認可）", "consented"),
    "links": Step("my.links", "MYLINKS", "連携中のアプリ", None),
}
_IDENTITY = ("account", "customer", "phone", "call", "pin")
ROUTES = {AUTHORIZE: _IDENTITY + ("consent",), LINKS: _IDENTITY + ("links",)}
FIRST_STEP = _IDENTITY[0]

_COOKIE_KEY = "flows"  # session["flows"][tenant] = handle


def handle_hash(handle: str) -> str:
    """What a Flow row keeps of its handle (the handle itself is only in the browser's cookie)."""
    return hashlib.sha256(handle.encode()).hexdigest()


def browser_handle_hash(tenant_id: str) -> str | None:
    """The hash of this browser's handle for the union's flow (what the row is found by), or None."""
    handle = session.get(_COOKIE_KEY, {}).get(tenant_id)
    return handle_hash(handle) if handle else None


def _remember(tenant_id: str, handle: str | None) -> None:
    flows = dict(session.get(_COOKIE_KEY, {}))
    if handle is None:
        flows.pop(tenant_id, None)
    else:
        flows[tenant_id] = handle
    session[_COOKIE_KEY] = flows


def start(tenant_id: str, client_id: str | None, redirect_uri: str | None, oauth_request: dict,
          purpose: str = AUTHORIZE) -> Flow:
    """Begin a flow for a validated authorization request (or, purpose LINKS, with no client, for
    連携中のアプリ); the browser gets its handle."""
    handle = secrets.token_urlsafe(32)
    now = clock.now()
    values = {**_NEW_FLOW_DEFAULTS, "handle_hash": handle_hash(handle), "tenant": tenant_id, "step": FIRST_STEP,
              "purpose": purpose, "client_id": client_id, "redirect_uri": redirect_uri,
              "oauth_request": oauth_request, "created_at": now, "updated_at": now}
    s = db.session()
    values["id"] = s.connection().execute(_NEW_FLOW, values).scalar_one()
    flow = db.detached(Flow, _FLOW_KEYS, [values[k] for k in _FLOW_KEYS])  # the row as written, no ORM flush
    oplog.write(s, tenant=tenant_id, screen="OAUTH", event="flow_started", result="ok", flow=flow)
    s.commit()
    metrics.flow_started(tenant_id)
    _remember(tenant_id, handle)
    return flow


def expired(flow) -> bool:
    """The flow (a Flow row, or any row with its created_at and updated_at) outlived its idle or
    absolute limit (FLOW_IDLE_SECONDS, FLOW_MAX_SECONDS)."""
    cfg = current_app._get_current_object().config
    now = clock.now()
    return (now - flow.updated_at > dt.timedelta(seconds=cfg["FLOW_IDLE_SECONDS"])
            or now - flow.created_at > dt.timedelta(seconds=cfg["FLOW_MAX_SECONDS"]))


def load() -> Flow | None:
    """The live flow of this browser for the current union, or None."""
    return _live(Flow)[0]


def load_with_client() -> tuple[Flow | None, OAuthClient | None]:
    """The live flow, as `load`, and its app's client row (None for none) read in the same query:
    the screens that show the app (①, ⑥) pay one query, not two."""
    return _live(Flow, OAuthClient)


def _live(*entities) -> tuple:
    none = (None,) * len(entities)
    tenant = current_tenant()
    hashed = browser_handle_hash(tenant.id)
    # Read by db.first_read, on the request's plain connection (no ORM session built, begun and closed
    # for one SELECT), a POST's too: what it then writes is checked by the write itself (move's UPDATE
    # names the step and handle it read), as it must be under PostgreSQL's READ COMMITTED, and on
    # SQLite a read in the session was a transaction of its own, ended before the first write
    # (db.make_engine's write gate). A request whose session is open reads in it.
    if not hashed:
        return none
    with_client = len(entities) > 1
    row = db.first_read(_LIVE[with_client], {"handle_hash": hashed, "tenant": tenant.id})
    if row is None:
        return none
    flow = db.detached(Flow, _FLOW_KEYS, row[:len(_FLOW_KEYS)])
    if flow.ended_at is not None:
        return none
    if expired(flow):
        end(flow, "expired")
        return none
    if not with_client:
        return (flow,)
    client = row[len(_FLOW_KEYS):]
    return flow, (db.detached(OAuthClient, _CLIENT_KEYS, client) if client[0] is not None else None)


def by_id(s, flow_id: int | None) -> Flow | None:
    """The flow row `flow_id` (ended or not), read in the caller's transaction, detached (a read, as the
    screens' is); None for None or no such row."""
    row = s.connection().execute(_BY_ID, {"flow_id": flow_id}).first() if flow_id is not None else None
    return db.detached(Flow, _FLOW_KEYS, row) if row is not None else None


def move(s, flow: Flow, to_step: str, **changes) -> str | None:
    """Move `flow` from its current step to `to_step` with `changes`, in the caller's transaction,
    and give it a new handle. Of several parallel requests only one wins; the others get None, the
    winner the new handle, which it passes to `moved` once committed.
    """
    handle = secrets.token_urlsafe(32)
    values = {"step": to_step, "handle_hash": handle_hash(handle), "updated_at": clock.now(), **changes}
    result = s.connection().execute(_update("move", values), {
        **{f"v_{k}": v for k, v in values.items()},
        "w_id": flow.id, "w_step": flow.step, "w_handle_hash": flow.handle_hash})
    if result.rowcount != 1:
        return None
    _saved(flow, values)
    return handle


def moved(flow: Flow, handle: str | None) -> None:
    """After the commit of a `move`: count it and hand the browser the new handle (None: it lost)."""
    if handle is not None:
        metrics.flow_moved(flow.tenant, flow.step)
        _remember(flow.tenant, handle)


def touch(flow: Flow, *, commit: bool = True, **changes) -> None:
    """Save changes that stay on the same step (e.g. ① values kept for going back). Commits, unless
    `commit=False` (they then go with the caller's transaction)."""
    s = db.session()
    values = {"updated_at": clock.now(), **changes}
    s.connection().execute(_update("touch", values), {**{f"v_{k}": v for k, v in values.items()}, "w_id": flow.id})
    if commit:
        s.commit()
    _saved(flow, changes)


# The step writes as Core statements on the table, built once per set of changed columns: no
# statement construction and no ORM bulk-update evaluation on each move. The flow object is told
# the values as committed state (what the ORM's evaluator did), so no later flush writes them again.
_FLOWS = Flow.__table__
_WHERE = {
    "move": (_FLOWS.c.id == bindparam("w_id"), _FLOWS.c.step == bindparam("w_step"),
             _FLOWS.c.handle_hash == bindparam("w_handle_hash"), _FLOWS.c.ended_at.is_(None)),
    "touch": (_FLOWS.c.id == bindparam("w_id"), _FLOWS.c.ended_at.is_(None)),
    "close": (_FLOWS.c.id == bindparam("w_id"), _FLOWS.c.ended_at.is_(None)),
}
_UPDATES: dict[tuple, object] = {}

# The screens' flow read (with its app's client row for ① and ⑥): a Core SELECT built once, run by
# db.first_read (the request session's connection once it has one), each row made into a detached
# object as the ORM's loader would (`db.detached`). The ORM's own execution and identity-map work
# for this one read was over half of its cost on every screen; nothing keeps a flow in the session
# (every Flow write is a Core UPDATE above), so nothing needs it there.
_CLIENTS = OAuthClient.__table__
_FLOW_KEYS = db.column_keys(Flow)
_CLIENT_KEYS = db.column_keys(OAuthClient)
_BY_HANDLE = (_FLOWS.c.handle_hash == bindparam("handle_hash"), _FLOWS.c.tenant == bindparam("tenant"))
_NEW_FLOW = _FLOWS.insert().returning(_FLOWS.c.id)
_NEW_FLOW_DEFAULTS = {k: None for k in _FLOW_KEYS if k != "id"}  # what a new flow does not set is NULL
_BY_ID = select(*(Flow.__mapper__.c[k] for k in _FLOW_KEYS)).where(_FLOWS.c.id == bindparam("flow_id"))
_LIVE = {
    False: select(*(Flow.__mapper__.c[k] for k in _FLOW_KEYS)).where(*_BY_HANDLE),
    True: select(*(Flow.__mapper__.c[k] for k in _FLOW_KEYS), *(OAuthClient.__mapper__.c[k] for k in _CLIENT_KEYS))
    .select_from(_FLOWS.outerjoin(_CLIENTS, _CLIENTS.c.client_id == _FLOWS.c.client_id)).where(*_BY_HANDLE),
}


def _update(kind: str, values: dict):
    key = (kind, tuple(values))
    stmt = _UPDATES.get(key)
    if stmt is None:
        stmt = _UPDATES[key] = update(_FLOWS).where(*_WHERE[kind]).values(
            {k: bindparam(f"v_{k}", type_=_FLOWS.c[k].type) for k in values})
    return stmt


def _saved(flow: Flow, values: dict) -> None:
    for k, v in values.items():
        set_committed_value(flow, k, v)


def close(s, flow: Flow, outcome: str, *, at_step: str | None = None) -> bool:
    """End the flow with `outcome` in the caller's transaction; False when it had already ended (or,
    with `at_step`, when another request moved it on or rotated its handle meanwhile)."""
    now = clock.now()
    values = {"ended_at": now, "outcome": outcome, "updated_at": now}
    params = {**{f"v_{k}": v for k, v in values.items()}, "w_id": flow.id}
    if at_step is None:
        result = s.connection().execute(_update("close", values), params)
    else:
        result = s.connection().execute(_update("move", values), {
            **params, "w_step": at_step, "w_handle_hash": flow.handle_hash})
    return result.rowcount == 1


def closed(flow: Flow, outcome: str, won: bool) -> None:
    """After the commit of a `close`: the object says so, and the end is counted once."""
    flow.ended_at, flow.outcome = clock.now(), outcome
    if won:
        metrics.flow_ended(flow.tenant, flow.step, outcome)


def end(flow: Flow, outcome: str) -> bool:
    """End the flow server-side (cancel, deny, consent, expiry); nothing of it can be resumed. Commits."""
    s = db.session()
    won = close(s, flow, outcome)
    s.commit()
    closed(flow, outcome, won)
    return won
