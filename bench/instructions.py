"""Instructions a request (valgrind's callgrind): the steadiest measure of a request's own CPU here.

    python bench/instructions.py [--only poll healthz account call api rows] [--calls 100 600]

Each kind is called straight through the app (`app(environ, start_response)`: no server, no test
client) in a process of its own under `valgrind --tool=callgrind`, twice: once with the first
number of calls, once with the second; the difference of the two totals over the difference of the
calls is what one request costs, start-up, seeding and a 200-call warm-up cancelling out.
PYTHONHASHSEED is fixed, so two runs of the same code agree to ~0.03 % whatever else the machine is
doing, where timings on a shared box wander ±10 %. Each run takes ~1.5 minutes; two run at once.

The requests are bench_screens.py's (its seed: a flow at each step, ④'s call attempt open, the
session cookie a browser holds), on a temporary SQLite file, memory:// limits; `api` is the account
API's `/accounts` with bench_transactions.py's token (`balances` its balances) (its log row spooled each call, and the spool
drained into the table every DRAIN_EVERY calls, in the same thread: the drain is counted, a
deterministic share of it a call); `rows` the same token's first transactions page, 500 rows of
bench_transactions.py's 10,000. Each request carries the Accept-Encoding its benchmark sends (a
browser's for the screens, Python requests' for the API), so pages are counted compressed;
--no-accept-encoding gives round 26's and earlier figures.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import harness

KINDS = ("poll", "healthz", "account", "call", "api", "balances", "rows")
DRAIN_EVERY = 50  # calls between the account API's log drains (a drainer round under load: ~130 rows a worker)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=["poll", "healthz"], choices=KINDS)
    parser.add_argument("--no-accept-encoding", action="store_true",
                        help="send no Accept-Encoding (the figures of rounds 26 and before)")
    parser.add_argument("--calls", nargs=2, type=int, default=[100, 600], metavar=("FEWER", "MORE"))
    parser.add_argument("--run", nargs=2, metavar=("KIND", "CALLS"), help=argparse.SUPPRESS)  # the measured child
    args = parser.parse_args()
    if args.run:
        return _serve(args.run[0], int(args.run[1]))
    fewer, more = args.calls
    # The app writes its static files' hashed and compressed copies at start-up unless they are
    # already there (webapp/assets.py): ~836 M instructions from nothing, ~0 after. Written here
    # first, so neither child writes them. Otherwise, on a fresh checkout, two children starting
    # together raced: one wrote copies the other then found, and their difference was off by that
    # work (bench/README, rounds 25 and 26).
    from webapp import assets
    assets.build(harness.ROOT / "static", assets.default_target(harness.ROOT / "static"))
    if args.no_accept_encoding:
        os.environ["BENCH_NO_ACCEPT_ENCODING"] = "1"  # read by the children
    jobs = [(kind, calls) for kind in args.only for calls in (fewer, more)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(jobs, pool.map(lambda job: _counted(*job), jobs)))
    for kind in args.only:
        per_request = (totals[kind, more] - totals[kind, fewer]) / (more - fewer)
        print(f"{kind:8s} {per_request:12,.0f} instructions a request")
    return 0


def _counted(kind: str, calls: int) -> int:
    """The instructions valgrind counted in a child serving `calls` requests of `kind`."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           os.path.abspath(__file__), "--run", kind, str(calls)],
                          env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no total for {kind}: {done.stderr[-2000:]}")
    return int(found.group(1))


def _serve(kind: str, calls: int) -> int:
    from werkzeug.test import EnvironBuilder

    from bench_screens import seed
    from webapp import clock, create_app, oplog

    clock.set_now(None)
    with harness.workspace(argparse.Namespace(database_url=None), PHONE_AUTH_WINDOW_SECONDS=3600,
                           LOG_LEVEL="WARNING") as ws:
        config = ws.app_config(GLOBAL_REQUEST_LIMIT="100000000 per second", REQUESTS_PER_IP="100000000 per second")
        account_id = None
        if kind in ("api", "balances", "rows"):  # the account API, bench_transactions.py's token and account
            from bench_transactions import seed as api_seed
            config["API_RATE_LIMIT"] = "100000000 per minute"
            token, account_id = api_seed(config)
            cookies = {"account": "", "call": ""}
        else:
            token, cookies = None, seed(config)
        app = create_app(config)
        path, headers = {"poll": ("/amami/flow/call/status", {"Cookie": cookies["call"], "HX-Request": "true"}),
                         "healthz": ("/healthz", {}),
                         "account": ("/amami/flow/account", {"Cookie": cookies["account"]}),
                         "call": ("/amami/flow/call", {"Cookie": cookies["call"]}),
                         "api": ("/amami/api/v1/accounts", {"Authorization": f"Bearer {token}"}),
                         "balances": (f"/amami/api/v1/accounts/balances?accountId={account_id}",
                                      {"Authorization": f"Bearer {token}"}),
                         "rows": (f"/amami/api/v1/accounts/transactions?accountId={account_id}",
                                  {"Authorization": f"Bearer {token}"})}[kind]
        if not os.environ.get("BENCH_NO_ACCEPT_ENCODING"):  # what bench_screens and bench_api send
            from bench_api import CLIENT_ENCODINGS
            from bench_screens import BROWSER_ENCODINGS
            headers["Accept-Encoding"] = CLIENT_ENCODINGS if kind in ("api", "balances", "rows") else BROWSER_ENCODINGS
        environ = EnvironBuilder(path=path, headers=headers, base_url="http://127.0.0.1").get_environ()
        statuses = []

        def request() -> None:
            out = app({**environ, "wsgi.input": io.BytesIO(b"")}, lambda status, _headers, _exc=None:
                      statuses.append(status))
            b"".join(out)
            getattr(out, "close", lambda: None)()

        if kind in ("api", "balances", "rows"):
            # The log rows' drain, inline every DRAIN_EVERY calls instead of by the drainer thread:
            # under valgrind a call takes ~20 ms, so the thread's 0.1 s rounds caught a varying
            # handful of rows each, and its fixed cost a round moved the figure by ±2 %.
            from webapp import logspool
            logspool.Spool._start_drainer = lambda spool: setattr(spool, "_drainer_pid", spool._pid)
        for done in range(1, 200 + calls + 1):  # the warm-up, then the counted calls
            request()
            if kind in ("api", "balances", "rows") and done % DRAIN_EVERY == 0:
                with app.app_context():
                    oplog.drain()
        if any(not s.startswith("200") for s in statuses):
            raise SystemExit(f"{kind}: {sorted(set(statuses))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
