"""Benchmark: complete customer flows ①→⑥, the telephony webhook, the token and one API call.

    python bench/bench_flow.py [--seconds 10] [--customers 8] [--engines sqlite postgres]
                               [--workers 2] [--threads 8] [--generator python|wrk]

Against the Procfile's web command (gunicorn gthread 2×8 by default), --customers client processes,
each one customer of its own (own account and registered phone, so their calls never share a pool
number) going through whole flows for --seconds: the authorization request, ① GET+POST, ② GET+POST,
③ GET+POST, ④ GET, the provider's signed webhook, ④ 確定する, ⑤ GET+POST, ⑥ GET+POST (許可する),
the code exchanged at the token endpoint, and `/accounts` with the access token. Every answer is
checked (the status a customer expects); a wrong one counts as an error and starts a new flow.

`--generator wrk` drives the same flows from bench/flow.lua instead: a wrk thread (one connection) a
customer, so 32 or 64 customers cost the machine a few per cent of a core where as many Python
clients would take the CPU the server is measured on. The webhook is signed as the provider signs it
(HMAC-SHA1 from libcrypto through LuaJIT's FFI), each flow has a fresh PKCE pair.

Printed: flows/s, errors, p50/p99 per step, the clients' own CPU share, and each worker's RSS and PSS
after the warm-up flows and after the run. `--engines postgres` runs on PostgreSQL + Redis (RENKEI_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/test, and RENKEI_BENCH_REDIS, default redis://127.0.0.1:6379/0; over Unix
sockets: postgresql://postgres@/test?host=/var/run/postgresql and redis+unix:///path/to/redis.sock):
a scratch database is created beside that one for the run and dropped after it.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import multiprocessing
import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import harness

TENANT = "amami"
REDIRECT_URI = "https://app.example/cb"
BIRTH = dt.date(1980, 1, 1)
PIN = "1234"
NAME = "ﾃﾞｰﾀ ﾀﾛｳ"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEL = re.compile(r'class="button call-button" href="tel:([0-9]+)"')
UNLIMITED = "100000000 per 10 minutes"
STEPS = ["authorize", "① GET", "① POST", "② GET", "② POST", "③ GET", "③ POST", "④ GET", "webhook", "④ POST",
         "⑤ GET", "⑤ POST", "⑥ GET", "⑥ POST", "token", "API /accounts"]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--customers", type=int, default=8, help="concurrent customers (client processes)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--engines", nargs="+", default=["sqlite"], choices=("sqlite", "postgres"))
    parser.add_argument("--generator", default="python", choices=("python", "wrk"),
                        help="python: a client process a customer; wrk: bench/flow.lua, a wrk thread a customer")
    parser.add_argument("--server-times", action="store_true",
                        help="also print each step's time inside gunicorn (its access log's request time)")
    harness.figures_argument(parser)
    return parser.parse_args()


def customer(i: int) -> dict:
    return {"branch": "115", "account_type": "1", "number": f"{2000000 + i:07d}", "phone": f"090{5000_0000 + i:08d}"}


def seed(config: dict, n: int) -> dict:
    """n customers and one registered app; returns the app's credentials."""
    from sqlmodel import Session

    from webapp import create_app, db
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount

    app = create_app(config)
    db.create_all(app)
    with app.app_context(), Session(db.engine()) as s:
        for i in range(n):
            c = customer(i)
            key = AccountKey(TENANT, c["branch"], c["account_type"], c["number"])
            s.add(SandboxAccount(tenant=TENANT, branch=c["branch"], account_type=c["account_type"], number=c["number"],
                                 name_kana=NAME, birth_date=BIRTH, phone=c["phone"], pin_hash=pin_hash(key, PIN),
                                 cash_card=True, status="active", balance=1_000_000))
        s.commit()
    client = harness.register_app(app, TENANT, REDIRECT_URI)
    app.extensions["db_engine"].dispose()
    return client


class Failed(Exception):
    pass


def one_flow(http, origin: str, client: dict, c: dict, timings: dict) -> None:
    import requests

    from webapp.callauth.twilio import compute_signature

    csrf = {"v": None}

    def timed(step, method, path, expect, **kw):
        started = time.perf_counter()
        response = http.request(method, path if path.startswith("http") else origin + path, timeout=30,
                                allow_redirects=False, **kw)
        timings.setdefault(step, []).append(time.perf_counter() - started)
        if response.status_code != expect:
            raise Failed(f"{step}: {response.status_code} {response.text[:200]!r}")
        found = CSRF.search(response.text)
        if found:
            csrf["v"] = found.group(1)
        return response

    def post(step, path, data=None):
        return timed(step, "POST", path, 303, data={"csrf_token": csrf["v"], **(data or {})})

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI,
                       "scope": "accounts", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"})
    flow = f"/{TENANT}/flow"
    timed("authorize", "GET", f"/{TENANT}/oauth/authorize?{query}", 303)
    timed("① GET", "GET", f"{flow}/account", 200)
    post("① POST", f"{flow}/account", {"branch": c["branch"], "account_type": c["account_type"],
                                       "account_number": c["number"]})
    timed("② GET", "GET", f"{flow}/customer", 200)
    post("② POST", f"{flow}/customer", {"name_kana": NAME, "birth_year": str(BIRTH.year), "birth_month": "01",
                                        "birth_day": "01", "phone": c["phone"], "email": "b@example.jp",
                                        "email_confirm": "b@example.jp"})
    timed("③ GET", "GET", f"{flow}/phone", 200)
    post("③ POST", f"{flow}/phone")
    page = timed("④ GET", "GET", f"{flow}/call", 200)
    pool = TEL.search(page.text).group(1)
    url = origin + "/telephony/inbound"
    params = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": "+81" + c["phone"][1:],
              "To": "+81" + pool[1:], "CallStatus": "ringing", "Direction": "inbound"}
    started = time.perf_counter()
    hook = requests.post(url, data=params, headers={"X-Twilio-Signature": compute_signature(url, params.items(),
                                                                                              harness.TOKEN)}, timeout=30)
    timings.setdefault("webhook", []).append(time.perf_counter() - started)
    if hook.status_code != 200:
        raise Failed(f"webhook: {hook.status_code}")
    post("④ POST", f"{flow}/call")
    timed("⑤ GET", "GET", f"{flow}/pin", 200)
    post("⑤ POST", f"{flow}/pin", {"pin": PIN})
    timed("⑥ GET", "GET", f"{flow}/consent", 200)
    allowed = post("⑥ POST", f"{flow}/consent", {"agree": "y"})
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    # The browser leaves for the app; the app's server exchanges the code on a connection of its own
    # (on the browser's, it would wait for what ⑥'s response does after it has gone out: the mail).
    http.close()
    token = timed("token", "POST", f"/{TENANT}/oauth/token", 200, auth=(client["client_id"], client["client_secret"]),
                  data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                        "code_verifier": verifier}).json()["access_token"]
    timed("API /accounts", "GET", f"/{TENANT}/api/v1/accounts", 200, headers={"Authorization": f"Bearer {token}"})


def _customer(origin: str, client: dict, i: int, deadline: float, queue) -> None:
    import requests

    timings: dict = {}
    done = errors = 0
    messages = []
    while time.monotonic() < deadline:
        http = requests.Session()  # a fresh browser for each flow
        try:
            one_flow(http, origin, client, customer(i), timings)
            done += 1
        except Exception as e:  # noqa: BLE001 - counted and shown, never hidden
            errors += 1
            if len(messages) < 3:
                messages.append(str(e)[:300])
        finally:
            http.close()
    queue.put((done, errors, messages, timings))


def rss_of_workers(master_pid: int) -> list[str]:
    """Each worker's "RSS/PSS MB": RSS counts the pages a worker shares with the master and the other
    worker (the interpreter, libraries) in full, PSS divides them among the processes sharing them."""
    out = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in out:
        try:
            fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/smaps_rollup") if ":" in line)
        except OSError:
            continue
        sizes.append(f"{int(fields['Rss'].split()[0]) // 1024}/{int(fields['Pss'].split()[0]) // 1024}")
    return sizes


def run(args, engine: str) -> int:
    settings = dict(PHONE_AUTH_WINDOW_SECONDS=3600, IDENTITY_CHECKS_PER_IP=UNLIMITED,
                    IDENTITY_FAILURES_PER_CLIENT=UNLIMITED, IDENTITY_FAILURES_PER_UNION=UNLIMITED,
                    LOG_LEVEL="WARNING")
    ns = argparse.Namespace(**vars(args))
    ns.database_url = None
    if engine == "postgres":  # harness.workspace runs it in a scratch database beside this one
        ns.database_url = os.environ.get("RENKEI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
        settings["REDIS_URL"] = os.environ.get("RENKEI_BENCH_REDIS", "redis://127.0.0.1:6379/0")
        settings["RATELIMIT_KEY_PREFIX"] = "renkei-bench-" + secrets.token_hex(6)
    return _run(args, engine, ns, settings)


class Sink:
    """An SMTP server that takes every completion mail and keeps nothing (aiosmtpd, in a thread)."""

    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def _run(args, engine: str, ns, settings: dict) -> int:
    from aiosmtpd.controller import Controller

    mail_port = harness.free_port()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=mail_port)
    smtp.start()
    settings = {**settings, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": mail_port}
    try:
        with harness.workspace(ns, **settings) as ws:
            return _measure(args, engine, ns, ws)
    finally:
        smtp.stop()


def _measure(args, engine: str, ns, ws) -> int:
    import requests

    client = seed(ws.app_config(), args.customers)
    access = str(ws.tenants_dir.parent / "access.log") if args.server_times else None
    logging = ("--access-logfile", access, "--access-logformat", ACCESS_FORMAT) if access else ()
    if True:
        with harness.serve(ws, ns, *logging) as server:
            for i in range(min(args.customers, 4)):  # warm the workers (imports, templates, pools): not counted
                with requests.Session() as http:
                    one_flow(http, ws.origin, client, customer(i), {})
            warm = rss_of_workers(server.pid)
            if access:
                open(access, "w").close()  # the warm-up's lines are not counted (gunicorn appends)
            if args.generator == "wrk":
                return _measure_wrk(args, engine, ws, client, server, warm, access)
            queue = multiprocessing.Queue()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_before, machine_before = harness.server_cpu(server.pid), harness.machine_busy()
            services_before = harness.services_cpu()
            started = time.monotonic()
            deadline = started + args.seconds
            procs = [multiprocessing.Process(target=_customer, args=(ws.origin, client, i, deadline, queue))
                     for i in range(args.customers)]
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            elapsed = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_used, machine = harness.server_cpu(server.pid) - server_before, harness.machine_busy()
            services = _used_since(services_before)
            rss = rss_of_workers(server.pid)
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    timings: dict = {}
    for r in results:
        for step, values in r[3].items():
            timings.setdefault(step, []).extend(values)
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"# {engine}{' + Redis' if engine == 'postgres' else ''}, gunicorn {args.worker_class} "
          f"{args.workers}x{args.threads}, {args.customers} concurrent customers (Python clients), {elapsed:.1f} s")
    print(f"flows/s: {done / elapsed:.1f} ({done} complete flows), errors: {errors}")
    for r in results:
        for m in r[2]:
            print(f"  error: {m}")
    _print_steps(timings, server_times(access))
    print(f"clients' own CPU: {client_cpu / elapsed:.0%} of one core ({client_cpu / elapsed / (os.cpu_count() or 1):.0%} "
          f"of the machine); worker RSS/PSS after warm-up: {', '.join(f'{x} MB' for x in warm)}, "
          f"after: {', '.join(f'{x} MB' for x in rss)}")
    _print_cpu(done, elapsed, server_used, machine_before, machine, services if engine == "postgres" else {})
    args.figures.append(_figures(engine, args, done / elapsed, done, errors, timings, warm, rss, server_used,
                                 services if engine == "postgres" else {}))
    return errors


def _figures(engine: str, args, per_second: float, done: int, errors: int, timings: dict, warm: list[str],
             rss: list[str], server_used: float, services: dict[str, float]) -> dict:
    """What one engine's run printed, for --json: flows, each step's p50/p99 (ms), the workers'
    RSS/PSS (MB) after the warm-up and after the run, the CPU a complete flow (ms)."""
    def sizes(pairs: list[str], which: int) -> list[int]:
        return [int(pair.split("/")[which]) for pair in pairs]

    steps = {}
    for step in STEPS:
        values = sorted(timings.get(step, []))
        if values:
            steps[step] = {"n": len(values), "p50_ms": statistics.median(values) * 1000,
                           "p99_ms": harness.percentile(values, 0.99) * 1000}
    return {"engine": engine, "generator": args.generator, "customers": args.customers, "flows_per_s": per_second,
            "complete": done, "errors": errors, "steps": steps,
            "rss_mb_warm": sizes(warm, 0), "rss_mb_after": sizes(rss, 0), "pss_mb_after": sizes(rss, 1),
            "server_cpu_ms_a_flow": server_used / done * 1000 if done else None,
            "services_cpu_ms_a_flow": {name: used / done * 1000 for name, used in services.items()} if done else {}}


def _used_since(before: dict[str, float]) -> dict[str, float]:
    return {name: used - before.get(name, 0.0) for name, used in harness.services_cpu().items()}


def _print_cpu(done: int, elapsed: float, server_used: float, machine_before: tuple, machine_after: tuple,
               services: dict[str, float]) -> None:
    """The server's CPU a complete flow, and the ceiling it sets on these cores, whatever else ran;
    with PostgreSQL + Redis, theirs a flow too (the same cores serve them here)."""
    cores = os.cpu_count() or 1
    busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1e-9)
    if done:
        per_flow = server_used / done
        print(f"server's CPU (gunicorn's master and workers; not the database's): {per_flow * 1000:.0f} ms a complete "
              f"flow, {server_used / elapsed:.2f} cores; a ceiling of {cores / per_flow:.1f} flows/s on {cores} cores "
              f"if nothing else ran; the machine's cores were {busy:.0%} busy")
        if services:
            spent = ", ".join(f"{name} {used / done * 1000:.0f} ms" for name, used in sorted(services.items()))
            total = (server_used + sum(services.values())) / done
            print(f"the services' CPU a complete flow: {spent}; with the server's, {total * 1000:.0f} ms, a ceiling "
                  f"of {cores / total:.1f} flows/s on {cores} cores")


def _measure_wrk(args, engine: str, ws, client: dict, server, warm: list[str], access: str | None) -> int:
    """The same flows driven by wrk (bench/flow.lua): one wrk thread and connection a customer, so many
    customers cost the machine little; prints what the Python generator prints."""
    from urllib.parse import quote

    import tempfile

    with tempfile.TemporaryDirectory(prefix="renkei-flow-") as records:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before, machine_before = harness.server_cpu(server.pid), harness.machine_busy()
        services_before = harness.services_cpu()
        workers_before = harness.worker_cpu(server.pid)
        started = time.monotonic()
        wrk = subprocess.Popen(["wrk", f"-t{args.customers}", f"-c{args.customers}", f"-d{args.seconds:g}s", "--timeout",
                                "30s", "-s", os.path.join(os.path.dirname(__file__), "flow.lua"), ws.origin, "--", TENANT,
                                client["client_id"], client["client_secret"], harness.TOKEN, quote(NAME), records],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(min(1.0, args.seconds / 2))  # wrk's connections are open and kept for the whole run
        split = harness.connections_by_worker(server.pid, ws.port)
        out, err = wrk.communicate()
        if wrk.returncode:
            raise subprocess.CalledProcessError(wrk.returncode, wrk.args, out, err)
        elapsed = time.monotonic() - started
        workers_used = {pid: used - workers_before.get(pid, 0.0) for pid, used in harness.worker_cpu(server.pid).items()}
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_used, machine = harness.server_cpu(server.pid) - server_before, harness.machine_busy()
        services = _used_since(services_before)
        rss = rss_of_workers(server.pid)
        lines = [line for name in sorted(os.listdir(records)) for line in open(os.path.join(records, name))]
    done, errors, timings, messages = 0, 0, {}, []
    for line in lines:  # "lat K SECONDS", "flow", "error K STATUS TEXT" (K: the step's place in STEPS, from 1)
        kind, *rest = line.rstrip("\n").split(" ", 2)
        if kind == "flow":
            done += 1
        elif kind == "lat":
            timings.setdefault(STEPS[int(rest[0]) - 1], []).append(float(rest[1]))
        elif kind == "error":
            errors += 1
            if len(messages) < 3:
                messages.append(f"{STEPS[int(rest[0]) - 1]}: {' '.join(rest[1:])}")
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"# {engine}{' + Redis' if engine == 'postgres' else ''}, gunicorn {args.worker_class} "
          f"{args.workers}x{args.threads}, {args.customers} concurrent customers (wrk, bench/flow.lua), {elapsed:.1f} s")
    print(f"flows/s: {done / args.seconds:.1f} ({done} complete flows), errors: {errors}")
    for m in messages:
        print(f"  error: {m}")
    _print_steps(timings, server_times(access))
    print(f"wrk's own CPU: {wrk_cpu / elapsed:.0%} of one core ({wrk_cpu / elapsed / (os.cpu_count() or 1):.0%} "
          f"of the machine); worker RSS/PSS after warm-up: {', '.join(f'{x} MB' for x in warm)}, "
          f"after: {', '.join(f'{x} MB' for x in rss)}")
    _print_cpu(done, elapsed, server_used, machine_before, machine, services if engine == "postgres" else {})
    args.figures.append(_figures(engine, args, done / args.seconds, done, errors, timings, warm, rss, server_used,
                                 services if engine == "postgres" else {}))
    shares = sorted(workers_used.values(), reverse=True)
    print(f"wrk's connections a worker: {'+'.join(map(str, split))}; the workers' shares of their CPU: "
          f"{' / '.join(f'{used / max(sum(shares), 1e-9):.0%}' for used in shares)} (one worker holding most "
          f"connections serves most flows on one core, its GIL)")
    return errors


# gunicorn's access log, one line a request: method, path, status, request time in microseconds. That
# time runs from the parsed request to the written response: no wait for a free thread before it, and
# nothing the response's close runs after it (⑥'s completion mail, Response.call_on_close).
ACCESS_FORMAT = "%(m)s %(U)s %(s)s %(D)s"
_STEP_OF = [(re.compile(pattern), step) for pattern, step in [
    (r"^GET /[a-z]+/oauth/authorize$", "authorize"), (r"^POST /telephony/inbound$", "webhook"),
    (r"^POST /[a-z]+/oauth/token$", "token"), (r"^GET /[a-z]+/api/v1/accounts$", "API /accounts"),
    *[(rf"^{method} /[a-z]+/flow/{screen}$", f"{mark} {method}")
      for mark, screen in zip("①②③④⑤⑥", ("account", "customer", "phone", "call", "pin", "consent"))
      for method in ("GET", "POST")]]]


def server_times(access: str | None) -> dict | None:
    """Each step's times inside gunicorn, in seconds, read from the access log (None: not logged)."""
    if access is None:
        return None
    times: dict = {}
    with open(access) as lines:
        for line in lines:
            method, path, _status, micros = line.split()
            request = f"{method} {path}"
            step = next((step for pattern, step in _STEP_OF if pattern.match(request)), None)
            if step is not None:
                times.setdefault(step, []).append(int(micros) / 1e6)
    return times


def _print_steps(timings: dict, inside: dict | None = None) -> None:
    """Each step's client-side p50 and p99, and with `inside` the same inside gunicorn: the difference
    is the wait for one of its threads and, for the request after ⑥'s POST on the same connection
    (the token, with wrk), the completion mail that ⑥'s response sends after it has gone out."""
    if inside is None:
        print("| step | n | p50 | p99 |")
        print("|---|---|---|---|")
    else:
        print("| step | n | p50 | p99 | in gunicorn: p50 | p99 |")
        print("|---|---|---|---|---|---|")
    for step in STEPS:
        values = sorted(timings.get(step, []))
        if values:
            row = (f"| {step} | {len(values)} | {statistics.median(values) * 1000:.0f} ms | "
                   f"{harness.percentile(values, 0.99) * 1000:.0f} ms |")
            served = sorted((inside or {}).get(step, []))
            if inside is not None:
                row += (f" {statistics.median(served) * 1000:.0f} ms | {harness.percentile(served, 0.99) * 1000:.0f} ms |"
                        if served else " | |")
            print(row)


def main() -> int:
    args = arguments()
    args.figures = []  # each engine's run adds its own (--json)
    pace = harness.pace_ms()
    failed = sum(run(args, engine) for engine in args.engines)
    pace_after = harness.pace_ms()
    print(f"this box's pace (harness.pace_ms, CPU of a fixed workload): {pace:.1f} ms before, "
          f"{pace_after:.1f} ms after; compare CPU figures of runs at a similar pace")
    harness.write_figures(args.json, {"pace_ms": [pace, pace_after], "runs": args.figures})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
