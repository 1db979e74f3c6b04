"""What operators watch: Prometheus metrics at `/metrics` (text format, prometheus_client).

Protected: the route answers only when `FLASK_METRICS_TOKEN` is set, and only to a request that
carries it as `Authorization: Bearer <token>` (401 otherwise; 404 while no token is configured).
The compose file's proxy also refuses `/metrics` on the customer origin; Prometheus scrapes the
web container directly, inside the private network.

Under gunicorn every worker is its own process: gunicorn.conf.py sets `PROMETHEUS_MULTIPROC_DIR`
(a fresh directory per server start, emptied at start, removed at exit) before the workers fork,
each worker writes its counts to files there, `child_exit` marks a dead worker's files, and a
scrape adds all files up (`MultiProcessCollector`), so any worker answers for the whole server.
Without the variable (tests, `flask run`) the counts are the process's own.

| metric | labels | counted where |
|---|---|---|
| `renkei_http_requests_total`, `renkei_http_request_duration_seconds` | endpoint (Flask's name; `static` for WhiteNoise's files, `unmatched` for 404s), method, status | WSGI middleware around the whole app: includes the constant-time wait of ② ⑤ |
| `renkei_flows_started_total` | tenant | flow/state.start |
| `renkei_flow_step_entries_total` | tenant, step | each move onto a step (flow/state.start, moved; going back to ① counts too) |
| `renkei_flows_ended_total` | tenant, step (where it ended), outcome (consented, cancelled, denied, expired, client_gone) | flow/state.closed (every end, consent included) |
| `renkei_events_total` | tenant, screen, event, result | every operation-log row (oplog.record) |
| `renkei_identity_checks_total` | tenant, screen (SOA202 ②, SOA211 ⑤), result (ok, fail, locked, refused, error) | oplog.record |
| `renkei_accounts_locked_total` | tenant | oplog.record (`account_locked`) |
| `renkei_telephony_webhook_total` | result (forbidden, bad_request, matched, withheld, late, …) | callauth/views.inbound |
| `renkei_mail_outbox_pending`, `…_due`, `…_failed`, `…_oldest_pending_seconds` | — | computed at scrape time from `mail_outbox` (its (state, next_attempt_at) index) |
| `renkei_webhook_outbox_pending`, `…_due`, `…_failed`, `…_oldest_pending_seconds` | — | the same, from `webhook_outbox` (the apps' events) |

Flows abandoned at a step, over a window longer than a flow's life (FLOW_MAX_SECONDS, 1 h):
entries(step) − entries(next step) − ended(step, any outcome); explicit cancels, denials and
expiries noticed when the browser came back are in `renkei_flows_ended_total`.
"""
from __future__ import annotations

import hmac
import os
import time

from flask import Flask, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

IDENTITY_EVENTS = {"identity_check", "pin_check"}  # the log rows of ② and ⑤'s checks (flow/identity.py)
ENDPOINT_KEY = "renkei.endpoint"  # WSGI environ: the Flask endpoint that answered
# A label value per method a client may invent would be a series per invention: the rest are "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The operation log's event for the attempt that locked an account: counted here by this name,
# written by the lockout (webapp/lockout.py re-exports it), so metrics depends on nothing above it.
LOCKED_EVENT = "account_locked"

REQUESTS = Counter("renkei_http_requests", "HTTP requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("renkei_http_request_duration_seconds", "Time to answer a request, by endpoint", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0))
FLOWS_STARTED = Counter("renkei_flows_started", "Customer flows started (a valid authorization request)", ["tenant"])
STEP_ENTRIES = Counter("renkei_flow_step_entries", "Moves of a flow onto a step", ["tenant", "step"])
FLOWS_ENDED = Counter("renkei_flows_ended", "Flows ended, by the step they stood at and how", ["tenant", "step", "outcome"])
EVENTS = Counter("renkei_events", "Operation-log rows", ["tenant", "screen", "event", "result"])
IDENTITY_CHECKS = Counter("renkei_identity_checks", "Identity checks of ② and ⑤ by result", ["tenant", "screen", "result"])
LOCKS = Counter("renkei_accounts_locked", "Accounts locked until midnight JST (B84)", ["tenant"])
WEBHOOK = Counter("renkei_telephony_webhook", "Telephony webhook posts by result", ["result"])


# --- domain counts (called from the flow, the operation log and the webhook) -------------------

def flow_started(tenant: str) -> None:
    FLOWS_STARTED.labels(tenant).inc()
    STEP_ENTRIES.labels(tenant, "account").inc()


def flow_moved(tenant: str, step: str) -> None:
    STEP_ENTRIES.labels(tenant, step).inc()


def flow_ended(tenant: str, step: str, outcome: str) -> None:
    FLOWS_ENDED.labels(tenant, step, outcome).inc()


_EVENT_CHILDREN: dict[tuple[str, str, str, str], object] = {}  # as RequestMetrics keeps its children


def event_logged(tenant: str, screen: str, event: str, result: str) -> None:
    """One operation-log row: every row by (screen, event, result); identity checks and locks by name."""
    key = (tenant, screen, event, result)
    child = _EVENT_CHILDREN.get(key)
    if child is None:  # prometheus_client's labels() locks and checks its arguments on every call
        child = _EVENT_CHILDREN[key] = EVENTS.labels(*key)
    child.inc()
    if event == LOCKED_EVENT:
        LOCKS.labels(tenant).inc()
    elif event in IDENTITY_EVENTS:
        IDENTITY_CHECKS.labels(tenant, screen, result).inc()


def webhook_answered(result: str) -> None:
    WEBHOOK.labels(result).inc()


# --- requests --------------------------------------------------------------------------------

class RequestMetrics:
    """WSGI middleware: count and time every request, static files included."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        # (endpoint, method, status) → its counter and histogram: prometheus_client's `labels()`
        # takes a lock and checks its arguments on every call, for the same few dozen children;
        # it hands back the same child each time, so keeping it here changes no count.
        self._children: dict[tuple[str, str, str], tuple] = {}

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status = ["500"]

        def recording_start_response(status_line, headers, exc_info=None):
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            endpoint = environ.get(ENDPOINT_KEY, "static")
            method = environ.get("REQUEST_METHOD", "")
            key = (endpoint, method if method in METHODS else "other", status[0])
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (REQUESTS.labels(*key), LATENCY.labels(endpoint))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


def _note_endpoint(response):
    # after_request runs for error handlers' answers too (404, 429, 500), unlike before_request.
    r = request._get_current_object()
    r.environ[ENDPOINT_KEY] = r.endpoint or "unmatched"
    return response


# --- the scrape ------------------------------------------------------------------------------

class OutboxCollector:
    """An outbox's backlog (`renkei_<table>_…`), read at scrape time: counts over its (state,
    next_attempt_at) index. One for the mail outbox, one for the webhook events."""

    def __init__(self, engine, table, noun: str):
        self.engine, self.table, self.noun = engine, table, noun

    def collect(self):
        from sqlalchemy import func, select

        from . import clock
        from .deliveries import FAILED, PENDING

        table, noun, prefix = self.table, self.noun, f"renkei_{self.table.__tablename__}"
        now = clock.now()
        pending = GaugeMetricFamily(f"{prefix}_pending", f"{noun.capitalize()} not yet sent")
        due = GaugeMetricFamily(f"{prefix}_due", f"Pending {noun} whose next attempt is due now")
        failed = GaugeMetricFamily(f"{prefix}_failed", f"{noun.capitalize()} given up (need staff)")
        oldest = GaugeMetricFamily(f"{prefix}_oldest_pending_seconds", f"Age of the oldest pending {noun}")
        up = GaugeMetricFamily(f"{prefix}_scrape_ok", "1 when the outbox could be read at this scrape")
        try:
            with self.engine.connect() as conn:
                n_pending, first = conn.execute(select(func.count(), func.min(table.created_at))
                                                .where(table.state == PENDING)).one()
                n_due = conn.execute(select(func.count()).where(table.state == PENDING,
                                                                table.next_attempt_at <= now)).scalar_one()
                n_failed = conn.execute(select(func.count()).where(table.state == FAILED)).scalar_one()
        except Exception:  # the database is down: /readyz says so; the scrape still answers
            current_app.logger.warning("metrics: %s unreadable", table.__tablename__, exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        pending.add_metric([], n_pending)
        due.add_metric([], n_due)
        failed.add_metric([], n_failed)
        age = (now - clock.as_utc(first)).total_seconds() if first is not None else 0.0
        oldest.add_metric([], max(age, 0.0))
        up.add_metric([], 1)
        yield from (pending, due, failed, oldest, up)


class _ThisProcess:
    """The default registry's metrics (single-process mode), as one collector of a scrape's registry."""

    def collect(self):
        return REGISTRY.collect()


def _authorised() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or ""
    header = request.headers.get("Authorization", "")
    return header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(), str(token).encode())


def metrics_view():
    if not current_app.config.get("METRICS_TOKEN"):
        return current_app.response_class("not found\n", status=404, mimetype="text/plain")
    if not _authorised():
        return current_app.response_class("unauthorized\n", status=401, mimetype="text/plain",
                                          headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    from . import db

    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    from .mail.models import MailOutbox
    from .webhooks.models import WebhookOutbox

    registry.register(OutboxCollector(db.engine(), MailOutbox, "mails"))
    registry.register(OutboxCollector(db.engine(), WebhookOutbox, "webhook events"))
    return current_app.response_class(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.after_request(_note_endpoint)
    app.add_url_rule("/metrics", "metrics", metrics_view)
    app.wsgi_app = RequestMetrics(app.wsgi_app)
