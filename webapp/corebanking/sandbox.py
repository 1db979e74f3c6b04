"""The sandbox core banking: accounts and transactions in this database's sandbox_* tables.

It reads through the request's own connection (db.plain_rows: its session's, if it has one, else
its plain connection): another connection would not see what the request's session has written and
not yet committed. Its rows
(`SandboxAccount`) never leave this module: it answers with the interface's own types.
"""
from __future__ import annotations

import datetime as dt
import hmac

from sqlalchemy import and_, bindparam, literal_column, or_
from sqlmodel import select

from .. import clock, db
from . import (ACTIVE, AccountCheck, AccountKey, AccountSummary, Balance, CoreBanking, IdentityResult, Transaction,
               pin_hash)
from .models import SandboxAccount, SandboxTransaction


# The account API's reads (one call of a fintech app's schedule each): statements built once and run
# on the request's plain DB-API connection (db.plain_rows), plain columns, no ORM objects
# (bench/profile_api.py).
_a, _t = SandboxAccount.__table__.c, SandboxTransaction.__table__.c
_THIS_ACCOUNT = and_(_a.tenant == bindparam("k_tenant"), _a.branch == bindparam("k_branch"),
                     _a.account_type == bindparam("k_type"), _a.number == bindparam("k_number"))
_ACCOUNT_FACTS = select(_a.name_kana, _a.status, _a.balance, _a.withdrawable).where(_THIS_ACCOUNT)
# ② and ⑤'s identity checks read what they compare, the same way.
_IDENTITY_FACTS = select(_a.status, _a.cash_card, _a.birth_date, _a.phone, _a.pin_hash).where(_THIS_ACCOUNT)
# One statement on the (account_id, date, seq) index: the account by its key, the window, then (on
# later pages) the keyset condition (date, seq) < after, newest first.
_PAGE = (
    select(_t.seq, _t.date, _t.value_date, _t.type, _t.amount, _t.remarks, _t.balance)
    .join_from(SandboxTransaction.__table__, SandboxAccount.__table__, _a.id == _t.account_id)
    .where(_THIS_ACCOUNT, _t.date >= bindparam("date_from"), _t.date <= bindparam("date_to"))
    .order_by(_t.date.desc(), _t.seq.desc())
    .limit(bindparam("limit"))
)
_NEXT_PAGE = _PAGE.where(or_(_t.date < bindparam("after_date"),
                             and_(_t.date == bindparam("after_date"), _t.seq < bindparam("after_seq"))))
# The same pages on SQLite, each row written as the account API's JSON object by SQLite's json_object
# (transactions_json): the bytes orjson writes for the row the API would build (itemKey is the date's
# digits, '-', seq; dates are SQLite's 'YYYY-MM-DD' text, as orjson writes a date), one bytes object a
# row instead of seven values, a Transaction and a dict. tests/test_api_pipeline.py compares the pages.
_ROW_JSON = literal_column(
    "CAST(json_object("
    "'itemKey', replace(sandbox_transaction.date, '-', '') || '-' || sandbox_transaction.seq, "
    "'transactionDate', sandbox_transaction.date, 'valueDate', sandbox_transaction.value_date, "
    "'transactionType', sandbox_transaction.type, 'amount', sandbox_transaction.amount, "
    "'remarks', sandbox_transaction.remarks, 'balance', sandbox_transaction.balance) AS BLOB)")
_PAGE_JSON, _NEXT_PAGE_JSON = _PAGE.with_only_columns(_ROW_JSON), _NEXT_PAGE.with_only_columns(_ROW_JSON)


def _key_params(key: AccountKey) -> dict:
    return {"k_tenant": key.tenant, "k_branch": key.branch, "k_type": key.account_type, "k_number": key.number}


class SandboxCoreBanking(CoreBanking):
    def _identity(self, key: AccountKey):
        """The account's identity facts (status, cash_card, birth_date, phone, pin_hash), or None."""
        return db.session().connection().execute(_IDENTITY_FACTS, _key_params(key)).first()

    def _usable(self, acct) -> bool:
        return acct is not None and acct.status == ACTIVE and acct.cash_card

    def _facts(self, key: AccountKey):
        return db.first_read(_ACCOUNT_FACTS, _key_params(key))

    def account(self, key: AccountKey) -> AccountSummary | None:
        acct = self._facts(key)
        return None if acct is None else AccountSummary(name_kana=acct.name_kana, status=acct.status)

    def check_identity(self, key: AccountKey, birth_date: dt.date, phone: str) -> IdentityResult:
        acct = self._identity(key)
        if not self._usable(acct):
            return IdentityResult(AccountCheck.NOT_SERVICEABLE)
        same = (acct.birth_date == birth_date) & hmac.compare_digest(acct.phone, phone)
        if not same:
            return IdentityResult(AccountCheck.MISMATCH)
        return IdentityResult(AccountCheck.OK, phone=acct.phone)

    def check_pin(self, key: AccountKey, pin: str) -> AccountCheck:
        acct = self._identity(key)
        if not self._usable(acct):
            return AccountCheck.NOT_SERVICEABLE
        if not hmac.compare_digest(acct.pin_hash, pin_hash(key, pin)):
            return AccountCheck.MISMATCH
        return AccountCheck.OK

    def balance(self, key: AccountKey) -> Balance | None:
        return self.account_and_balance(key)[1]

    def account_and_balance(self, key: AccountKey) -> tuple[AccountSummary | None, Balance | None]:
        acct = self._facts(key)  # one read for both
        if acct is None:
            return None, None
        withdrawable = acct.balance if acct.withdrawable is None else acct.withdrawable
        return (AccountSummary(name_kana=acct.name_kana, status=acct.status),
                Balance(balance=acct.balance, withdrawable=withdrawable, as_of=clock.now()))

    def transactions(self, key: AccountKey, date_from: dt.date, date_to: dt.date,
                     after: tuple[dt.date, int] | None, limit: int) -> list[Transaction]:
        # Plain columns, not ORM objects: building 500 model instances costs ~10x the query.
        stmt, params = _page(_PAGE, _NEXT_PAGE, key, date_from, date_to, after, limit)
        if db.engine().dialect.name == "sqlite":
            return _sqlite_page(db.plain_dbapi(), stmt, params)
        return db.plain_rows(stmt, params, make=Transaction._make)

    def transactions_json(self, key: AccountKey, date_from: dt.date, date_to: dt.date,
                          after: tuple[dt.date, int] | None, limit: int) -> list[bytes] | None:
        """On SQLite with its JSON functions, the page's rows as JSON objects (_PAGE_JSON); else None."""
        if db.engine().dialect.name != "sqlite" or not _sqlite_has_json():
            return None
        stmt, params = _page(_PAGE_JSON, _NEXT_PAGE_JSON, key, date_from, date_to, after, limit)
        return [row for row, in _sqlite_rows(db.plain_dbapi(), stmt, params)]


def _page(first, following, key: AccountKey, date_from: dt.date, date_to: dt.date,
          after: tuple[dt.date, int] | None, limit: int) -> tuple:
    """The statement of a page (`first`, or `following` after a position) and its parameters."""
    params = {**_key_params(key), "date_from": date_from, "date_to": date_to, "limit": limit}
    if after is None:
        return first, params
    params["after_date"], params["after_seq"] = after
    return following, params


_SQLITE_PAGES: dict = {}  # statement → its SQLite compilation, made once


def _sqlite_page(dbapi_connection, stmt, params: dict) -> list[Transaction]:
    """The page's statement as SQLAlchemy compiles it for SQLite, run on the request's DB-API
    connection (db.plain_dbapi): SQLAlchemy's result rows and its parsing of 1,000 dates were a
    third of a 500-row page's CPU. SQLite keeps a Date as 'YYYY-MM-DD' text (SQLAlchemy's storage
    format, as it binds one too), and a page's rows share a handful of dates, so each distinct one
    is parsed once; the rows are made with tuple.__new__, as Transaction._make does, without a
    Python call a row.
    tests/test_api_pipeline.py compares the rows and the page's bytes with SQLAlchemy's."""
    rows = _sqlite_rows(dbapi_connection, stmt, params)
    dates: dict[str, dt.date] = {}
    parse, new = dt.date.fromisoformat, tuple.__new__
    return [new(Transaction, (seq, dates.get(day) or dates.setdefault(day, parse(day)),
                              dates.get(value_day) or dates.setdefault(value_day, parse(value_day)),
                              kind, amount, remarks, balance))
            for seq, day, value_day, kind, amount, remarks, balance in rows]


def _sqlite_rows(dbapi_connection, stmt, params: dict) -> list[tuple]:
    """`stmt` as SQLAlchemy compiles it for SQLite (made once), run on `dbapi_connection` with
    `params` bound as SQLAlchemy binds them (a date as its 'YYYY-MM-DD' text): its plain rows."""
    compiled = _SQLITE_PAGES.get(stmt)
    if compiled is None:
        compiled = _SQLITE_PAGES[stmt] = stmt.compile(dialect=db.engine().dialect)
    values = compiled.construct_params(params)
    bound = [v.isoformat() if isinstance(v, dt.date) else v for v in (values[n] for n in compiled.positiontup)]
    cursor = dbapi_connection.cursor()
    try:
        return cursor.execute(compiled.string, bound).fetchall()
    finally:
        cursor.close()


_SQLITE_JSON: list[bool] = []  # whether this process's SQLite has json_object, asked once


def _sqlite_has_json() -> bool:
    """SQLite has its JSON functions built in since 3.38 (Python 3.11's own and Debian 12's: 3.40),
    unless built without them; such a build writes its pages the general way."""
    if not _SQLITE_JSON:
        import sqlite3

        probe = sqlite3.connect(":memory:")
        try:
            probe.execute("SELECT json_object('a', 1)")
            _SQLITE_JSON.append(True)
        except sqlite3.OperationalError:
            _SQLITE_JSON.append(False)
        finally:
            probe.close()
    return _SQLITE_JSON[0]
