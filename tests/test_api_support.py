"""Helpers for the account API tests: consents and tokens made straight in the database (the API
must not depend on the token endpoint), sandbox transactions, and `ApiActions` so tests read as
the calls a fintech app makes. (No tests here; imported by tests/test_api_*.py.)"""
from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy import insert
from sqlmodel import Session, select

from webapp import clock, db
from webapp.corebanking.models import SandboxAccount, SandboxTransaction
from webapp.oauth.models import Consent, OAuthClient, Token, secret_hash

from conftest import DEMO, add_account


def add_client(app, tenant: str = "amami", *, revoked: bool = False) -> str:
    client_id = "client-" + secrets.token_hex(8)
    with app.app_context(), Session(db.engine()) as s:
        s.add(OAuthClient(client_id=client_id, client_secret_hash=secret_hash("s3cret"), tenant=tenant,
                          name="しんくみアプリwith CRECO", operator="アイ・ティ・リアライズ株式会社",
                          redirect_uris=["https://app.example/cb"], created_at=clock.now(),
                          revoked_at=clock.now() if revoked else None))
        s.commit()
    return client_id


def grant_token(app, tenant: str = "amami", *, client_id: str | None = None, account: dict | None = None,
                scope: str = "accounts", access_seconds: int = 600, consent_days: int = 30,
                consent_tenant: str | None = None) -> dict:
    """A consent for one account and an access token under it; returns ids and the token."""
    client_id = client_id or add_client(app, tenant)
    acct = account or DEMO[tenant]
    token = secrets.token_urlsafe(32)
    now = clock.now()
    with app.app_context(), Session(db.engine()) as s:
        consent = Consent(tenant=consent_tenant or tenant, client_id=client_id, branch=acct["branch"],
                          account_type=acct["account_type"], account_number=acct["number"], scope=scope,
                          granted_at=now, expires_at=now + dt.timedelta(days=consent_days))
        s.add(consent)
        s.flush()
        row = Token(consent_id=consent.id, client_id=client_id, family=secrets.token_hex(8), scope=scope,
                    access_token_hash=secret_hash(token), issued_at=now,
                    access_expires_at=now + dt.timedelta(seconds=access_seconds))
        s.add(row)
        s.commit()
        return {"token": token, "client_id": client_id, "consent_id": consent.id, "token_id": row.id}


def update_row(app, model, row_id: int, **values) -> None:
    with app.app_context(), Session(db.engine()) as s:
        row = s.get(model, row_id)
        for k, v in values.items():
            setattr(row, k, v)
        s.commit()


def set_account(app, tenant: str, **values) -> None:
    """Change the DEMO account of `tenant` in the sandbox (status, balance, …)."""
    with app.app_context(), Session(db.engine()) as s:
        c = DEMO[tenant]
        acct = s.exec(select(SandboxAccount).where(SandboxAccount.tenant == tenant,
                                                   SandboxAccount.number == c["number"])).one()
        for k, v in values.items():
            setattr(acct, k, v)
        s.commit()


def add_transactions(app, account_id: int, rows: list[tuple[dt.date, int]], *, start_balance: int = 1_000_000):
    """Insert (date, seq) rows; amount and remarks derived from seq so every row is recognisable."""
    with app.app_context(), Session(db.engine()) as s:
        s.execute(insert(SandboxTransaction), [
            {"account_id": account_id, "seq": seq, "date": day, "value_date": day,
             "type": "1" if seq % 2 else "2", "amount": 1000 + seq, "remarks": f"取引{seq}",
             "balance": start_balance + seq}
            for day, seq in rows])
        s.commit()


def daily_rows(first: dt.date, last: dt.date, per_day: int, first_seq: int = 1) -> list[tuple[dt.date, int]]:
    rows, seq, day = [], first_seq, first
    while day <= last:
        for _ in range(per_day):
            rows.append((day, seq))
            seq += 1
        day += dt.timedelta(days=1)
    return rows


class ApiActions:
    """A fintech app calling the API of one union with one token."""

    def __init__(self, app, client, tenant: str = "amami", **grant):
        self.app, self.client, self.tenant = app, client, tenant
        self.grant = grant_token(app, tenant, **grant)
        self.token = self.grant["token"]

    def get(self, path: str, *, token: str | None = "default", headers: dict | None = None, **params):
        hdrs = dict(headers or {})
        token = self.token if token == "default" else token
        if token is not None:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        return self.client.get(f"/{self.tenant}/api/v1/{path}", query_string=params, headers=hdrs)

    def account_id(self) -> str:
        if not hasattr(self, "_account_id"):
            response = self.get("accounts")
            assert response.status_code == 200, response.get_json()
            self._account_id = response.get_json()["accounts"][0]["accountId"]
        return self._account_id

    def transactions(self, **params):
        params.setdefault("accountId", self.account_id())
        return self.get("accounts/transactions", **params)

    def all_pages(self, **params) -> list[list[dict]]:
        pages, key = [], None
        while True:
            query = dict(params, **({"nextItemKey": key} if key else {}))
            body = self.transactions(**query).get_json()
            pages.append(body["transactions"])
            if not body["hasNext"]:
                return pages
            key = body["nextItemKey"]


def sandbox_account_id(app, tenant: str = "amami") -> int:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(SandboxAccount.id).where(SandboxAccount.tenant == tenant,
                                                      SandboxAccount.number == DEMO[tenant]["number"])).one()


@pytest.fixture
def api(app, client, customers):
    """A fintech app holding a fresh token for the amami demo customer's account."""
    return ApiActions(app, client, "amami")


def second_account(app, tenant: str = "amami") -> dict:
    other = dict(DEMO[tenant], number="2200031", name_kana="ﾍﾞﾂ ｼﾞﾛｳ", phone="09022224444")
    add_account(app, tenant, **other)
    return other
