"""Benchmark: ④'s status poll (`GET /{tenant}/flow/call/status`, htmx) next to a bare route
(/healthz) of the same app, in the same run, against gunicorn gthread on loopback.

    python bench/bench_poll.py [--seconds 5] [--rounds 3] [--concurrency 4] [--workers 2] [--threads 8]
                               [--database-url postgresql://...]   (default: a temp SQLite file)

A flow waits at ④ (its call attempt open, the window long enough for the run); every poll carries
that flow's session cookie and `HX-Request: true`, so the server does what it does for a customer
polling every 2 s: load the flow, read the attempt, render the waiting fragment. The two are
measured alternately (bare, poll, bare, poll, …; --rounds pairs) so that other load on the machine
hits both alike; prints the median requests/s of each and the median of the per-round ratios. Each
phase is bounded by --seconds; the clients are separate processes (keep-alive connections). Maintenance windows are left out of the temp configuration and the
load-shedding ceiling is lifted, so the run never meets a 503 or a 429.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import multiprocessing
import os
import pathlib
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-" + secrets.token_hex(24)
TOKEN = "bench-" + secrets.token_hex(12)
WINDOW_SECONDS = 3600  # the attempt keeps waiting for the whole run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tenants_without_maintenance(folder: pathlib.Path) -> None:
    """Copy the unions' configuration, cut before the first [[maintenance]] table (they come last)."""
    for path in (ROOT / "webapp" / "tenants").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        cut = text.find("[[maintenance]]")
        (folder / path.name).write_text(text if cut < 0 else text[:cut], encoding="utf-8")


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


def _client(port: int, path: str, headers: dict, deadline: float, queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    done = failed = size = 0
    while time.monotonic() < deadline:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            failed += 1
        done += 1
        size += len(body)
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    queue.put((done, failed, size))


def measure(port: int, path: str, headers: dict, seconds: float, concurrency: int) -> dict:
    queue = multiprocessing.Queue()
    start = time.monotonic()
    deadline = start + seconds
    procs = [multiprocessing.Process(target=_client, args=(port, path, headers, deadline, queue))
             for _ in range(concurrency)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    done = sum(r[0] for r in results)
    return {"requests": done, "failed": sum(r[1] for r in results), "rps": done / elapsed,
            "bytes_per_response": sum(r[2] for r in results) // max(done, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured phase")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of phases (bare, poll)")
    parser.add_argument("--concurrency", type=int, default=4, help="client processes (one connection each)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        tenants_dir = tmp / "tenants"
        tenants_dir.mkdir()
        tenants_without_maintenance(tenants_dir)
        database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
        port = free_port()
        origin = f"http://127.0.0.1:{port}"
        cookie_name, cookie = seed({"SECRET_KEY": SECRET, "DATABASE_URL": database_url, "BASE_URL": origin,
                                    "TENANTS_DIR": str(tenants_dir), "TELEPHONY_AUTH_TOKEN": TOKEN,
                                    "PHONE_AUTH_WINDOW_SECONDS": WINDOW_SECONDS})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "REDIS_URL"))}
        env.update(DATABASE_URL=database_url, FLASK_SECRET_KEY=SECRET, FLASK_TELEPHONY_AUTH_TOKEN=TOKEN,
                   FLASK_TENANTS_DIR=str(tenants_dir), FLASK_BASE_URL=origin,
                   FLASK_PHONE_AUTH_WINDOW_SECONDS=str(WINDOW_SECONDS),
                   FLASK_GLOBAL_REQUEST_LIMIT="100000000 per second")
        command = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--worker-class", "gthread",
                   "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        try:
            from importlib.metadata import version

            if int(version("gunicorn").split(".")[0]) >= 27:
                command.append("--no-control-socket")  # one per user: a running demo would clash
        except Exception:  # pragma: no cover - version unknown: leave the default
            pass
        server = subprocess.Popen([*command, "webapp:create_app()"], cwd=ROOT, env=env)
        try:
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.1)
            poll = {"HX-Request": "true", "Cookie": f"{cookie_name}={cookie}"}
            poll_path = "/amami/flow/call/status"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", poll_path, headers=poll)
            first = conn.getresponse()
            body = first.read().decode()
            conn.close()
            if first.status != 200 or 'hx-trigger="every 2s"' not in body:
                print(f"unexpected first poll: {first.status} {body[:300]}", file=sys.stderr)
                return 1
            # warm both paths, then measure them one after the other in the same server
            measure(port, "/healthz", {}, 1.0, args.concurrency)
            measure(port, poll_path, poll, 1.0, args.concurrency)
            rounds = []
            for _ in range(max(args.rounds, 1)):
                rounds.append((measure(port, "/healthz", {}, args.seconds, args.concurrency),
                               measure(port, poll_path, poll, args.seconds, args.concurrency)))
        finally:
            server.terminate()
            server.wait(timeout=30)

    engine = database_url.split(":", 1)[0]
    bare_rps = statistics.median(b["rps"] for b, _ in rounds)
    poll_rps = statistics.median(p["rps"] for _, p in rounds)
    ratio = statistics.median(p["rps"] / b["rps"] for b, p in rounds)
    failed = sum(b["failed"] + p["failed"] for b, p in rounds)
    print(f"gunicorn gthread {args.workers}x{args.threads}, {args.concurrency} keep-alive clients, "
          f"{len(rounds)} rounds of {args.seconds:g} s per phase, {engine}")
    for i, (b, p) in enumerate(rounds, 1):
        print(f"  round {i}: bare {b['rps']:8.1f} req/s   poll {p['rps']:8.1f} req/s   ratio {p['rps'] / b['rps']:.3f}")
    print(f"bare route /healthz       : {bare_rps:8.1f} req/s (median)")
    print(f"④ status poll (waiting)   : {poll_rps:8.1f} req/s (median; {rounds[0][1]['bytes_per_response']:,} bytes "
          f"a response)")
    print(f"ratio poll/bare           : {ratio:.3f} (median of the rounds' ratios); {failed} failed requests")
    print(f"customers polling every 2 s this server carries: ~{int(poll_rps * 2):,}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
