"""Benchmark: gunicorn's process model on the real flow, by latency (p50/p99), not only throughput.

    python bench/bench_workers.py [--seconds 3] [--rounds 3] [--concurrency 16]
                                  [--configs sync:2 sync:4 sync:5 gthread:4x2 gthread:3x4]
                                  [--baseline gthread:2x8] [--database-url postgresql://...]

For each configuration, three phases against one gunicorn:
  ①      GET ① (SOA201) of a flow standing there, --concurrency keep-alive clients;
  poll   ④'s status poll (htmx) of a flow waiting for its call, --concurrency clients;
  ①+slow GET ① again while --slow clients post a wrong birth date to ② in a loop: every ② answer
         leaves IDENTITY_CHECK_SECONDS (0.1 s) after the request came in, its worker (or thread)
         sleeping meanwhile, which is what a slow core-banking or telephony call does to a worker.
Each configuration runs alternately with the baseline (baseline, config, baseline, config, ...),
--rounds times, so the load other people put on this machine hits both alike; the figures are the
medians of the rounds (the baseline's over all its runs). Identity budgets, locks' effects and the
load-shedding ceilings are lifted or irrelevant: ② keeps answering (mismatch, then locked) in 0.1 s.
How it measures (keep-alive client processes, per-request latency): bench/harness.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import secrets
import statistics
import sys
import time
import urllib.parse

import harness

WINDOW_SECONDS = 3600
ACCOUNT_PATH = "/amami/flow/account"
CUSTOMER_PATH = "/amami/flow/customer"
POLL_PATH = "/amami/flow/call/status"
UNLIMITED = "100000000 per 10 minutes"
DEFAULT_CONFIGS = ["sync:2", "sync:4", "sync:5", "gthread:4x2", "gthread:3x4"]


@dataclasses.dataclass(frozen=True)
class Config:
    worker_class: str
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> "Config":
        kind, _, size = text.partition(":")
        workers, _, threads = size.partition("x")
        return cls(kind, int(workers), int(threads or 1) if kind == "gthread" else 1)

    def __str__(self) -> str:
        return f"sync {self.workers}" if self.worker_class == "sync" else f"gthread {self.workers}×{self.threads}"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured phase")
    parser.add_argument("--rounds", type=int, default=3, help="(baseline, config) pairs per configuration")
    parser.add_argument("--concurrency", type=int, default=16, help="client processes of ① and of the poll")
    parser.add_argument("--slow", type=int, default=4, help="clients posting ② (0.1 s answers) in the ①+slow phase")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, metavar="CLASS:N[xT]")
    parser.add_argument("--baseline", default="gthread:2x8", metavar="CLASS:N[xT]")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    return parser.parse_args()


def seed(config: dict) -> dict:
    """Three flows of one browser each: at ①, at ④ (attempt open), at ② (account known, form token);
    returns the headers (cookie, htmx) and the ② form body the clients send."""
    from flask_wtf.csrf import generate_csrf
    from sqlmodel import Session

    from webapp import clock, create_app, db
    from webapp.callauth import service
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount
    from webapp.flow.models import Flow
    from webapp.oauth.models import OAuthClient  # noqa: F401  (table)

    app = create_app(config)
    db.create_all(app)
    client_id = harness.register_app(app)["client_id"]
    now = clock.now()
    handles = {step: secrets.token_urlsafe(32) for step in ("account", "call", "customer")}
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        key = AccountKey("amami", "115", "1", "1100026")
        s.add(SandboxAccount(tenant="amami", branch="115", account_type="1", number="1100026", name_kana="ﾃﾞｰﾀ ﾀﾛｳ",
                             birth_date=__import__("datetime").date(1980, 1, 1), phone="09011113333",
                             pin_hash=pin_hash(key, "1234"), cash_card=True, status="active", balance=1000))
        flows = {}
        for step, handle in handles.items():
            flows[step] = Flow(handle_hash=hashlib.sha256(handle.encode()).hexdigest(), tenant="amami", step=step,
                               client_id=client_id, redirect_uri="https://app.example/cb", oauth_request={},
                               branch="115" if step != "account" else None, account_type="1" if step != "account" else None,
                               account_number="1100026" if step != "account" else None,
                               phone_e164="+819011113333" if step == "call" else None, created_at=now, updated_at=now)
            s.add(flows[step])
        s.commit()
    cookies = {}
    with app.test_request_context():
        service.open_attempt(db.session(), flows["call"], app.extensions["tenants"]["amami"])
        serializer = app.session_interface.get_signing_serializer(app)
        name = app.config["SESSION_COOKIE_NAME"]
        for step in ("account", "call"):
            cookies[step] = f"{name}={serializer.dumps({'flows': {'amami': handles[step]}})}"
    with app.test_request_context():
        from flask import session

        session["flows"] = {"amami": handles["customer"]}
        token = generate_csrf()
        cookies["customer"] = f"{name}={serializer.dumps(dict(session))}"
    app.extensions["db_engine"].dispose()
    form = urllib.parse.urlencode({"csrf_token": token, "name_kana": "ﾃﾞｰﾀ ﾀﾛｳ", "birth_year": "1999",
                                   "birth_month": "01", "birth_day": "01", "phone": "09011113333",
                                   "email": "bench@example.jp", "email_confirm": "bench@example.jp"}).encode()
    return {"account": {"Cookie": cookies["account"]},
            "poll": {"Cookie": cookies["call"], "HX-Request": "true"},
            "customer": {"Cookie": cookies["customer"], "Content-Type": "application/x-www-form-urlencoded"},
            "form": form}


def run(ws, args, config: Config, seeded: dict) -> dict:
    server_args = argparse.Namespace(workers=config.workers, threads=config.threads, worker_class=config.worker_class)
    with harness.serve(ws, server_args):
        ok = harness.get(ws.port, ACCOUNT_PATH, seeded["account"])[0] == 200 \
            and harness.get(ws.port, POLL_PATH, seeded["poll"])[0] == 200
        if not ok:
            raise SystemExit(f"{config}: ① or the poll did not answer 200 before measuring")
        harness.measure(ws.port, ACCOUNT_PATH, seeded["account"], 1.0, args.concurrency)  # warm every worker
        first = harness.measure(ws.port, ACCOUNT_PATH, seeded["account"], args.seconds, args.concurrency)
        poll = harness.measure(ws.port, POLL_PATH, seeded["poll"], args.seconds, args.concurrency)
        slow = harness.measure(ws.port, ACCOUNT_PATH, seeded["account"], args.seconds,
                               max(args.concurrency - args.slow, 1),
                               background=[(CUSTOMER_PATH, seeded["customer"], args.slow, "POST", seeded["form"])])
    return {"first": first, "poll": poll, "slow": slow}


def median(runs: list[dict], phase: str, key: str) -> float:
    return statistics.median(r[phase][key] for r in runs)


def main() -> int:
    args = arguments()
    baseline = Config.parse(args.baseline)
    configs = [Config.parse(c) for c in args.configs]
    results: dict[Config, list[dict]] = {c: [] for c in [baseline, *configs]}
    started = time.monotonic()
    with harness.workspace(args, PHONE_AUTH_WINDOW_SECONDS=WINDOW_SECONDS, IDENTITY_CHECKS_PER_IP=UNLIMITED,
                           IDENTITY_FAILURES_PER_CLIENT=UNLIMITED, IDENTITY_FAILURES_PER_UNION=UNLIMITED,
                           LOG_LEVEL="WARNING") as ws:
        seeded = seed(ws.app_config())
        for round_ in range(1, max(args.rounds, 1) + 1):
            for config in configs:
                for c in (baseline, config):
                    figures = run(ws, args, c, seeded)
                    results[c].append(figures)
                    print(f"round {round_} {str(c):13} ① p50 {figures['first']['p50_ms']:6.1f} p99 "
                          f"{figures['first']['p99_ms']:7.1f} ms {figures['first']['rps']:6.0f}/s | poll p99 "
                          f"{figures['poll']['p99_ms']:7.1f} ms {figures['poll']['rps']:6.0f}/s | ①+slow p99 "
                          f"{figures['slow']['p99_ms']:7.1f} ms, ② {figures['slow'].get('background_rps', 0):5.1f}/s",
                          file=sys.stderr, flush=True)
    failed = sum(r[p]["failed"] for runs in results.values() for r in runs for p in ("first", "poll", "slow"))
    print(f"# {ws.engine}, {args.concurrency} keep-alive clients (①+slow: {max(args.concurrency - args.slow, 1)} on ① "
          f"+ {args.slow} posting ②), {args.seconds:g} s phases, {args.rounds} rounds alternating with the baseline, "
          f"medians; {time.monotonic() - started:.0f} s; {failed} non-200 answers (② answers 200)")
    print("| web command | ① req/s | ① p50 | ① p99 | poll req/s | poll p50 | poll p99 | ① p99 with slow ② | ② answers/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config, runs in results.items():
        print(f"| {config}{' (baseline)' if config == baseline else ''} | {median(runs, 'first', 'rps'):.0f} | "
              f"{median(runs, 'first', 'p50_ms'):.0f} ms | {median(runs, 'first', 'p99_ms'):.0f} ms | "
              f"{median(runs, 'poll', 'rps'):.0f} | {median(runs, 'poll', 'p50_ms'):.0f} ms | "
              f"{median(runs, 'poll', 'p99_ms'):.0f} ms | {median(runs, 'slow', 'p99_ms'):.0f} ms | "
              f"{median(runs, 'slow', 'background_rps'):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
