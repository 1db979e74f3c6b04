"""Benchmark: the stack's floor under a PostgreSQL + Redis flow, beside the flow itself.

    python bench/bench_floor.py [--seconds 15] [--customers 16] [--workers 2] [--threads 8]

bench_flow.py's complete flows on PostgreSQL + Redis cost the server, PostgreSQL and Redis a
measured CPU a flow; issue 13 asks 40 flows a second on two cores, which leaves ~45 ms of all three's
CPU a flow at the ~90 % of the cores a run reaches. This serves bench/floor_app.py under the same
gunicorn command (gthread, -OO, gunicorn.conf.py) and drives it with wrk (bench/floor.lua): a flow's
16 requests, each making the round trips its step makes in the product (the counts `profile_flow.py
--statements` and `profile_api.py` print: 100 PostgreSQL commands and 17 Redis commands a flow), and
nothing else: no template, form, cookie, OAuth, log or metric; its statements built once, as the
product's are. Its CPU a flow is what the stack (Flask, Werkzeug, gunicorn, SQLAlchemy Core,
psycopg, redis-py, PostgreSQL, Redis) costs before any of the product's own work: a floor under the
product's figure that no change to the product's code goes below, short of fewer requests or
statements a flow (`--writes pipeline` shows what fewer round trips alone save).

Printed: "flows"/s (requests / 16), errors, the server's, PostgreSQL's and Redis's CPU a flow, and the
ceiling they set on these cores. RENKEI_BENCH_PG and RENKEI_BENCH_REDIS as for bench_flow.py; a scratch
database is made beside RENKEI_BENCH_PG's and dropped after.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import subprocess
import sys
import time

import harness

# A flow's requests as bench_flow.py makes them: (step, method, Redis counts, autocommit reads, the
# statements of each transaction) -- its PostgreSQL commands are the reads plus each transaction's
# statements, BEGIN and COMMIT, as profile_flow.py --statements counted the product's at 9576795
# (account API: profile_api.py). A change to a step's statements in webapp/ is a change here too.
FLOW = [
    ("authorize", "GET", 1, 1, [3]),
    ("① GET", "GET", 1, 2, []), ("① POST", "POST", 1, 2, [2]),
    ("② GET", "GET", 1, 3, []), ("② POST", "POST", 1, 3, [2, 4]),
    ("③ GET", "GET", 1, 2, []), ("③ POST", "POST", 1, 2, [2]),
    ("④ GET", "GET", 1, 3, [3]), ("webhook", "POST", 0, 0, [4]), ("④ POST", "POST", 1, 2, [3]),
    ("⑤ GET", "GET", 1, 3, []), ("⑤ POST", "POST", 1, 3, [1, 4]),
    ("⑥ GET", "GET", 1, 2, []), ("⑥ POST", "POST", 1, 2, [7]),
    ("token", "POST", 1, 0, [5]), ("API /accounts", "GET", 3, 6, []),
]


def commands(step: tuple) -> int:
    """PostgreSQL commands a step sends: its reads, and each transaction's statements with BEGIN and COMMIT."""
    _name, _method, _counts, reads, transactions = step
    return reads + sum(n + 2 for n in transactions)


def path(step: tuple) -> str:
    _name, method, counts, reads, transactions = step
    return f"{method}:/step/{counts}/{reads}/{'.'.join(map(str, transactions)) or '-'}"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--customers", type=int, default=16, help="wrk connections, one thread each")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--writes", choices=["core", "dbapi", "pipeline"], default="core",
                        help="each transaction through SQLAlchemy Core as the product writes (core), through "
                             "psycopg's connection (dbapi), or in psycopg's pipeline mode, one round trip (pipeline)")
    parser.add_argument("--without-database", action="store_true",
                        help="the same requests and Redis counts, no PostgreSQL command: the HTTP part of the floor")
    return parser.parse_args()


def main() -> int:
    import requests

    import floor_app

    args = arguments()
    flow = [(name, method, counts, 0, []) for name, method, counts, _r, _t in FLOW] if args.without_database else FLOW
    args.worker_class = "gthread"
    args.database_url = os.environ.get("RENKEI_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("RENKEI_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    with harness.workspace(args, REDIS_URL=redis_url, RATELIMIT_KEY_PREFIX="renkei-floor-" + secrets.token_hex(6),
                           FLOOR_WRITES=args.writes) as ws:
        floor_app.prepare(ws.database_url)
        with harness.serve(ws, args, app="bench.floor_app:create()") as server:
            for _ in range(20):  # warm the workers: pools, prepared statements, the Lua script
                for step in flow:
                    method, url = path(step).split(":", 1)
                    r = requests.request(method, ws.origin + url, timeout=10)
                    r.raise_for_status()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_before, machine_before = harness.server_cpu(server.pid), harness.machine_busy()
            services_before = harness.services_cpu()
            started = time.monotonic()
            wrk = subprocess.run(["wrk", f"-t{args.customers}", f"-c{args.customers}", f"-d{args.seconds:g}s",
                                  "-s", os.path.join(os.path.dirname(__file__), "floor.lua"), ws.origin, "--",
                                  *map(path, flow)], capture_output=True, text=True, check=True)
            elapsed = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_used, machine_after = harness.server_cpu(server.pid) - server_before, harness.machine_busy()
            services = {name: used - services_before.get(name, 0.0) for name, used in harness.services_cpu().items()}
    requests_done = int(re.search(r"(\d+) requests in", wrk.stdout).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
    broken = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk.stdout)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, broken.groups())) if broken else 0)
    flows = requests_done / len(flow)
    cores = os.cpu_count() or 1
    busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1e-9)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"# the stack's floor: bench/floor_app.py on PostgreSQL + Redis ({args.writes} writes), gunicorn gthread "
          f"{args.workers}x{args.threads}, {args.customers} connections (wrk, bench/floor.lua), {elapsed:.1f} s")
    print(f"a flow: {len(flow)} requests, {sum(map(commands, flow))} PostgreSQL commands, "
          f"{sum(step[2] for step in flow)} Redis commands")
    print(f"flows/s: {flows / args.seconds:.1f} ({requests_done} requests), errors: {errors}")
    if flows:
        spent = {"server": server_used, **services}
        print("CPU a flow: " + ", ".join(f"{name} {used / flows * 1000:.1f} ms" for name, used in spent.items())
              + f"; in all {sum(spent.values()) / flows * 1000:.1f} ms, a ceiling of "
              f"{cores / (sum(spent.values()) / flows):.1f} flows/s on {cores} cores; the cores were {busy:.0%} busy; "
              f"wrk {wrk_cpu / elapsed:.0%} of one core")
    print(f"this box's pace (harness.pace_ms): {harness.pace_ms():.1f} ms")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
