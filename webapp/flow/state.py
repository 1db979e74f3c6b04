"""Flow state and the step guard.

The browser's signed session cookie holds only an opaque handle per union; the Flow row holds the
state. A screen may be shown only when the flow stands at its step; any other request is sent to
the step the flow is at (or told there is no flow). Each completed stage rotates the handle, so an
old cookie (replayed, or from before a stage) no longer reaches the flow.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets

from flask import current_app, g, redirect, render_template, session, url_for
from sqlalchemy import update
from sqlmodel import select

from .. import clock, db, messages, metrics, oplog
from ..tenants import current as current_tenant
from .models import Flow

# step → (endpoint of its screen, screen id, title after 「API連携認証」)
STEPS = {
    "account": ("flow.account", "SOA201", "（ご利用口座情報入力）"),
    "customer": ("flow.customer", "SOA202", "（お客様情報入力）"),
    "phone": ("flow.phone", "SOA208", "（電話番号の確認）"),
    "call": ("flow.call", "SOA209", "（電話番号認証）"),
    "pin": ("flow.pin", "SOA211", "（キャッシュカード暗証番号認証）"),
    "consent": ("flow.consent", "SOA206", "（情報連携認可）"),
}
NEXT = {"account": "customer", "customer": "phone", "phone": "call", "call": "pin", "pin": "consent"}

_COOKIE_KEY = "flows"  # session["flows"][tenant] = handle


def _hash(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def _remember(tenant_id: str, handle: str | None) -> None:
    flows = dict(session.get(_COOKIE_KEY, {}))
    if handle is None:
        flows.pop(tenant_id, None)
    else:
        flows[tenant_id] = handle
    session[_COOKIE_KEY] = flows


def start(tenant_id: str, client_id: str, redirect_uri: str, oauth_request: dict) -> Flow:
    """Begin a flow for a validated authorization request; the browser gets its handle."""
    handle = secrets.token_urlsafe(32)
    now = clock.now()
    flow = Flow(handle_hash=_hash(handle), tenant=tenant_id, step="account", client_id=client_id,
                redirect_uri=redirect_uri, oauth_request=oauth_request, created_at=now, updated_at=now)
    s = db.session()
    s.add(flow)
    s.flush()
    oplog.record(s, tenant=tenant_id, screen="OAUTH", event="flow_started", result="ok", flow=flow)
    s.commit()
    metrics.flow_started(tenant_id)
    _remember(tenant_id, handle)
    return flow


def _expired(flow: Flow) -> bool:
    cfg = current_app.config
    now = clock.now()
    return (now - flow.updated_at > dt.timedelta(seconds=cfg["FLOW_IDLE_SECONDS"])
            or now - flow.created_at > dt.timedelta(seconds=cfg["FLOW_MAX_SECONDS"]))


def load() -> Flow | None:
    """The live flow of this browser for the current union, or None."""
    tenant = current_tenant()
    handle = session.get(_COOKIE_KEY, {}).get(tenant.id)
    if not handle:
        return None
    s = db.session()
    flow = s.exec(select(Flow).where(Flow.handle_hash == _hash(handle), Flow.tenant == tenant.id)).first()
    if flow is None or flow.ended_at is not None:
        return None
    if _expired(flow):
        end(flow, "expired")
        return None
    return flow


def advance(flow: Flow, to_step: str, **changes) -> bool:
    """Move `flow` from its current step to `to_step` atomically and rotate its handle.

    Only one of several parallel requests wins; the others get False. Commits.
    """
    handle = secrets.token_urlsafe(32)
    values = {"step": to_step, "handle_hash": _hash(handle), "updated_at": clock.now(), **changes}
    s = db.session()
    result = s.execute(
        update(Flow).where(Flow.id == flow.id, Flow.step == flow.step, Flow.handle_hash == flow.handle_hash,
                           Flow.ended_at.is_(None)).values(**values)
    )
    s.commit()
    if result.rowcount != 1:
        return False
    metrics.flow_moved(flow.tenant, to_step)
    for k, v in values.items():
        setattr(flow, k, v)
    _remember(flow.tenant, handle)
    return True


def touch(flow: Flow, **changes) -> None:
    """Save changes that stay on the same step (e.g. ① values kept for going back). Commits."""
    s = db.session()
    s.execute(update(Flow).where(Flow.id == flow.id, Flow.ended_at.is_(None))
              .values(updated_at=clock.now(), **changes))
    s.commit()
    for k, v in changes.items():
        setattr(flow, k, v)


def end(flow: Flow, outcome: str) -> bool:
    """End the flow server-side (cancel, deny, consent, expiry); nothing of it can be resumed."""
    s = db.session()
    result = s.execute(update(Flow).where(Flow.id == flow.id, Flow.ended_at.is_(None))
                       .values(ended_at=clock.now(), outcome=outcome, updated_at=clock.now()))
    s.commit()
    flow.ended_at, flow.outcome = clock.now(), outcome
    if result.rowcount == 1:
        metrics.flow_ended(flow.tenant, flow.step, outcome)
    return result.rowcount == 1


def screen_url(flow: Flow) -> str:
    return url_for(STEPS[flow.step][0], tenant=flow.tenant)


def no_flow_response():
    return render_template(current_tenant().templates("flow/no_flow.html"), message=messages.NO_FLOW), 400


def flow_step(step: str):
    """Step guard: the view runs only for a live flow standing at `step`; g.flow is that flow."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            flow = load()
            if flow is None:
                return no_flow_response()
            if flow.step != step:
                s = db.session()
                oplog.record(s, tenant=flow.tenant, screen=STEPS[step][1], event="out_of_order",
                             result="refused", flow=flow, detail=f"at {flow.step}")
                s.commit()
                return redirect(screen_url(flow), code=303)
            g.flow = flow
            g.screen_id, g.screen_title = STEPS[step][1], STEPS[step][2]
            return view(*args, **kwargs)

        return wrapped

    return decorator
