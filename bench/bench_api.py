"""Benchmark: the account API as a fintech app's scheduler calls it, with wrk, next to `/healthz`.

    python bench/bench_api.py [--seconds 5] [--rounds 2] [--connections 16] [--only accounts balances transactions]
                              [--database-url postgresql://...]

One gunicorn (the Procfile's gthread 2×8 unless --workers/--threads), one account with 10,000
transactions and a token (bench/bench_transactions.py's seed), then for each of `/accounts`,
`/accounts/balances` and a 500-row transactions page, --rounds pairs of wrk phases (`/healthz`, the
endpoint) as bench/bench_screens.py does, with the server's CPU a request, each request with the
Accept-Encoding Python's requests sends (gzip, deflate). Every call writes its operation-log row, so this is the
write path of many concurrent callers: req/s, p99, the ratio to `/healthz`, and the log rows
written (one a call, checked at the end).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

import harness
from bench_screens import SPLIT_NOTE, Wrk, measure_row, reuse_port
from bench_transactions import seed

ENDPOINTS = ("accounts", "balances", "transactions")
# What Python's requests sends by default (Go's and OkHttp's send gzip alone): an app's client takes a
# gzipped page where one is given (the 500-row page; `/accounts` and balances are under the minimum).
CLIENT_ENCODINGS = "gzip, deflate"


class CountingWrk(Wrk):
    """Also adds up the requests wrk sent to the API (each one a log row to find at the end)."""

    api_requests = 0

    def run(self, url: str, headers: dict, connections: int, seconds: float, server_pid: int | None = None) -> dict:
        result = super().run(url, headers, connections, seconds, server_pid)
        if "/api/" in url:
            self.api_requests += result["requests"]
        return result


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", nargs="+", choices=ENDPOINTS, default=ENDPOINTS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--reuse-port", action="store_true", help="gunicorn --reuse-port (bench_screens.py)")
    parser.add_argument("--accept-encoding", default=CLIENT_ENCODINGS,
                        help="the Accept-Encoding every request sends (default: requests'; '' for none)")
    harness.figures_argument(parser)
    return parser.parse_args()


def logged_calls(config: dict) -> int:
    from sqlalchemy import func, select

    from webapp import create_app, db, oplog
    from webapp.oplog import OperationLog

    app = create_app(config)
    with app.app_context():
        oplog.drain()  # what the stopped workers left in their spool files (SQLite: webapp/logspool.py)
    with app.app_context(), db.engine().connect() as conn:
        count = conn.execute(select(func.count()).select_from(OperationLog).where(OperationLog.screen == "API")).scalar()
    app.extensions["db_engine"].dispose()
    return count


def main() -> int:
    args = arguments()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt install wrk)")
    wrk = CountingWrk(args.accept_encoding)
    results = []
    with harness.workspace(args, API_RATE_LIMIT="100000000 per minute") as ws:
        token, account_id = seed(ws.app_config(TESTING=True))
        auth = {"Authorization": f"Bearer {token}"}
        paths = {"accounts": "/amami/api/v1/accounts",
                 "balances": f"/amami/api/v1/accounts/balances?accountId={account_id}",
                 "transactions": f"/amami/api/v1/accounts/transactions?accountId={account_id}"}
        labels = {"accounts": "`/accounts`", "balances": "`/accounts/balances`",
                  "transactions": "transactions, page of 500"}
        answered = 0
        with harness.serve(ws, args, *reuse_port(args)) as server:
            for key in args.only:
                status, body = harness.get(ws.port, paths[key], auth)
                if status != 200:
                    raise SystemExit(f"{key}: answered {status} before measuring: {body[:300]!r}")
                answered += 1
            for key in args.only:
                row = {"label": labels[key], "path": paths[key], "headers": auth, "connections": args.connections}
                results.append({"key": key, **measure_row(wrk, ws.origin, ws.origin, row, args, server.pid,
                                                            server.pid)})
                print(f"  {key}: {results[-1]['rps']:.0f} req/s, p99 {results[-1]['p99']:.1f} ms", file=sys.stderr,
                      flush=True)
        logged = logged_calls(ws.app_config(TESTING=True))
    print(f"# gunicorn {args.worker_class} {args.workers}x{args.threads}{' --reuse-port' * args.reuse_port}, "
          f"{ws.engine}, wrk -t1 keep-alive, {args.connections} connections, {args.rounds} rounds of {args.seconds:g} s, "
          "medians")
    print("| endpoint | req/s | p99 | ratio to `/healthz` | `/healthz` req/s | server CPU a request | "
          "CPU ratio to `/healthz` | errors | connections a worker |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['label']} | {r['rps']:,.0f} | {r['p99']:.0f} ms | {r['ratio']:.2f} | {r['bare_rps']:,.0f} | "
              f"{r['cpu_ms']:.2f} ms | {r['cpu_ratio']:.2f} | {r['errors']} | {r['splits']} |")
    print(SPLIT_NOTE)
    cores = os.cpu_count() or 1
    print(f"wrk's own CPU: {wrk.cpu / max(wrk.wall, 1e-9):.0%} of one core over its phases "
          f"({wrk.cpu / max(wrk.wall, 1e-9) / cores:.0%} of the machine's {cores} cores)")
    print(f"operation-log rows of API calls: {logged:,}; calls answered: {answered + wrk.api_requests:,} "
          "(wrk counts the answers it read; it may drop a few in flight when a phase ends)")
    harness.write_figures(args.json, {"engine": ws.engine, "connections": args.connections, "rows": results,
                                      "logged": logged, "answered": answered + wrk.api_requests})
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
