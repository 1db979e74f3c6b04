"""Core banking through a union's gateway over HTTP(S): chosen by `CORE_BANKING_URL`.

Every call is one JSON POST (nothing about the customer in a URL or an access log) to
`{CORE_BANKING_URL}/<operation>`, with `Authorization: Bearer {CORE_BANKING_TOKEN}` when one is set,
and answers 200 with a JSON object:

| operation | request (plus the account key `tenant`, `branch`, `accountType`, `number`) | answer |
|---|---|---|
| `identity/check` | `birthDate` (YYYY-MM-DD), `phone` (national digits) | `result` (`ok`, `not_serviceable`, `mismatch`), `phone` when ok |
| `pin/check` | `pin` | `result` |
| `accounts/get` | — | `account`: null or `{nameKana, status}` (`active`, `closed`, `moved`) |
| `accounts/balance` | — | `balance`: null or `{balance, withdrawable, asOf}` (ISO 8601 with offset) |
| `accounts/transactions` | `dateFrom`, `dateTo`, `after` (null or `[date, seq]`), `limit` | `transactions`: `[{seq, date, valueDate, type, amount, remarks, balance}]`, newest first |

The rule this module keeps: every call is bounded by `CORE_BANKING_TIMEOUT_SECONDS` (default 5,
well under gunicorn's 30 s worker timeout), both to connect and between bytes of the answer; a
timeout, a refused or broken connection, any status but 200, or an answer that is not the shape
above raises `CoreUnavailable`, which the screens show as SPEC §3's No.4 (and ② ⑤ refund the
lock's slot). Nothing is retried here: the customer presses 次へ again.
"""
from __future__ import annotations

import datetime as dt
import logging

import requests

from . import AccountCheck, AccountKey, AccountSummary, Balance, CoreBanking, CoreUnavailable, IdentityResult, Transaction

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
_CHECKS = {c.value: c for c in AccountCheck}


class GatewayCoreBanking(CoreBanking):
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, token: str | None = None):
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.http = requests.Session()  # pooled keep-alive connections, shared by the worker's threads
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, operation: str, key: AccountKey, **fields) -> dict:
        body = {"tenant": key.tenant, "branch": key.branch, "accountType": key.account_type,
                "number": key.number, **fields}
        try:
            response = self.http.post(f"{self.url}/{operation}", json=body, timeout=self.timeout)
        except requests.Timeout as e:
            raise CoreUnavailable(f"{operation}: no answer within {self.timeout:g}s") from e
        except requests.RequestException as e:
            raise CoreUnavailable(f"{operation}: {type(e).__name__}") from e
        if response.status_code != 200:
            raise CoreUnavailable(f"{operation}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as e:
            raise CoreUnavailable(f"{operation}: not JSON") from e
        if not isinstance(answer, dict):
            raise CoreUnavailable(f"{operation}: not a JSON object")
        return answer

    @staticmethod
    def _check(operation: str, answer: dict) -> AccountCheck:
        check = _CHECKS.get(answer.get("result"))
        if check is None:
            raise CoreUnavailable(f"{operation}: unknown result")
        return check

    def check_identity(self, key: AccountKey, birth_date: dt.date, phone: str) -> IdentityResult:
        answer = self._call("identity/check", key, birthDate=birth_date.isoformat(), phone=phone)
        check = self._check("identity/check", answer)
        if check is AccountCheck.OK:
            return IdentityResult(check, phone=str(answer.get("phone") or phone))
        return IdentityResult(check)

    def check_pin(self, key: AccountKey, pin: str) -> AccountCheck:
        return self._check("pin/check", self._call("pin/check", key, pin=pin))

    def account(self, key: AccountKey) -> AccountSummary | None:
        found = self._call("accounts/get", key).get("account")
        try:
            return None if found is None else AccountSummary(str(found["nameKana"]), str(found["status"]))
        except (KeyError, TypeError) as e:
            raise CoreUnavailable("accounts/get: malformed account") from e

    def balance(self, key: AccountKey) -> Balance | None:
        found = self._call("accounts/balance", key).get("balance")
        try:
            return None if found is None else Balance(
                balance=int(found["balance"]), withdrawable=int(found["withdrawable"]),
                as_of=dt.datetime.fromisoformat(found["asOf"]).astimezone(dt.timezone.utc))
        except (KeyError, TypeError, ValueError) as e:
            raise CoreUnavailable("accounts/balance: malformed balance") from e

    def transactions(self, key: AccountKey, date_from: dt.date, date_to: dt.date,
                     after: tuple[dt.date, int] | None, limit: int) -> list[Transaction]:
        answer = self._call("accounts/transactions", key, dateFrom=date_from.isoformat(), dateTo=date_to.isoformat(),
                            after=None if after is None else [after[0].isoformat(), after[1]], limit=limit)
        try:
            return [Transaction(int(t["seq"]), dt.date.fromisoformat(t["date"]), dt.date.fromisoformat(t["valueDate"]),
                                str(t["type"]), int(t["amount"]), str(t["remarks"]), int(t["balance"]))
                    for t in answer["transactions"]][:limit]
        except (KeyError, TypeError, ValueError) as e:
            raise CoreUnavailable("accounts/transactions: malformed transactions") from e
