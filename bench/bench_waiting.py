"""Benchmark: N customers waiting on ④ at once, each browser polling the status every 2 s.

    python bench/bench_waiting.py [--customers 1000] [--seconds 30] [--poll-ms 2000] [--wrk-threads 2]
                                  [--workers 2] [--threads 8] [--database-url postgresql://...]

A database with --customers flows standing at ④, each with its own call attempt waiting (its own
phone), and the Procfile's web command (gunicorn gthread 2×8). wrk (bench/waiting.lua) holds one
keep-alive connection per customer; each connection polls `/flow/call/status` as htmx does, every
--poll-ms after the previous answer, the first poll at a random moment of the first interval, cycling
through the customers' signed cookies. So the server sees customers/(poll interval) polls a second
spread over time (1,000 customers: about 500/s), not a closed loop at full speed.

Printed: polls answered a second (and what was offered), p50/p99/max latency, errors, the gunicorn
workers' CPU over the run (cores; the machine has os.cpu_count()), wrk's own CPU, and `/healthz`
req/s measured by wrk right before (16 connections, closed loop) to show how loaded the machine was.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pathlib
import resource
import secrets
import shutil
import subprocess
import sys
import time

import harness
from bench_screens import parse_wrk

HERE = pathlib.Path(__file__).resolve().parent


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll-ms", type=int, default=2000)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--keep-alive", type=int, default=None, help="gunicorn --keep-alive (default: gunicorn.conf.py)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
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
    result = app.test_cli_runner().invoke(args=["clients", "add", "--tenant", "amami", "--name", "Bench App",
                                                "--operator", "Bench K.K.", "--redirect-uri",
                                                "https://app.example/cb"])
    client_id = json.loads(result.output)["client_id"]
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


def worker_cpu(master_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) each of the master's children has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for child in pathlib.Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split():
        fields = pathlib.Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        used[child] = (int(fields[11]) + int(fields[12])) / tick
    return used


def run_wrk(args, url: str, env: dict, *extra: str) -> tuple[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", *extra, url], capture_output=True, text=True, check=True, env=env).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    args = arguments()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt install wrk)")
    path = "/amami/flow/call/status"
    with harness.workspace(args, PHONE_AUTH_WINDOW_SECONDS=3600, LOG_LEVEL="WARNING") as ws:
        cookies = seed(ws.app_config(), args.customers)
        cookie_file = pathlib.Path(ws.tenants_dir.parent / "cookies.txt")
        cookie_file.write_text("\n".join(cookies) + "\n")
        extra = ("--keep-alive", str(args.keep_alive)) if args.keep_alive is not None else ()
        with harness.serve(ws, args, *extra) as server:
            status, body = harness.get(ws.port, path, {"Cookie": cookies[0], "HX-Request": "true"})
            if status != 200:
                raise SystemExit(f"the poll answered {status} before measuring: {body[:300]!r}")
            time.sleep(1.0)  # the workers are up
            bare, _ = run_wrk(args, ws.origin + harness.BARE_PATH, os.environ, "-t1", "-c16", "-d3s", "--latency")
            env = dict(os.environ, POLL_PATH=path, POLL_MS=str(args.poll_ms), COOKIES_FILE=str(cookie_file),
                       WRK_THREADS=str(args.wrk_threads), WRK_CONNECTIONS=str(args.customers))
            cpu_before, started = worker_cpu(server.pid), time.monotonic()
            out, wrk_cpu = run_wrk(args, ws.origin + path, env, f"-t{args.wrk_threads}", f"-c{args.customers}",
                                   f"-d{args.seconds:g}s", "--latency", "--timeout", "10s",
                                   "-s", str(HERE / "waiting.lua"))
            wall = time.monotonic() - started
            cpu_after = worker_cpu(server.pid)
            each = [cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after]
            cpu = sum(each)
    if os.environ.get("BENCH_RAW"):
        print(out, file=sys.stderr)
    polls, healthz = parse_wrk(out), parse_wrk(bare)
    max_ms = out.split("Latency", 1)[1].split()[2]
    cores = os.cpu_count() or 1
    print(f"# {args.customers} customers waiting on ④, a poll every {args.poll_ms / 1000:g} s each, {args.seconds:g} s, "
          f"gunicorn {args.worker_class} {args.workers}x{args.threads}, {ws.engine}")
    print("| polls/s (offered ≈ {:,.0f}) | p50 | p99 | max | errors | workers' CPU | wrk's CPU | `/healthz` before |"
          .format(args.customers * 1000 / args.poll_ms))
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {polls['rps']:,.0f} | {polls['p50_ms']:.1f} ms | {polls['p99_ms']:.1f} ms | {max_ms} | {polls['errors']} | "
          f"{cpu / wall:.2f} cores ({cpu / wall / cores:.0%} of {cores}; by worker {', '.join(f'{c / wall:.2f}' for c in each)}) | {wrk_cpu / wall:.0%} of one core | "
          f"{healthz['rps']:,.0f} req/s |")
    return 1 if polls["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
