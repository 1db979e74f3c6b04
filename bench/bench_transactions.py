"""Benchmark: the transactions endpoint (page of 500 of an account with 10,000 transactions)
next to a bare route (/healthz), in the same run, against gunicorn gthread on loopback.

    python bench/bench_transactions.py [--seconds 5] [--concurrency 4] [--workers 2] [--threads 8]
                                       [--database-url postgresql://...]   (default: a temp SQLite file)

Prints requests/s of each and their ratio. Each phase is bounded by --seconds; the client runs in
separate processes (keep-alive connections) so it does not share one GIL with itself. The union's
maintenance windows are left out of the temp configuration so the run never meets a 503, and the
per-client API limit is lifted (the benchmark is one client).
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRANSACTIONS = 10_000
SECRET = "bench-" + secrets.token_hex(24)


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


def seed(database_url: str, tenants_dir: pathlib.Path) -> tuple[str, str]:
    """One account with TRANSACTIONS rows spread over the last 90 days; returns (token, accountId)."""
    from sqlalchemy import insert
    from sqlmodel import Session, SQLModel

    from webapp import clock, create_app, db
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount, SandboxTransaction
    from webapp.oauth.models import Consent, OAuthClient, Token, secret_hash

    app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": database_url,
                      "TENANTS_DIR": str(tenants_dir)})
    db.create_all(app)
    key = AccountKey("amami", "115", "1", "1100026")
    now = clock.now()
    today = clock.today_jst()
    token = secrets.token_urlsafe(32)
    with app.app_context(), Session(db.engine()) as s:
        SQLModel.metadata  # noqa: B018  (tables exist)
        acct = SandboxAccount(tenant=key.tenant, branch=key.branch, account_type=key.account_type, number=key.number,
                              name_kana="ﾃﾞｰﾀ ﾀﾛｳ", birth_date=dt.date(1980, 1, 1), phone="09011113333",
                              pin_hash=pin_hash(key, "1234"), status="active", balance=10_000_000)
        s.add(acct)
        s.flush()
        rows = []
        for seq in range(1, TRANSACTIONS + 1):
            day = today - dt.timedelta(days=90 - (seq * 90) // TRANSACTIONS)
            rows.append({"account_id": acct.id, "seq": seq, "date": day, "value_date": day,
                         "type": "1" if seq % 3 else "2", "amount": 1000 + seq % 5000,
                         "remarks": "ｶ-ﾄﾞ" if seq % 2 else "ﾌﾘｺﾐ ﾃﾞ-ﾀ ﾀﾛｳ", "balance": 5_000_000 + seq})
        s.execute(insert(SandboxTransaction), rows)
        s.add(OAuthClient(client_id="bench-client", client_secret_hash=secret_hash("x"), tenant="amami",
                          name="bench", operator="bench", redirect_uris=["https://app.example/cb"], created_at=now))
        consent = Consent(tenant="amami", client_id="bench-client", branch=key.branch, account_type=key.account_type,
                          account_number=key.number, scope="accounts", granted_at=now,
                          expires_at=now + dt.timedelta(days=30))
        s.add(consent)
        s.flush()
        s.add(Token(consent_id=consent.id, client_id="bench-client", family="bench", scope="accounts",
                    access_token_hash=secret_hash(token), issued_at=now,
                    access_expires_at=now + dt.timedelta(hours=2)))
        s.commit()
        with app.test_request_context():
            from webapp.api import keys
            account_id = keys.account_id("bench-client", key)
    app.extensions["db_engine"].dispose()
    return token, account_id


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
        token, account_id = seed(database_url, tenants_dir)
        port = free_port()
        env = dict(os.environ, DATABASE_URL=database_url, FLASK_SECRET_KEY=SECRET,
                   FLASK_TELEPHONY_AUTH_TOKEN="bench-" + secrets.token_hex(8), FLASK_TENANTS_DIR=str(tenants_dir),
                   FLASK_BASE_URL=f"http://127.0.0.1:{port}", FLASK_API_RATE_LIMIT="100000000 per minute",
                   FLASK_GLOBAL_REQUEST_LIMIT="100000000 per second")
        env.pop("REDIS_URL", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--worker-class", "gthread",
             "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "webapp:create_app()"], cwd=ROOT, env=env)
        try:
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.1)
            auth = {"Authorization": f"Bearer {token}"}
            page_path = f"/amami/api/v1/accounts/transactions?accountId={account_id}"
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", page_path, headers=auth)
            first = conn.getresponse()
            body = json.loads(first.read())
            conn.close()
            if first.status != 200 or body["count"] != 500 or not body["hasNext"]:
                print(f"unexpected first page: {first.status} {str(body)[:300]}", file=sys.stderr)
                return 1
            # warm both paths, then measure them one after the other in the same server
            measure(port, "/healthz", {}, 1.0, args.concurrency)
            measure(port, page_path, auth, 1.0, args.concurrency)
            bare = measure(port, "/healthz", {}, args.seconds, args.concurrency)
            page = measure(port, page_path, auth, args.seconds, args.concurrency)
        finally:
            server.terminate()
            server.wait(timeout=30)

    engine = database_url.split(":", 1)[0]
    print(f"gunicorn gthread {args.workers}x{args.threads}, {args.concurrency} keep-alive clients, "
          f"{args.seconds:g} s per phase, {engine}, {TRANSACTIONS:,} transactions")
    print(f"bare route /healthz          : {bare['rps']:8.1f} req/s  ({bare['requests']} requests, "
          f"{bare['failed']} failed)")
    print(f"transactions, page of 500    : {page['rps']:8.1f} req/s  ({page['requests']} requests, "
          f"{page['failed']} failed, {page['bytes_per_response']:,} bytes each)")
    print(f"ratio transactions/bare      : {page['rps'] / bare['rps']:.3f}")
    return 0 if bare["failed"] == 0 and page["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
