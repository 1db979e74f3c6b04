"""Sandbox core banking loader: fills the sandbox_* tables from a union's JSON file (CONTRACT §3).

The rules it keeps:
- A file is checked whole before anything is written. Every problem is reported as one line naming
  the entry and the field (`accounts[2].birth_date: not a date (YYYY-MM-DD)`); one bad entry refuses
  the file, and one bad file refuses every file of the same call. Nothing is half-loaded: the
  writing of all files of a call is one database transaction.
- Idempotent: an account is found by its key (tenant, 店番, 科目, 口座番号) and updated in place; its
  transactions become exactly the file's, numbered (`seq`) by date and then file order. Rows whose
  content did not change are not touched, so loading the same file twice changes nothing.
- Accounts missing from the file are left as they are (a file may carry only some customers).
- A PIN is kept only as `pin_hash` (keyed HMAC), never as given.
- The field rules (店番, 口座番号 zero-padded, half-width kana name, phone, PIN, birth date) are the
  screens' own specs from `webapp.fields`, so the sandbox never holds an account a customer could
  not type.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
import re
from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError
from sqlalchemy import delete
from sqlmodel import Session, select

from .. import clock
from ..fields import ACCOUNT_NUMBER, BRANCH, EARLIEST_BIRTH_YEAR, NAME_KANA, PHONE, PIN, Spec, padded_account_number
from . import AccountKey, pin_hash
from .models import SandboxAccount, SandboxTransaction
from . import STATUSES  # an account's status, the interface's own (AccountSummary.status)

TRANSACTION_TYPES = ("1", "2")  # 入金, 出金
REMARKS_MAX = 100  # the sandbox_transaction.remarks column
MAX_YEN = 10**15  # far beyond any deposit, well inside the BIGINT columns


class LoadError(Exception):
    """A file (or a set of files) refused whole; `problems` are one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# --- field rules ------------------------------------------------------------------------------


def _bad(message: str, **values) -> PydanticCustomError:
    return PydanticCustomError("sandbox_field", message, values)


def _ascii_digits(value, spec: Spec) -> str:
    if not spec.accepts(value):
        low, high = spec.min_length, spec.max_length
        counts = f"{high}" if low == high else f"{low} or {high}" if high == low + 1 else f"{low} to {high}"
        raise _bad(f"not {counts} ASCII digits")
    return value


def _branch(value) -> str:
    return _ascii_digits(value, BRANCH)


def _number(value) -> str:
    return padded_account_number(_ascii_digits(value, ACCOUNT_NUMBER))


def _phone(value) -> str:
    return _ascii_digits(value, PHONE)


def _pin(value) -> str:
    return _ascii_digits(value, PIN)


def _name_kana(value) -> str:
    if not isinstance(value, str) or not NAME_KANA.pattern.fullmatch(value) or not value.strip():
        raise _bad("not half-width katakana")
    if len(value) > NAME_KANA.max_length:
        raise _bad(f"longer than {NAME_KANA.max_length} characters")
    return value


def _date(value) -> dt.date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise _bad("not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _bad("not a real date ({value})", value=value) from None


def _birth_date(value) -> dt.date:
    born = _date(value)
    if born > clock.today_jst():
        raise _bad("in the future")
    if born.year < EARLIEST_BIRTH_YEAR:
        raise _bad(f"before {EARLIEST_BIRTH_YEAR}")
    return born


def _one_of(*choices: str):
    def check(value) -> str:
        if not isinstance(value, str) or value not in choices:
            raise _bad("not one of {choices}", choices=", ".join(f'"{c}"' for c in choices))
        return value

    return check


def _account_type(value, info: ValidationInfo) -> str:
    codes = (info.context or {}).get("account_types")
    if not isinstance(value, str) or (codes is not None and value not in codes):
        shown = ", ".join(f'"{c}"' for c in codes or ())
        raise _bad("not an account type of this union ({codes})", codes=shown)
    return value


def _tenant(value, info: ValidationInfo) -> str:
    known = (info.context or {}).get("tenants", ())
    if not isinstance(value, str) or value not in known:
        raise _bad("unknown union (known: {known})", known=", ".join(sorted(known)))
    return value


def _remarks(value) -> str:
    if not isinstance(value, str):
        raise _bad("not a string")
    if len(value) > REMARKS_MAX:
        raise _bad(f"longer than {REMARKS_MAX} characters")
    return value


def _positive_amount(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad("not an integer")
    if not 0 < value <= MAX_YEN:
        raise _bad("not a positive amount up to {max} (the type gives the direction)", max=MAX_YEN)
    return value


Yen = Annotated[int, Field(ge=-MAX_YEN, le=MAX_YEN)]


class _Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TransactionEntry(_Entry):
    date: Annotated[dt.date, PlainValidator(_date)]
    value_date: Annotated[Optional[dt.date], PlainValidator(_date)] = None  # default: `date`
    type: Annotated[str, PlainValidator(_one_of(*TRANSACTION_TYPES))]
    amount: Annotated[int, PlainValidator(_positive_amount)]
    remarks: Annotated[str, PlainValidator(_remarks)]
    balance: Yen


class AccountEntry(_Entry):
    branch: Annotated[str, PlainValidator(_branch)]
    type: Annotated[str, PlainValidator(_account_type)]
    number: Annotated[str, PlainValidator(_number)]
    name_kana: Annotated[str, PlainValidator(_name_kana)]
    birth_date: Annotated[dt.date, PlainValidator(_birth_date)]
    phone: Annotated[str, PlainValidator(_phone)]
    pin: Annotated[str, PlainValidator(_pin)]
    cash_card: bool
    status: Annotated[str, PlainValidator(_one_of(*STATUSES))]
    balance: Yen
    withdrawable: Optional[Yen] = None  # 支払可能残高 when it differs from the balance
    note: Optional[str] = None  # for people reading the file (the demo page shows it); not stored
    transactions: list[TransactionEntry] = []

    def booked(self) -> list[TransactionEntry]:
        """Transactions in booking order: by date, then as listed in the file."""
        return sorted(self.transactions, key=lambda t: t.date)  # sorted() is stable


class SandboxFile(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    tenant: Annotated[str, PlainValidator(_tenant)]
    accounts: list[AccountEntry]


# --- reading and checking -----------------------------------------------------------------------

_PLAIN_MESSAGES = {
    "missing": "missing",
    "extra_forbidden": "unknown field",
    "int_type": "not an integer",
    "bool_type": "not true or false",
    "string_type": "not a string",
    "list_type": "not a list",
    "model_type": "not an object",
    "model_attributes_type": "not an object",
    "dict_type": "not an object",
}


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _repeated(keys: list[tuple[str, ...]], seen: dict, place=None):
    """(index, key as text, where it was first seen) for each key already in `seen`; every key not yet
    there is noted in `seen` as first seen at `place` (by default, its index)."""
    for i, key in enumerate(keys):
        if key in seen:
            yield i, "-".join(key), seen[key]
        seen.setdefault(key, i if place is None else place)


def check(data: object, tenants: dict) -> SandboxFile:
    """Validate one parsed file against the known unions; raise LoadError listing every problem."""
    raw_tenant = data.get("tenant") if isinstance(data, dict) else None
    union = tenants.get(raw_tenant) if isinstance(raw_tenant, str) else None
    context = {"tenants": tuple(tenants),
               "account_types": tuple(t.code for t in union.account_types) if union else None}
    try:
        parsed = SandboxFile.model_validate(data, context=context)
    except ValidationError as e:
        raise LoadError([f"{_where(err['loc'])}: {_PLAIN_MESSAGES.get(err['type'], err['msg'])}"
                         for err in e.errors(include_url=False)]) from None
    keys = [(acct.branch, acct.type, acct.number) for acct in parsed.accounts]
    problems = [f"accounts[{i}]: the same account as accounts[{first}] ({key})"
                for i, key, first in _repeated(keys, {})]
    if problems:
        raise LoadError(problems)
    return parsed


def read(path: str | pathlib.Path, tenants: dict) -> SandboxFile:
    """Read and check one file; problems are prefixed with the file's name."""
    name = pathlib.Path(path).name
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError([f"{name}: cannot be read ({e.__class__.__name__}: {e})"]) from None
    except json.JSONDecodeError as e:
        raise LoadError([f"{name}: not JSON (line {e.lineno} column {e.colno}: {e.msg})"]) from None
    try:
        return check(data, tenants)
    except LoadError as e:
        raise LoadError([f"{name}: {p}" for p in e.problems]) from None


def read_all(paths, tenants: dict) -> list[SandboxFile]:
    """Check every file before any is written; an account in two files of one call is refused."""
    files, problems, owner = [], [], {}
    for path in paths:
        try:
            files.append(read(path, tenants))
        except LoadError as e:
            problems.extend(e.problems)
            continue
        name = pathlib.Path(path).name
        keys = [(files[-1].tenant, acct.branch, acct.type, acct.number) for acct in files[-1].accounts]
        problems.extend(f"{name}: accounts[{i}]: also in {first} ({key})"
                        for i, key, first in _repeated(keys, owner, name))
    if problems:
        raise LoadError(problems)
    return files


# --- writing ------------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadSummary:
    tenant: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    transactions: int = 0

    @property
    def accounts(self) -> int:
        return self.new + self.updated + self.unchanged

    def line(self) -> str:
        return (f"{self.tenant}: {self.accounts} accounts loaded ({self.new} new, {self.updated} updated, "
                f"{self.unchanged} unchanged), {self.transactions} transactions")


def write(s: Session, files: list[SandboxFile]) -> list[LoadSummary]:
    """Write checked files through `s` without committing: the caller owns the one transaction."""
    summaries = []
    for f in files:
        summary = LoadSummary(f.tenant)
        for entry in f.accounts:
            created, changed = _upsert_account(s, f.tenant, entry)
            if created:
                summary.new += 1
            elif changed:
                summary.updated += 1
            else:
                summary.unchanged += 1
            summary.transactions += len(entry.transactions)
        summaries.append(summary)
    return summaries


def _upsert_account(s: Session, tenant: str, entry: AccountEntry) -> tuple[bool, bool]:
    """(created, changed) for one account and its transactions."""
    key = AccountKey(tenant, entry.branch, entry.type, entry.number)
    values = dict(name_kana=entry.name_kana, birth_date=entry.birth_date, phone=entry.phone,
                  pin_hash=pin_hash(key, entry.pin), cash_card=entry.cash_card, status=entry.status,
                  balance=entry.balance, withdrawable=entry.withdrawable)
    acct = s.exec(select(SandboxAccount).where(
        SandboxAccount.tenant == key.tenant, SandboxAccount.branch == key.branch,
        SandboxAccount.account_type == key.account_type, SandboxAccount.number == key.number)).first()
    created = acct is None
    changed = False
    if created:
        acct = SandboxAccount(tenant=key.tenant, branch=key.branch, account_type=key.account_type,
                              number=key.number, **values)
        s.add(acct)
        s.flush()
    else:
        changed = _assign(acct, values)
    changed = _replace_transactions(s, acct.id, entry.booked()) or changed
    return created, changed


def _assign(row, values: dict) -> bool:
    """Set only the values that differ (an unchanged row stays clean); True if any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _replace_transactions(s: Session, account_id: int, booked: list[TransactionEntry]) -> bool:
    """Make the account's transactions exactly `booked` (seq 1…n), touching only rows that differ."""
    existing = {t.seq: t for t in s.exec(select(SandboxTransaction).where(
        SandboxTransaction.account_id == account_id))}
    changed = False
    for seq, t in enumerate(booked, start=1):
        values = dict(date=t.date, value_date=t.value_date or t.date, type=t.type, amount=t.amount,
                      remarks=t.remarks, balance=t.balance)
        row = existing.pop(seq, None)
        if row is None:
            s.add(SandboxTransaction(account_id=account_id, seq=seq, **values))
            changed = True
        else:
            changed = _assign(row, values) or changed
    if existing:
        s.execute(delete(SandboxTransaction).where(SandboxTransaction.account_id == account_id,
                                                   SandboxTransaction.seq.in_(list(existing))))
        changed = True
    s.flush()
    return changed

