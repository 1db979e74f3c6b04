"""④ SOA209 電話番号認証: call the shown pool number from the registered phone within the window.

- GET opens the flow's call attempt the first time ④ appears (that starts the window) and shows
  it again on every later visit: reloading never restarts the window.
- The status area polls `flow.call_status` (htmx `every 2s`) while the attempt waits; the poll only
  reads the database and its final states (call seen, expired, superseded) carry no trigger, so
  polling stops by itself. Without JavaScript the customer calls, then presses 「確定する」.
- 「確定する」 (POST) before the call: the screen stays with 「認証中（認証着信待ち）」. After the call:
  the attempt is used once and the flow moves on to ⑤. After the window: the manual's 「…秒経過後の
  架電・「確定する」ボタン選択は無効となります。…」.
- The way back to ① after the window (decision): 「API連携認証の最初に戻る」 ends this flow (outcome
  expired) and starts a fresh one for the *same* authorization request (client, redirect URI,
  state, PKCE challenge), so the customer lands on ① without going back to the app; nothing of the
  old flow carries over, and the client still receives its answer on the original request.
- Sandbox mode only: 「（デモ）この番号から発信する」 records the call the customer would make,
  through the same code path as the webhook. It does not exist when sandbox is off.
"""
from __future__ import annotations

import collections
import datetime as dt
import functools

from flask import abort, current_app, g, redirect, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import bindparam, select

from .. import clock, db, messages
from ..callauth import service as callauth
from ..callauth.models import CONFIRMED, EXPIRED, SUPERSEDED, USED, WAITING, CallAttempt
from ..oauth.models import OAuthClient
from ..render import go, is_htmx, render_blank, render_exact, render_kept, render_page
from . import state
from .blueprint import bp
from .models import LINKS, Flow
from .steps import end_flow, finish_step, flow_step, log_step, next_step, no_flow_response, step_url


def _lines(status: callauth.Status, attempt) -> list[str]:
    """What the status area says."""
    if status.kind == CONFIRMED:
        return [callauth.CALL_SEEN]
    if status.kind in (EXPIRED, SUPERSEDED):
        first = (messages.CALL_TIME_RAN_OUT.format(seconds=callauth.window_seconds()) if status.kind == EXPIRED
                 else messages.CALL_SUPERSEDED_SHORT)
        return [first, messages.CALL_RETRY_HOW if callauth.renewals_left(attempt) else messages.CALL_NO_RETRY_LEFT]
    lines = [callauth.WAITING_TEXT]
    if status.withheld_seen:
        lines.append(callauth.WITHHELD_SEEN)
    return lines


def _times(attempt) -> dict:
    """The attempt's deadline as the screen shows it (JST) and the seconds left until it."""
    deadline = attempt.expires_at.astimezone(clock.JST)
    return {"deadline_clock": f"{deadline.hour}:{deadline.minute:02d}",
            "seconds_left": max(0, int((attempt.expires_at - clock.now()).total_seconds()))}


def _status_context(attempt, pressed: bool = False) -> dict:
    status = callauth.status_of(attempt)
    return {"call_state": status, "lines": _lines(status, attempt), "pressed": pressed,
            "pressed_text": callauth.PRESSED_TOO_EARLY, **_times(attempt),
            "renewals_left": callauth.renewals_left(attempt),
            "poll_url": _poll_url(pressed)}


def _poll_url(pressed: bool) -> str:
    return url_for("flow.call_status", pressed=1) if pressed else url_for("flow.call_status")


def _render(flow, attempt, form=None, pressed: bool = False, status: int = 200):
    """④ showing `attempt`; `form` None for a GET, whose page, while the call is awaited, is the same
    for every customer but for the numbers and times in it (render_blank)."""
    shown = {"masked_phone": callauth.masked_phone(flow.phone_e164),
             "pool_display": callauth.display_number(attempt.pool_number),
             "pool_tel": callauth.tel_uri(attempt.pool_number)}
    waiting = callauth.status_of(attempt)
    if form is None and not pressed and status == 200 and waiting.kind == WAITING and not waiting.withheld_seen:
        shown.update(_times(attempt))

        def blank_context() -> dict:
            context = _status_context(attempt)
            for varies in ("deadline_clock", "seconds_left", "renewals_left"):  # renewals: a final state's only
                del context[varies]
            return context

        return render_blank("flow/call.html", FlaskForm, text=shown, window=callauth.window_seconds(),
                            demo=current_app.config["SANDBOX"], late=blank_context)
    return render_page("flow/call.html", status, form=form or FlaskForm(), window=callauth.window_seconds(),
                       demo=current_app.config["SANDBOX"], **shown, **_status_context(attempt, pressed))


@bp.route("/call", methods=["GET", "POST"])
@flow_step("call")
def call():
    flow = g.flow
    form = FlaskForm() if request.method == "POST" else None  # CSRF only
    # a GET opens the attempt only the first time: later ones only read it
    if form is None or not form.validate_on_submit():
        shown = callauth.shown_attempt(flow.id) or callauth.open_shown_attempt(db.session(), flow, g.tenant)
        return _render(flow, shown, form)

    s = db.session()
    # 「確定する」: spends the flow's confirmed attempt, read only when it was not (or there is none yet)
    if callauth.consume(s, flow.id):
        return finish_step(flow)  # commits the consumption with the move and its log row
    s.rollback()
    attempt = callauth.open_attempt(s, flow, g.tenant)
    s.refresh(attempt)
    kind = callauth.status_of(attempt).kind
    if kind == USED:  # a parallel 「確定する」 already went on
        return go(step_url(next_step(flow, "call")))
    log_step(flow, "call_confirm", "fail" if kind == WAITING else "refused", detail=kind)
    return _render(flow, attempt, form, pressed=True)


@bp.route("/call/status", methods=["GET"])
def call_status():
    """The polled status area: one read, no writes, the smallest fragment that can change."""
    if not is_htmx():
        return redirect(url_for("flow.call"), code=303)
    row = _peek()
    if row is not None and row.ended_at is None and state.expired(row):
        state.load()  # the flow outlived its idle or absolute limit: state ends it (its rule, its one home)
        row = None
    if row is None or row.ended_at is not None:
        return render_exact("flow/partials/call_gone.html", message=messages.NO_FLOW)
    if row.step != "call":
        return go(step_url(row.step))
    if row.state is None:
        return go(url_for("flow.call"))
    status = callauth.status_of(row)
    if status.final:
        # The screen itself changes (the call button and 確定する go or move): the whole of ④ comes
        # back in place of #screen, once; it has no poll, so polling ends here.
        flow = state.load()
        if flow is None:
            return render_exact("flow/partials/call_gone.html", message=messages.NO_FLOW)
        response = _render(flow, callauth.shown_attempt(flow.id), FlaskForm())
        response.headers["HX-Retarget"] = "#screen"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    pressed = request.args.get("pressed") == "1"
    if not status.withheld_seen:  # waiting: the same area for every customer of the union
        return render_kept("flow/partials/call_status.html", vary=(pressed,),
                           late=lambda: {"call_state": status, "lines": _lines(status, row),
                                         "poll_url": _poll_url(pressed)})
    return render_exact("flow/partials/call_status.html", **_status_context(row, pressed=pressed))


# What state.load() reads, joined with the attempt, as one statement on a short connection: a poll
# every 2 s from every waiting customer costs one indexed lookup (see bench/bench_poll.py).
_POLL = (select(Flow.id, Flow.step, Flow.created_at, Flow.updated_at, Flow.ended_at,
                CallAttempt.state, CallAttempt.expires_at, CallAttempt.withheld_call_at, CallAttempt.attempts)
         .outerjoin(CallAttempt, CallAttempt.flow_id == Flow.id)
         .where(Flow.handle_hash == bindparam("handle_hash"), Flow.tenant == bindparam("tenant")))


PollRow = collections.namedtuple("PollRow", [c.name for c in _POLL.selected_columns])


@functools.cache
def _poll_sqlite() -> tuple[str, tuple[str, ...]]:
    """On SQLite the same statement, compiled once, runs as a plain DB-API SELECT in autocommit, as the
    maintenance read does (maintenance._sqlite_live_windows): SQLAlchemy's execution, its BEGIN and the
    ROLLBACK when the connection goes back were ~30 % of the poll's own time, for one indexed read.
    Compiled at the first poll, not at import: SQLite's dialect stays out of a PostgreSQL worker."""
    from sqlalchemy.dialects import sqlite

    compiled = _POLL.compile(dialect=sqlite.dialect())
    return str(compiled), tuple(compiled.positiontup)


# UTCDateTime on SQLite: naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'.
_STORED_UTC = frozenset(i for i, c in enumerate(_POLL.selected_columns) if isinstance(c.type, db.UTCDateTime))


def _peek():
    """This browser's flow for the current union and its call attempt, or None."""
    tenant_id = g._get_current_object().tenant.id
    hashed = state.browser_handle_hash(tenant_id)
    if not hashed:
        return None
    engine = db.engine()
    parameters = {"handle_hash": hashed, "tenant": tenant_id}
    if engine.dialect.name == "sqlite":
        return _sqlite_peek(parameters)
    return db.first_read(_POLL, parameters)  # the maintenance read's connection too


def _sqlite_peek(parameters: dict) -> PollRow | None:
    cursor = db.plain().cursor()  # the request's plain connection (the maintenance read's too)
    sql, names = _poll_sqlite()
    try:
        cursor.execute(sql, tuple(parameters[name] for name in names))
        found = cursor.fetchone()
    finally:
        cursor.close()
    if found is None:
        return None
    return PollRow._make(dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)
                         if i in _STORED_UTC and value is not None else value
                         for i, value in enumerate(found))


def _posted_attempt(flow):
    """The flow's call attempt, for a POST whose CSRF token holds; else None."""
    form = FlaskForm()  # CSRF only
    return callauth.attempt_for(db.session(), flow.id) if form.validate_on_submit() else None


@bp.route("/call/retry", methods=["POST"])
@flow_step("call")
def call_retry():
    """「もう一度電話番号認証を行う」: after the window, a new pool number and a fresh window on ④
    itself, without ① ② again; at most callauth.MAX_ATTEMPTS windows per flow."""
    flow = g.flow
    attempt = _posted_attempt(flow)
    if attempt is not None:
        callauth.renew_attempt(db.session(), flow, g.tenant, attempt)  # False: ④ shows why not
    return go(url_for("flow.call"))


@bp.route("/call/restart", methods=["POST"])
@flow_step("call")
def call_restart():
    """After the window (or when superseded): back to ① within the same authorization request."""
    flow = g.flow
    attempt = _posted_attempt(flow)
    if attempt is None or callauth.status_of(attempt).kind not in (EXPIRED, SUPERSEDED):
        return go(url_for("flow.call"))
    if end_flow(flow, "expired", event="call_restart"):
        if flow.purpose == LINKS:
            state.start(flow.tenant, None, None, {}, purpose=LINKS)
            return go(step_url(state.FIRST_STEP))
        client = OAuthClient.by_id(flow.client_id)
        if client is None or client.revoked_at is not None:
            return no_flow_response()
        state.start(flow.tenant, flow.client_id, flow.redirect_uri, dict(flow.oauth_request or {}))
    return go(step_url(state.FIRST_STEP))


def _sandbox_only(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not current_app.config["SANDBOX"]:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


@bp.route("/call/demo", methods=["POST"])
@_sandbox_only
@flow_step("call")
def call_demo():
    """（デモ）この番号から発信する: the call from the registered phone, recorded as the webhook would."""
    flow = g.flow
    attempt = _posted_attempt(flow)
    if attempt is not None:
        callauth.record_inbound_call(db.session(), call_sid=callauth.new_call_sid(), caller=flow.phone_e164,
                                     dialled=attempt.pool_number, direction="inbound")
    if is_htmx():  # the status area picks the call up on its next poll, as with a real call
        return "", 204
    return go(url_for("flow.call"))
