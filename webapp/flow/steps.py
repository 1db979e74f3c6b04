"""The step machine: which screen a request may see, and the move from one screen to the next.

A screen may be shown only when the flow stands at its step (`flow_step`); any other request is
sent to the step the flow is at (or told there is no flow), and the attempt is logged. A screen's
view never names the step that follows it: when its step is done it calls `finish_step`, which
moves the flow to the next step of `STEPS`, writes the step's log row (its screen id, from
`STEPS`), commits and redirects. Every other log row of a step goes through `log_step`, so each row
carries the screen id of the step it was written on. Adding a screen is one module and one line in
`STEPS`.
"""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

from flask import g, redirect, url_for

from .. import db, messages, oplog
from ..render import go, render_exact
from . import state
from .models import Flow
from .state import STEPS

T = TypeVar("T")


def step_url(step: str) -> str:
    return url_for(STEPS[step].endpoint)


def screen_url(flow: Flow) -> str:
    """Where the flow stands."""
    return url_for(STEPS[flow.step].endpoint, tenant=flow.tenant)


def no_flow_response():
    return render_exact("flow/no_flow.html", 400, message=messages.NO_FLOW)


def log_step(flow: Flow, event: str, result: str, *, detail: str | None = None, step: str | None = None,
             commit: bool = True) -> None:
    """One operation-log row of `flow`, with the screen id of `step` (default: the step the flow is at).

    Commits, unless `commit=False` (the row then goes with the caller's transaction)."""
    s = db.session()
    oplog.write(s, tenant=flow.tenant, screen=STEPS[step or flow.step].screen_id, event=event, result=result,
                flow=flow, detail=detail)
    if commit:
        s.commit()


def flow_step(step: str, *, with_client: bool = False):
    """Step guard: the view runs only for a live flow standing at `step`; g.flow is that flow, and
    with `with_client` g.client its app's client row (read with the flow, in one query)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            flow, g.client = state.load_with_client() if with_client else (state.load(), None)
            if flow is None:
                return no_flow_response()
            if flow.step != step:
                log_step(flow, "out_of_order", "refused", detail=f"at {flow.step}", step=step)
                return redirect(screen_url(flow), code=303)
            g.flow = flow
            g.screen_id, g.screen_title = STEPS[step].screen_id, STEPS[step].title
            return view(*args, **kwargs)

        return wrapped

    return decorator


def client_vary(client) -> tuple:
    """What ① and ⑥ show of the flow's client (its operator), with its id: their blank page's `vary`
    (render_blank). A client renamed since gets pages of its own."""
    return (client.client_id, client.operator) if client is not None else ()


def next_step(flow: Flow, step: str | None = None) -> str:
    """The step after `step` (default: where the flow stands) on the flow's route."""
    route = state.ROUTES[flow.purpose]
    return route[route.index(step or flow.step) + 1]


def _move(flow: Flow, to_step: str, event: str | None, changes: dict):
    """Move to `to_step` with `changes` and, when this request won the move, log `event` (with the
    screen id of the step left), in one transaction with whatever the caller has pending; then
    redirect to `to_step`'s screen (a request that lost the race goes there too)."""
    s = db.session()
    left = flow.step
    handle = state.move(s, flow, to_step, **changes)
    if handle is not None and event is not None:
        log_step(flow, event, "ok", step=left, commit=False)
    s.commit()
    state.moved(flow, handle)
    return go(step_url(to_step))


def finish_step(flow: Flow, **changes):
    """The flow's step is done: on to the next step of its route, saving `changes` on the way. Commits
    (with the caller's pending work, e.g. ④'s used call attempt); returns the redirect. (The last
    step has no next one: finish_last_step ends the flow.)"""
    return _move(flow, next_step(flow), STEPS[flow.step].done_event, changes)


def back_to(flow: Flow, step: str, **changes):
    """Send the flow back to an earlier `step` (② → ① when the account itself is wrong). Commits."""
    return _move(flow, step, None, changes)


def end_flow(flow: Flow, outcome: str, *, event: str, result: str = "ok", detail: str | None = None) -> bool:
    """End the flow with `outcome` and log `event` in one transaction; False when it had already ended
    (then nothing is logged). Commits."""
    s = db.session()
    won = state.close(s, flow, outcome)
    if won:
        log_step(flow, event, result, detail=detail, commit=False)
    s.commit()
    state.closed(flow, outcome, won)
    return won


def finish_last_step(flow: Flow, outcome: str, work: Callable[..., T], describe: Callable[[T], str]) -> T | None:
    """The last step (⑥ 許可する) is done: end the flow with `outcome` and run `work(session)` (the
    consent, its code, its mail) in ONE transaction, all or nothing, with the step's log row
    (`describe(what work returned)` as its detail).

    Of two parallel requests only one ends the flow; the other gets None and nothing is written.
    Whatever `work` raises rolls everything back, the flow included, and goes up to the caller.
    """
    s = db.session()
    if not state.close(s, flow, outcome, at_step=flow.step):
        s.rollback()
        return None
    try:
        done = work(s)
    except BaseException:
        s.rollback()
        raise
    log_step(flow, STEPS[flow.step].done_event, "ok", detail=describe(done), commit=False)
    s.commit()
    state.closed(flow, outcome, True)
    return done
