"""Core banking: one narrow interface, a sandbox implementation (SQL tables) as the default.

The rest of the code asks `core()` and never knows which implementation answers: it reads only
this module's own result types (`AccountSummary`, `Balance`, `Transaction`, `IdentityResult`,
`AccountCheck`), never an implementation's rows. The gateway
implementation (gateway.py, chosen by `CORE_BANKING_URL` in wiring.py) talks HTTP to a union's core system and
raises `CoreUnavailable` when it cannot answer (timeouts included), which the screens turn into
SPEC §3's 「ご指定のサービスは…」.
"""
from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import typing

from flask import current_app


class CoreUnavailable(Exception):
    """The core banking system could not answer (down, timed out)."""


class AccountCheck(enum.Enum):
    OK = "ok"
    NOT_SERVICEABLE = "not_serviceable"  # unknown, closed, moved, no cash card → error 1
    MISMATCH = "mismatch"  # account right, identity wrong → error 2


@dataclasses.dataclass(frozen=True)
class AccountKey:
    tenant: str
    branch: str
    account_type: str
    number: str


ACTIVE, CLOSED, MOVED = STATUSES = ("active", "closed", "moved")  # an account's status


@dataclasses.dataclass(frozen=True)
class AccountSummary:
    """An account's public facts: what the account API may show about it."""

    name_kana: str  # 口座名義 (half-width kana)
    status: str  # ACTIVE | CLOSED | MOVED


@dataclasses.dataclass(frozen=True)
class Balance:
    balance: int  # yen
    withdrawable: int  # yen (支払可能残高)
    as_of: dt.datetime  # aware; when the core system stated it


class Transaction(typing.NamedTuple):
    """One booked transaction. A NamedTuple, not a frozen dataclass: a page builds 500 of them,
    and a frozen dataclass costs ~5 µs each to construct."""

    seq: int  # booking order within the account, unique per account
    date: dt.date  # 取引日 (JST)
    value_date: dt.date  # 起算日
    type: str  # "1" 入金, "2" 出金
    amount: int  # yen, positive
    remarks: str
    balance: int  # yen, after this transaction

    @property
    def position(self) -> tuple[dt.date, int]:
        return (self.date, self.seq)


@dataclasses.dataclass(frozen=True)
class IdentityResult:
    check: AccountCheck
    phone: str | None = None  # the registered phone (national digits) when check is OK


def pin_hash(key: AccountKey, pin: str) -> str:
    """Keyed hash of a PIN, bound to its account: HMAC-SHA256 under a key derived from SECRET_KEY."""
    secret = current_app.config.get("PIN_HASH_KEY") or current_app.config["SECRET_KEY"]
    mac_key = hmac.new(str(secret).encode(), b"renkei/pin-hash/v1", hashlib.sha256).digest()
    message = f"{key.tenant}|{key.branch}|{key.account_type}|{key.number}|{pin}".encode()
    return hmac.new(mac_key, message, hashlib.sha256).hexdigest()


class CoreBanking(abc.ABC):
    """What the product asks of a union's core system."""

    @abc.abstractmethod
    def check_identity(self, key: AccountKey, birth_date: dt.date, phone: str) -> IdentityResult:
        """Whether the account may be served and its holder's birth date and phone are these."""

    @abc.abstractmethod
    def check_pin(self, key: AccountKey, pin: str) -> AccountCheck:
        """Whether the account may be served and `pin` is its cash card's PIN."""

    @abc.abstractmethod
    def account(self, key: AccountKey) -> AccountSummary | None:
        """The account's public facts (name, status), or None when the core system does not know it."""

    @abc.abstractmethod
    def balance(self, key: AccountKey) -> Balance | None:
        """The account's balance now, or None when the core system does not know the account."""

    def account_and_balance(self, key: AccountKey) -> tuple[AccountSummary | None, Balance | None]:
        """`account` and, for an account the core system knows, `balance`: what the account API's
        balances asks, which a core may answer in one question."""
        found = self.account(key)
        return found, (None if found is None else self.balance(key))

    @abc.abstractmethod
    def transactions(self, key: AccountKey, date_from: dt.date, date_to: dt.date,
                     after: tuple[dt.date, int] | None, limit: int) -> list[Transaction]:
        """Up to `limit` transactions dated date_from..date_to (inclusive), newest first by
        (date desc, seq desc), starting strictly after position `after` (a (date, seq) pair) in
        that order. Keyset paging: rows booked later never shift the pages already read."""

    def transactions_json(self, key: AccountKey, date_from: dt.date, date_to: dt.date,
                          after: tuple[dt.date, int] | None, limit: int) -> list[bytes] | None:
        """The rows `transactions` gives, each already written as the account API's JSON object
        (CONTRACT §6: itemKey … balance, the bytes webapp/api/views.py writes for a Transaction),
        when this core can write them faster than the API builds them; None when it cannot, and the
        API builds them from `transactions`."""
        return None


def core() -> CoreBanking:
    return current_app._get_current_object().extensions["core_banking"]  # every API call: no proxy lookup

