"""Benchmark: the transactions endpoint (page of 500 of an account with 10,000 transactions)
next to a bare route (/healthz), in the same run, against gunicorn gthread on loopback.

    python bench/bench_transactions.py [--seconds 5] [--rounds 3] [--concurrency 4] [--workers 2] [--threads 8]
                                       [--database-url postgresql://...]   (default: a temp SQLite file)

Prints the median requests/s of each and the median of the per-round ratios. The per-client API
limit is lifted (the benchmark is one client). How it measures (alternate rounds, keep-alive client
processes, no maintenance windows, no load-shedding ceiling, so no 503 or 429): bench/harness.py.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import sys

import harness

TRANSACTIONS = 10_000


def seed(config: dict) -> tuple[str, str]:
    """One account with TRANSACTIONS rows spread over the last 90 days; returns (token, accountId)."""
    from sqlalchemy import insert
    from sqlmodel import Session, SQLModel

    from webapp import clock, create_app, db
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount, SandboxTransaction
    from webapp.oauth.models import Consent, OAuthClient, Token, secret_hash

    app = create_app(config)
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


def main() -> int:
    args = harness.arguments(__doc__, "transactions")
    with harness.workspace(args, API_RATE_LIMIT="100000000 per minute") as ws:
        token, account_id = seed(ws.app_config(TESTING=True))
        auth = {"Authorization": f"Bearer {token}"}
        page_path = f"/amami/api/v1/accounts/transactions?accountId={account_id}"
        with harness.serve(ws, args):
            status, raw = harness.get(ws.port, page_path, auth)
            body = json.loads(raw) if status == 200 else {}
            if status != 200 or body["count"] != 500 or not body["hasNext"]:
                print(f"unexpected first page: {status} {raw[:300].decode(errors='replace')}", file=sys.stderr)
                return 1
            rounds = harness.compare(ws, args, page_path, auth)
        failed = harness.report(ws, args, rounds, short="transactions", label="transactions, page of 500",
                                setting=f"{TRANSACTIONS:,} transactions")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
