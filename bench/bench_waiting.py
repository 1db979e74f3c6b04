"""Benchmark: N customers waiting on ④ at once, each browser polling the status every 2 s.

    python bench/bench_waiting.py [--customers 1000] [--seconds 30] [--poll-ms 2000] [--keep-alive 5]
                                  [--workers 2] [--threads 8] [--database-url postgresql://...]

A database with --customers flows standing at ④, each with its own call attempt waiting (its own
phone), and the Procfile's web command (gunicorn gthread 2×8). Each customer arrives at a random
moment of the first poll interval, opens a keep-alive connection and polls `/flow/call/status` as
htmx does (`every 2s`: the next poll 2 s after the previous one was sent, or at once if the answer
took longer), with its own signed cookie, until --seconds are up; a connection the server closed
is opened again (counted). An open loop: the server is offered customers/(poll interval) polls a
second (1,000 customers: 500/s) whatever its latency, as real browsers would.

The load generator is asyncio in one process (a raw HTTP/1.1 client, no library): it is paced, not a
closed loop at full speed, and its own CPU share is printed; wrk cannot pace its connections'
first requests without holding a gthread worker thread per connection until it sends.

Printed: polls answered a second, p50/p99/max latency (the first interval, while customers arrive,
included), errors, the gunicorn workers' CPU over the run (cores, per worker), the generator's CPU,
and `/healthz` req/s (wrk, 16 connections, closed loop) right before, to show how loaded the
machine was.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import random
import secrets
import shutil
import subprocess
import sys
import time

import harness
from bench_screens import parse_wrk


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll-ms", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--keep-alive", type=int, default=None,
                        help="gunicorn --keep-alive seconds (default: gunicorn.conf.py's)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    harness.figures_argument(parser)
    return parser.parse_args()


def seed(config: dict, n: int) -> list[str]:
    """n flows at ④ with a waiting attempt each; their Cookie header values."""
    from sqlalchemy import insert, select

    from webapp import clock, create_app, db
    from webapp.callauth import service
    from webapp.callauth.models import CallAttempt
    from webapp.flow.models import Flow

    app = create_app(config)
    db.create_all(app)
    client_id = harness.register_app(app)["client_id"]
    now = clock.now()
    handles = [secrets.token_urlsafe(32) for _ in range(n)]
    with app.app_context():
        pool = service.pool_of(app.extensions["tenants"]["amami"])
    with app.app_context(), db.engine().begin() as conn:
        conn.execute(insert(Flow), [dict(
            handle_hash=hashlib.sha256(h.encode()).hexdigest(), tenant="amami", step="call", client_id=client_id,
            redirect_uri="https://app.example/cb",
            oauth_request={"scope": "accounts", "state": "s", "code_challenge": "x" * 43,
                           "code_challenge_method": "S256"},
            branch="115", account_type="1", account_number=f"{1100000 + i:07d}", name_kana="ﾃﾞｰﾀ ﾀﾛｳ",
            email="bench@example.jp", phone_e164=f"+8190{50000000 + i:08d}", created_at=now, updated_at=now)
            for i, h in enumerate(handles)])
        ids = conn.execute(select(Flow.id, Flow.phone_e164).order_by(Flow.id)).all()
        conn.execute(insert(CallAttempt), [dict(
            flow_id=flow_id, tenant="amami", phone_e164=phone, pool_number=pool[i % len(pool)], state=service.WAITING,
            started_at=now, expires_at=now + dt.timedelta(hours=1), attempts=1) for i, (flow_id, phone) in enumerate(ids)])
    with app.test_request_context():
        serializer = app.session_interface.get_signing_serializer(app)
        name = app.config["SESSION_COOKIE_NAME"]
        cookies = [f"{name}={serializer.dumps({'flows': {'amami': h}})}" for h in handles]
    app.extensions["db_engine"].dispose()
    return cookies


def run_wrk(url: str, *options: str) -> str:
    return subprocess.run(["wrk", *options, url], capture_output=True, text=True, check=True).stdout


class Customers:
    """The waiting customers' browsers: latencies (s) of answered polls, errors, reconnections."""

    def __init__(self, port: int, path: str, cookies: list[str], poll: float, seconds: float):
        self.port, self.poll, self.seconds = port, poll, seconds
        self.requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {c}\r\nHX-Request: true\r\n"
                         f"HX-Target: call-status\r\n\r\n".encode() for c in cookies]
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.reconnections = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.end = loop.time() + self.seconds
        await asyncio.gather(*(self.customer(loop, r) for r in self.requests))

    async def customer(self, loop, request: bytes) -> None:
        await asyncio.sleep(random.uniform(0, self.poll))
        connection = None
        while (sent := loop.time()) < self.end:
            try:
                connection, status = await self.poll_once(connection, request)
                self.latencies.append(loop.time() - sent)
                if status != 200:
                    self.errors[str(status)] = self.errors.get(str(status), 0) + 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
                connection = None
            await asyncio.sleep(max(0.0, sent + self.poll - loop.time()))
        if connection is not None:
            connection[1].close()

    async def poll_once(self, connection, request: bytes):
        """One poll on the kept connection; if the server had closed it while idle (keep-alive
        timeout), once more on a new one, as a browser does: ((reader, writer), status)."""
        if connection is not None:
            try:
                connection[1].write(request)
                return connection, await self.answer(connection[0])
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                connection[1].close()
                if isinstance(e, asyncio.IncompleteReadError) and e.partial:
                    raise
                self.reconnections += 1
        connection = await asyncio.open_connection("127.0.0.1", self.port)
        connection[1].write(request)
        return connection, await self.answer(connection[0])

    @staticmethod
    async def answer(reader) -> int:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next((int(v) for k, _, v in (line.partition(b":") for line in lines[1:])
                       if k.strip().lower() == b"content-length"), 0)
        await reader.readexactly(length)
        return status


def main() -> int:
    args = arguments()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt install wrk)")
    path = "/amami/flow/call/status"
    with harness.workspace(args, PHONE_AUTH_WINDOW_SECONDS=3600, LOG_LEVEL="WARNING") as ws:
        cookies = seed(ws.app_config(), args.customers)
        extra = ("--keep-alive", str(args.keep_alive)) if args.keep_alive is not None else ()
        with harness.serve(ws, args, *extra) as server:
            status, body = harness.get(ws.port, path, {"Cookie": cookies[0], "HX-Request": "true"})
            if status != 200:
                raise SystemExit(f"the poll answered {status} before measuring: {body[:300]!r}")
            time.sleep(1.0)  # the workers are up
            bare = run_wrk(ws.origin + harness.BARE_PATH, "-t1", "-c16", "-d3s", "--latency")
            customers = Customers(ws.port, path, cookies, args.poll_ms / 1000, args.seconds)
            cpu_before, own_before, started = harness.worker_cpu(server.pid), time.process_time(), time.monotonic()
            asyncio.run(customers.run())
            wall = time.monotonic() - started
            own = time.process_time() - own_before
            cpu_after = harness.worker_cpu(server.pid)
            each = [cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after]
            cpu = sum(each)
    latencies = sorted(customers.latencies)
    healthz = parse_wrk(bare)
    cores = os.cpu_count() or 1
    print(f"# {args.customers} customers waiting on ④, a poll every {args.poll_ms / 1000:g} s each, {wall:.0f} s, "
          f"gunicorn {args.worker_class} {args.workers}x{args.threads}"
          f"{f', keep-alive {args.keep_alive} s' if args.keep_alive is not None else ''}, {ws.engine}")
    print(f"| polls/s (offered {args.customers * 1000 / args.poll_ms:,.0f}) | p50 | p99 | max | errors | "
          "workers' CPU | generator's CPU | `/healthz` before |")
    print("|---|---|---|---|---|---|---|---|")
    pct = [harness.percentile(latencies, f) * 1000 for f in (0.5, 0.99, 1.0)]
    errors = sum(customers.errors.values())
    print(f"| {len(latencies) / wall:,.0f} | {pct[0]:.1f} ms | {pct[1]:.1f} ms | {pct[2]:.0f} ms | "
          f"{errors}{f' {customers.errors}' if errors else ''} | "
          f"{cpu / wall:.2f} cores ({cpu / wall / cores:.0%} of {cores}; by worker "
          f"{', '.join(f'{c / wall:.2f}' for c in each)}) | {own / wall:.0%} of one core | {healthz['rps']:,.0f} req/s |")
    print(f"connections the server had closed while idle, opened again: {customers.reconnections:,}")
    harness.write_figures(args.json, {"engine": ws.engine, "customers": args.customers,
                                      "polls_per_s": len(latencies) / wall, "p50_ms": pct[0], "p99_ms": pct[1], "max_ms": pct[2], "errors": errors,
                                      "cores": cpu / wall, "healthz_rps": healthz["rps"]})
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
