"""Benchmark: ④'s status poll (`GET /{tenant}/flow/call/status`, htmx) next to a bare route
(/healthz) of the same app, in the same run, against gunicorn gthread on loopback.

    python bench/bench_poll.py [--seconds 5] [--rounds 3] [--concurrency 4] [--workers 2] [--threads 8]
                               [--database-url postgresql://...]   (default: a temp SQLite file)

A flow waits at ④ (its call attempt open, the window long enough for the run); every poll carries
that flow's session cookie and `HX-Request: true`, so the server does what it does for a customer
polling every 2 s: load the flow, read the attempt, render the waiting fragment. Prints the median
requests/s of each, the median of the per-round ratios and how many polling customers that makes.
How it measures (alternate rounds, keep-alive client processes, no maintenance windows, no
load-shedding ceiling, so no 503 or 429): bench/harness.py.
"""
from __future__ import annotations

import hashlib
import secrets
import statistics
import sys

import harness

WINDOW_SECONDS = 3600  # the attempt keeps waiting for the whole run
POLL_PATH = "/amami/flow/call/status"


def seed(config: dict) -> tuple[str, str]:
    """A flow standing at ④ with its attempt open; returns (cookie name, cookie value) of its browser."""
    from sqlmodel import Session

    from webapp import clock, create_app, db
    from webapp.callauth import service
    from webapp.flow.models import Flow

    app = create_app(config)
    db.create_all(app)
    handle = secrets.token_urlsafe(32)
    now = clock.now()
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        flow = Flow(handle_hash=hashlib.sha256(handle.encode()).hexdigest(), tenant="amami", step="call",
                    client_id="bench", redirect_uri="https://app.example/cb", oauth_request={}, branch="115",
                    account_type="1", account_number="1100026", phone_e164="+819011113333",
                    created_at=now, updated_at=now)
        s.add(flow)
        s.commit()
    with app.test_request_context():
        service.open_attempt(db.session(), flow, app.extensions["tenants"]["amami"])
        cookie = app.session_interface.get_signing_serializer(app).dumps({"flows": {"amami": handle}})
        name = app.config["SESSION_COOKIE_NAME"]
    app.extensions["db_engine"].dispose()
    return name, cookie


def main() -> int:
    args = harness.arguments(__doc__, "poll")
    with harness.workspace(args, PHONE_AUTH_WINDOW_SECONDS=WINDOW_SECONDS) as ws:
        cookie_name, cookie = seed(ws.app_config())
        poll = {"HX-Request": "true", "Cookie": f"{cookie_name}={cookie}"}
        with harness.serve(ws, args):
            status, body = harness.get(ws.port, POLL_PATH, poll)
            if status != 200 or b'hx-trigger="every 2s"' not in body:
                print(f"unexpected first poll: {status} {body[:300].decode(errors='replace')}", file=sys.stderr)
                return 1
            rounds = harness.compare(ws, args, POLL_PATH, poll)
        failed = harness.report(ws, args, rounds, short="poll", label="④ status poll (waiting)")
    poll_rps = statistics.median(p["rps"] for _, p in rounds)
    print(f"customers polling every 2 s this server carries: ~{int(poll_rps * 2):,}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
