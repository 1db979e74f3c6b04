"""Benchmark: every screen GET against the Procfile's web command, next to `/healthz` in the same run.

    python bench/bench_screens.py [--seconds 5] [--rounds 2] [--connections 16] [--poll-connections 64]
                                  [--only account poll ...] [--canaille /tmp/canaille-venv]
                                  [--first-visit] [--database-url postgresql://...]

One gunicorn (gthread 2×8 unless --workers/--threads say otherwise, as the Procfile's `web`), a database
seeded with one flow standing at each screen (① ② ③ ④ ⑤ ⑥; ④'s call attempt open), then for each
endpoint --rounds pairs of wrk phases: `/healthz`, then the endpoint, alternately, so that other load
on this machine hits both alike. wrk (one thread, keep-alive, --latency) sends the flow's signed
session cookie (its handle and, unless --first-visit, the CSRF secret a browser has from its first
page of the flow), htmx's headers and a browser's Accept-Encoding with -H; the figures are the medians of the rounds: req/s, p99,
and the ratio endpoint/healthz of each round's pair. wrk's own CPU share (of one core, over its
phases) is printed at the end, so a run whose load generator was starved shows it.

Besides req/s, each phase reads the server's own CPU time (gunicorn's master and workers, from
/proc) and divides it by the requests answered: CPU ms a request. Other work on the machine slows
both phases' req/s unevenly (`/healthz` has moved 1,300–4,600 req/s within one run), but hardly
what one request costs the server, so the CPU ratio (`/healthz`'s CPU a request over the endpoint's)
says how many endpoint requests the cores serve for one bare one even on a busy box; on an idle box
it is the req/s ratio at saturation. Canaille's CPU a request is its own server's.

With --canaille VENV (a virtualenv where `pip install canaille gunicorn` worked), Canaille's login
page is served by that venv's gunicorn under the same worker settings and measured the same way,
next to its own `/healthz`-less baseline: its ratio is to *our* `/healthz` of the same round.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import pathlib
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import harness

UNLIMITED = "100000000 per 10 minutes"
# What Chrome and Safari send: every request of a phase carries it (`/healthz`'s and Canaille's too), so a
# page is measured compressed, as a customer's browser gets it (zstd here). --accept-encoding '' for none.
BROWSER_ENCODINGS = "gzip, deflate, br, zstd"
CANAILLE_WSGI = """
from canaille import create_app
app = create_app({{"SECRET_KEY": "bench-secret", "CANAILLE": {{"NAME": "Bench", "JAVASCRIPT": True, "HTMX": True}},
                  "CANAILLE_SQL": {{"DATABASE_URI": "sqlite:///{db}", "AUTO_MIGRATE": True}}}})
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk phase")
    parser.add_argument("--rounds", type=int, default=2, help="(healthz, endpoint) pairs per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--poll-connections", type=int, default=64, help="connections of ④'s status poll")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--only", nargs="+", default=None, metavar="KEY", help="measure only these rows")
    parser.add_argument("--first-visit", action="store_true",
                        help="session cookies without the CSRF secret (each screen then re-sends the cookie)")
    parser.add_argument("--canaille", default=None, metavar="VENV", help="also Canaille's login page")
    parser.add_argument("--accept-encoding", default=BROWSER_ENCODINGS,
                        help="the Accept-Encoding every request sends (default: a browser's; '' for none)")
    parser.add_argument("--reuse-port", action="store_true",
                        help="gunicorn --reuse-port (ours and Canaille's): each worker listens on a socket of its "
                             "own and the kernel spreads new connections over them")
    harness.figures_argument(parser)
    return parser.parse_args()


def session_of(handle: str, first_visit: bool) -> dict:
    session = {"flows": {"amami": handle}}
    if not first_visit:
        session["csrf_token"] = secrets.token_hex(20)  # Flask-WTF's: sha1(urandom(64)).hexdigest()
    return session


def seed(config: dict, first_visit: bool = False) -> dict:
    """One flow at each step (④'s attempt open); returns {step: Cookie header}."""
    from sqlmodel import Session

    from webapp import clock, create_app, db
    from webapp.callauth import service
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount
    from webapp.flow.models import Flow

    app = create_app(config)
    db.create_all(app)
    client_id = harness.register_app(app)["client_id"]
    now = clock.now()
    steps = ("account", "customer", "phone", "call", "pin", "consent")
    handles = {step: secrets.token_urlsafe(32) for step in steps}
    flows = {}
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        key = AccountKey("amami", "115", "1", "1100026")
        s.add(SandboxAccount(tenant="amami", branch="115", account_type="1", number="1100026", name_kana="ﾃﾞｰﾀ ﾀﾛｳ",
                             birth_date=dt.date(1980, 1, 1), phone="09011113333", pin_hash=pin_hash(key, "1234"),
                             cash_card=True, status="active", balance=1000))
        for step, handle in handles.items():
            later = step != "account"
            flows[step] = Flow(handle_hash=hashlib.sha256(handle.encode()).hexdigest(), tenant="amami", step=step,
                               client_id=client_id, redirect_uri="https://app.example/cb",
                               oauth_request={"scope": "accounts", "state": "s", "code_challenge": "x" * 43,
                                              "code_challenge_method": "S256"},
                               branch="115" if later else None, account_type="1" if later else None,
                               account_number="1100026" if later else None,
                               name_kana="ﾃﾞｰﾀ ﾀﾛｳ" if step not in ("account", "customer") else None,
                               email="bench@example.jp" if step not in ("account", "customer") else None,
                               phone_e164="+819011113333" if step not in ("account", "customer") else None,
                               created_at=now, updated_at=now)
            s.add(flows[step])
        s.commit()
    with app.test_request_context():
        service.open_attempt(db.session(), flows["call"], app.extensions["tenants"]["amami"])
        serializer = app.session_interface.get_signing_serializer(app)
        name = app.config["SESSION_COOKIE_NAME"]
        # What the browser holds after its first page of the flow: the flow's handle and the CSRF
        # secret Flask-WTF keeps in the session. Without the secret (--first-visit) every request
        # makes one and signs and sends a new cookie, which a customer's browser pays once.
        cookies = {step: f"{name}={serializer.dumps(session_of(handles[step], first_visit))}" for step in steps}
    app.extensions["db_engine"].dispose()
    return cookies


def rows(cookies: dict, args) -> list[dict]:
    """What is measured: key, label, path, headers, connections."""
    htmx = {"HX-Request": "true"}
    c = args.connections
    table = [
        dict(key="account", label="① GET with a flow cookie", path="/amami/flow/account",
             headers={"Cookie": cookies["account"]}),
        dict(key="account_htmx", label="① as an htmx partial", path="/amami/flow/account",
             headers={"Cookie": cookies["account"], **htmx, "HX-Target": "main"}),
        dict(key="customer", label="② GET", path="/amami/flow/customer", headers={"Cookie": cookies["customer"]}),
        dict(key="phone", label="③ GET", path="/amami/flow/phone", headers={"Cookie": cookies["phone"]}),
        dict(key="call", label="④ GET (attempt open)", path="/amami/flow/call", headers={"Cookie": cookies["call"]}),
        dict(key="pin", label="⑤ GET", path="/amami/flow/pin", headers={"Cookie": cookies["pin"]}),
        dict(key="consent", label="⑥ GET", path="/amami/flow/consent", headers={"Cookie": cookies["consent"]}),
        dict(key="poll", label=f"④ status poll (htmx), {args.poll_connections} connections",
             path="/amami/flow/call/status", headers={"Cookie": cookies["call"], **htmx, "HX-Target": "call-status"},
             connections=args.poll_connections),
        dict(key="faq", label="FAQ page", path="/amami/faq", headers={}),
        dict(key="metadata", label="AS metadata (JSON)", path="/.well-known/oauth-authorization-server/amami",
             headers={}),
    ]
    for row in table:
        row.setdefault("connections", c)
    return table


class Wrk:
    """wrk runs; keeps its CPU time and wall time for the share printed at the end."""

    def __init__(self, accept_encoding: str = ""):
        self.cpu = self.wall = 0.0
        self.accept_encoding = accept_encoding

    def run(self, url: str, headers: dict, connections: int, seconds: float, server_pid: int | None = None) -> dict:
        """wrk's figures; with `server_pid` (a gunicorn master) also the server's CPU ms a request."""
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
        if self.accept_encoding:
            headers = {"Accept-Encoding": self.accept_encoding, **headers}
        for k, v in headers.items():
            command += ["-H", f"{k}: {v}"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before = harness.server_cpu(server_pid) if server_pid else 0.0
        started = time.monotonic()
        proc = subprocess.Popen([*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        split = []
        if server_pid:  # the keep-alive connections have been accepted by now, and stay where they went
            time.sleep(min(seconds / 2, 1.0))
            split = harness.connections_by_worker(server_pid, urllib.parse.urlsplit(url).port)
        out, err = proc.communicate()
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, command, out, err)
        self.wall += time.monotonic() - started
        server_used = harness.server_cpu(server_pid) - server_before if server_pid else 0.0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        figures = parse_wrk(out)
        figures["cpu_ms"] = server_used * 1000 / max(figures["requests"], 1)
        figures["split"] = "+".join(map(str, split))
        return figures


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors, "requests": requests}


def measure_row(wrk: Wrk, origin: str, bare_origin: str, row: dict, args, pid: int, bare_pid: int) -> dict:
    """--rounds pairs of phases, `/healthz` (served by `bare_pid`) then the row (served by `pid`): medians."""
    url = origin + row["path"]
    wrk.run(bare_origin + harness.BARE_PATH, {}, args.connections, 1)  # warm
    wrk.run(url, row["headers"], row["connections"], 1)
    pairs = []
    for _ in range(max(args.rounds, 1)):
        bare = wrk.run(bare_origin + harness.BARE_PATH, {}, args.connections, args.seconds, bare_pid)
        it = wrk.run(url, row["headers"], row["connections"], args.seconds, pid)
        pairs.append((bare, it))
    return {"label": row["label"], "bare_rps": statistics.median(b["rps"] for b, _ in pairs),
            "bare_p99": statistics.median(b["p99_ms"] for b, _ in pairs),
            "rps": statistics.median(e["rps"] for _, e in pairs),
            "p99": statistics.median(e["p99_ms"] for _, e in pairs),
            "ratio": statistics.median(e["rps"] / b["rps"] for b, e in pairs),
            "cpu_ms": statistics.median(e["cpu_ms"] for _, e in pairs),
            "cpu_ratio": statistics.median(b["cpu_ms"] / max(e["cpu_ms"], 1e-9) for b, e in pairs),
            "errors": sum(e["errors"] + b["errors"] for b, e in pairs),
            "splits": ", ".join(f"{b['split']} · {e['split']}" for b, e in pairs)}


SPLIT_NOTE = ("connections a worker: how the keep-alive connections of each round's `/healthz` · endpoint phase "
              "lay across the workers (all on one worker: it served that phase alone, on one core)")


def reuse_port(args) -> tuple[str, ...]:
    return ("--reuse-port",) if getattr(args, "reuse_port", False) else ()


def canaille_server(venv: pathlib.Path, tmp: pathlib.Path, args) -> tuple[subprocess.Popen | None, int, str]:
    """Canaille under the venv's gunicorn, same worker settings; (process, port, why not)."""
    gunicorn = venv / "bin" / "gunicorn"
    if not gunicorn.exists():
        return None, 0, f"no gunicorn in {venv}"
    (tmp / "canaille_wsgi.py").write_text(CANAILLE_WSGI.format(db=tmp / "canaille.sqlite3"))
    port = harness.free_port()
    threads = 1 if args.worker_class == "sync" else args.threads
    # Its database is migrated once here: both workers migrating it on their first request race.
    subprocess.run([str(venv / "bin" / "python"), "-c", "import canaille_wsgi"], cwd=tmp, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    command = [str(gunicorn), "--workers", str(args.workers), "--worker-class", args.worker_class,
               "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if "--no-control-socket" in subprocess.run([str(gunicorn), "--help"], capture_output=True, text=True).stdout:
        command.append("--no-control-socket")  # gunicorn 27's one socket a user would clash with ours
    proc = subprocess.Popen([*command, *reuse_port(args), "canaille_wsgi:app"], cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    deadline = time.monotonic() + 30  # under --reuse-port each worker listens once it has booted
    while not harness.all_listening(proc.pid, port, args.workers) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    status = 0
    for _ in range(40):  # its workers migrate the new database on their first request: one may restart
        try:
            status, _ = harness.get(port, "/login", {})
        except OSError:
            status = 0
        if status == 200:
            break
        time.sleep(0.5)
    if status != 200:
        proc.terminate()
        return None, 0, f"Canaille's /login answered {status}"
    return proc, port, ""


def main() -> int:
    args = arguments()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt install wrk)")
    wrk = Wrk(args.accept_encoding)
    results = []
    pace = harness.pace_ms()
    with harness.workspace(args, PHONE_AUTH_WINDOW_SECONDS=3600, IDENTITY_CHECKS_PER_IP=UNLIMITED,
                           IDENTITY_FAILURES_PER_CLIENT=UNLIMITED, IDENTITY_FAILURES_PER_UNION=UNLIMITED,
                           LOG_LEVEL="WARNING") as ws:
        cookies = seed(ws.app_config(), args.first_visit)
        table = [r for r in rows(cookies, args) if args.only is None or r["key"] in args.only]
        with harness.serve(ws, args, *reuse_port(args)) as server:
            for row in table:
                status, body = harness.get(ws.port, row["path"], row["headers"])
                if status != 200:
                    raise SystemExit(f"{row['label']}: {row['path']} answered {status} before measuring: {body[:300]!r}")
            for row in table:
                results.append({"key": row["key"], **measure_row(wrk, ws.origin, ws.origin, row, args, server.pid,
                                                                   server.pid)})
                print(f"  {row['label']}: {results[-1]['rps']:.0f} req/s, p99 {results[-1]['p99']:.1f} ms, "
                      f"{results[-1]['cpu_ms']:.2f} CPU ms a request",
                      file=sys.stderr, flush=True)
            canaille_note = ""
            if args.canaille and (args.only is None or "canaille" in args.only):
                with tempfile.TemporaryDirectory(prefix="canaille-bench-") as tmp:
                    proc, port, canaille_note = canaille_server(pathlib.Path(args.canaille), pathlib.Path(tmp), args)
                    if proc is not None:
                        try:
                            row = dict(label="Canaille 0.3 login page (its own gunicorn, same settings)",
                                       path="/login", headers={}, connections=args.connections)
                            results.append({"key": "canaille", **measure_row(
                                wrk, f"http://127.0.0.1:{port}", ws.origin, row, args, proc.pid, server.pid)})
                        finally:
                            proc.terminate()
                            proc.wait(timeout=30)
    print(f"# gunicorn {args.worker_class} {args.workers}x{args.threads}{' --reuse-port' * args.reuse_port}, "
          f"{ws.engine}, wrk -t1 keep-alive, "
          f"{args.connections} connections unless said, {args.rounds} rounds of {args.seconds:g} s, "
          f"medians; /healthz measured before each phase")
    print("| endpoint | req/s | p99 | ratio to `/healthz` | `/healthz` req/s | server CPU a request | "
          "CPU ratio to `/healthz` | errors | connections a worker |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['label']} | {r['rps']:,.0f} | {r['p99']:.0f} ms | {r['ratio']:.2f} | {r['bare_rps']:,.0f} | "
              f"{r['cpu_ms']:.2f} ms | {r['cpu_ratio']:.2f} | {r['errors']} | {r['splits']} |")
    print(SPLIT_NOTE)
    if args.canaille and canaille_note:
        print(f"Canaille not measured: {canaille_note}")
    cores = os.cpu_count() or 1
    print(f"wrk's own CPU: {wrk.cpu / max(wrk.wall, 1e-9):.0%} of one core over its phases "
          f"({wrk.cpu / max(wrk.wall, 1e-9) / cores:.0%} of the machine's {cores} cores)")
    pace_after = harness.pace_ms()
    print(f"this box's pace (harness.pace_ms, CPU of a fixed workload): {pace:.1f} ms before, "
          f"{pace_after:.1f} ms after; compare CPU figures of runs at a similar pace")
    harness.write_figures(args.json, {"engine": ws.engine, "connections": args.connections,
                                      "pace_ms": [pace, pace_after], "rows": results})
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
