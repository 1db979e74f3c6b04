"""`flask sandbox load FILE.json …` (CONTRACT §3): idempotent, all-or-nothing, PINs only hashed,
every bad field refused with a message naming its entry and field."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from webapp import db
from webapp.corebanking import AccountCheck, AccountKey, core, loader, pin_hash
from webapp.corebanking.models import SandboxAccount, SandboxTransaction


def account(**override) -> dict:
    entry = {"branch": "115", "type": "1", "number": "1100026", "name_kana": "ﾃﾞｰﾀ ﾀﾛｳ",
             "birth_date": "1980-01-01", "phone": "09011113333", "pin": "1234", "cash_card": True,
             "status": "active", "balance": 1_229_567,
             "transactions": [
                 {"date": "2026-10-01", "value_date": "2026-10-01", "type": "1", "amount": 1_234_567,
                  "remarks": "ﾌﾘｺﾐ", "balance": 1_234_567},
                 {"date": "2026-10-02", "value_date": "2026-10-02", "type": "2", "amount": 5_000,
                  "remarks": "ATM", "balance": 1_229_567}]}
    entry.update(override)
    return entry


def sandbox_file(tenant="amami", accounts=None) -> dict:
    return {"tenant": tenant, "accounts": [account()] if accounts is None else accounts}


def three_accounts() -> list[dict]:
    return [account(), account(number="1100034", name_kana="ﾃﾞｰﾀ ｼﾞﾛｳ"),
            account(number="1100042", name_kana="ﾃﾞｰﾀ ﾊﾅｺ")]


@pytest.fixture
def write(tmp_path):
    def write(doc, name="sandbox.json") -> str:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture(params=["sqlite", "postgres"])
def engine_app(request):
    """The same rule on both engines."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def load(app, *paths):
    """Run the command; a path may also be a list of paths."""
    flat = [p for path in paths for p in (path if isinstance(path, list) else [path])]
    return app.test_cli_runner().invoke(args=["sandbox", "load", *flat])


def snapshot(app) -> tuple[list, list]:
    """Every row of both sandbox tables, ids included: 'nothing changed' means this is equal."""
    with app.app_context():
        s = db.session()
        accounts = [tuple(r) for r in s.execute(select(SandboxAccount.__table__).order_by(SandboxAccount.id))]
        txs = [tuple(r) for r in s.execute(select(SandboxTransaction.__table__).order_by(SandboxTransaction.id))]
    return accounts, txs


def rows(app, number="1100026"):
    with app.app_context():
        s = db.session()
        acct = s.execute(select(SandboxAccount).where(SandboxAccount.number == number)).scalar_one()
        txs = s.execute(select(SandboxTransaction).where(SandboxTransaction.account_id == acct.id)
                        .order_by(SandboxTransaction.seq)).scalars().all()
    return acct, txs


KEY = AccountKey("amami", "115", "1", "1100026")


# --- loading -------------------------------------------------------------------------------------

def test_loaded_account_passes_identity_and_pin_checks(app, write):
    result = load(app, write(sandbox_file()))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "amami: 1 accounts loaded (1 new, 0 updated, 0 unchanged), 2 transactions"
    with app.app_context():
        assert core().check_identity(KEY, dt.date(1980, 1, 1), "09011113333").check is AccountCheck.OK
        assert core().check_pin(KEY, "1234") is AccountCheck.OK
        assert core().check_pin(KEY, "4321") is AccountCheck.MISMATCH


def test_pin_is_stored_only_as_keyed_hash(app, write):
    load(app, write(sandbox_file(accounts=[account(pin="8642")])))
    accounts, _ = snapshot(app)
    assert not any("8642" in str(value) for value in accounts[0])
    with app.app_context():
        assert rows(app)[0].pin_hash == pin_hash(KEY, "8642")


def test_loading_same_file_twice_changes_nothing(engine_app, write):
    path = write(sandbox_file(accounts=three_accounts()))
    assert load(engine_app, path).exit_code == 0
    before = snapshot(engine_app)
    again = load(engine_app, path)
    assert again.exit_code == 0, again.output
    assert "3 accounts loaded (0 new, 0 updated, 3 unchanged), 6 transactions" in again.output
    assert snapshot(engine_app) == before
    with engine_app.app_context():
        assert core().check_pin(KEY, "1234") is AccountCheck.OK


def test_existing_account_is_updated_in_place_with_the_files_transactions(engine_app, write):
    load(engine_app, write(sandbox_file()))
    first, _ = rows(engine_app)
    changed = account(phone="08099998888", pin="9999", status="moved", balance=7_000, cash_card=False,
                      transactions=[{"date": "2026-11-01", "type": "2", "amount": 3_000, "remarks": "ｶｰﾄﾞ",
                                     "balance": 7_000}])
    result = load(engine_app, write(sandbox_file(accounts=[changed])))
    assert result.exit_code == 0, result.output
    assert "1 accounts loaded (0 new, 1 updated, 0 unchanged), 1 transactions" in result.output
    acct, txs = rows(engine_app)
    assert acct.id == first.id
    assert (acct.phone, acct.status, acct.balance, acct.cash_card) == ("08099998888", "moved", 7_000, False)
    assert [(t.seq, t.date.isoformat(), t.value_date.isoformat(), t.amount) for t in txs] == [
        (1, "2026-11-01", "2026-11-01", 3_000)]
    with engine_app.app_context():
        assert acct.pin_hash == pin_hash(KEY, "9999")


def test_accounts_missing_from_the_file_are_left_as_they_are(app, write):
    load(app, write(sandbox_file(accounts=three_accounts())))
    result = load(app, write(sandbox_file(accounts=[account(balance=1)])))
    assert "1 accounts loaded (0 new, 1 updated, 0 unchanged)" in result.output
    assert len(snapshot(app)[0]) == 3


def test_transactions_are_numbered_by_date_then_file_order(app, write):
    txs = [{"date": d, "type": "2", "amount": 1, "remarks": r, "balance": 0}
           for d, r in [("2026-10-03", "c"), ("2026-10-01", "a"), ("2026-10-03", "d"), ("2026-10-02", "b")]]
    load(app, write(sandbox_file(accounts=[account(transactions=txs)])))
    assert [(t.seq, t.remarks) for t in rows(app)[1]] == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


def test_short_account_number_is_zero_padded_to_seven(app, write):
    load(app, write(sandbox_file(accounts=[account(number="26")])))
    assert rows(app, "0000026")[0].number == "0000026"


def test_several_files_load_in_one_call(app, write):
    maruhachi = account(branch="201", number="0012345", name_kana="ﾏﾙﾊﾁ ﾊﾅｺ", transactions=[])
    result = load(app, write(sandbox_file(accounts=three_accounts()), "a.json"),
                  write(sandbox_file("maruhachi", [maruhachi]), "m.json"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "amami: 3 accounts loaded (3 new, 0 updated, 0 unchanged), 6 transactions",
        "maruhachi: 1 accounts loaded (1 new, 0 updated, 0 unchanged), 0 transactions"]


# --- refusals --------------------------------------------------------------------------------------

BAD_FIELDS = [
    ("branch", "12", "branch: not 3 ASCII digits"),
    ("branch", "１１５", "branch: not 3 ASCII digits"),
    ("type", "9", 'type: not an account type of this union ("1", "4")'),
    ("number", "12345678", "number: not 1 to 7 ASCII digits"),
    ("number", 1100026, "number: not 1 to 7 ASCII digits"),
    ("name_kana", "データ タロウ", "name_kana: not half-width katakana"),
    ("name_kana", "ｱ" * 49, "name_kana: longer than 48 characters"),
    ("birth_date", "1980/01/01", "birth_date: not a date (YYYY-MM-DD)"),
    ("birth_date", "1980-02-30", "birth_date: not a real date (1980-02-30)"),
    ("birth_date", "2026-11-19", "birth_date: in the future"),
    ("phone", "090-1111-3333", "phone: not 10 or 11 ASCII digits"),
    ("phone", "090111", "phone: not 10 or 11 ASCII digits"),
    ("pin", "123", "pin: not 4 ASCII digits"),
    ("pin", "１２３４", "pin: not 4 ASCII digits"),
    ("pin", 1234, "pin: not 4 ASCII digits"),
    ("cash_card", "yes", "cash_card: not true or false"),
    ("cash_card", 1, "cash_card: not true or false"),
    ("status", "open", 'status: not one of "active", "closed", "moved"'),
    ("balance", "1000", "balance: not an integer"),
    ("balance", 10.5, "balance: not an integer"),
    ("transactions", {}, "transactions: not a list"),
]

BAD_TRANSACTION_FIELDS = [
    ("date", "2026-13-01", "date: not a real date (2026-13-01)"),
    ("value_date", "01/10/2026", "value_date: not a date (YYYY-MM-DD)"),
    ("type", "3", 'type: not one of "1", "2"'),
    ("amount", "5000", "amount: not an integer"),
    ("amount", 0, "amount: not a positive amount"),
    ("remarks", 5, "remarks: not a string"),
    ("remarks", "x" * 101, "remarks: longer than 100 characters"),
    ("balance", "x", "balance: not an integer"),
]


@pytest.fixture
def loaded(app, write):
    """A sandbox already holding data, so 'nothing written' also means 'nothing updated'."""
    load(app, write(sandbox_file(accounts=three_accounts()), "before.json"))
    return snapshot(app)


def refused(app, loaded, path, expected: str):
    result = load(app, path)
    assert result.exit_code != 0
    assert expected in result.output, result.output
    assert "nothing loaded" in result.output
    assert snapshot(app) == loaded


@pytest.mark.parametrize("field, value, message", BAD_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD_FIELDS])
def test_bad_account_field_refuses_the_whole_file_naming_entry_and_field(app, write, loaded, field, value, message):
    accounts = three_accounts()
    accounts[0]["balance"] = 42  # a change that must not be written
    accounts[2][field] = value
    refused(app, loaded, write(sandbox_file(accounts=accounts)), f"accounts[2].{message}")


@pytest.mark.parametrize("field, value, message", BAD_TRANSACTION_FIELDS,
                         ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD_TRANSACTION_FIELDS])
def test_bad_transaction_field_refuses_the_whole_file_naming_entry_and_field(app, write, loaded, field, value,
                                                                             message):
    accounts = three_accounts()
    accounts[1]["transactions"][1][field] = value
    refused(app, loaded, write(sandbox_file(accounts=accounts)), f"accounts[1].transactions[1].{message}")


def test_missing_and_unknown_fields_are_refused(app, write, loaded):
    accounts = three_accounts()
    del accounts[2]["phone"]
    accounts[2]["pins"] = "1234"
    path = write(sandbox_file(accounts=accounts))
    refused(app, loaded, path, "accounts[2].phone: missing")
    refused(app, loaded, path, "accounts[2].pins: unknown field")


def test_savings_account_type_is_refused_for_maruhachi(app, write, loaded):
    refused(app, loaded, write(sandbox_file("maruhachi", [account(branch="201", type="4")])),
            'accounts[0].type: not an account type of this union ("1")')


def test_unknown_union_is_refused(app, write, loaded):
    refused(app, loaded, write(sandbox_file("nowhere")), "tenant: unknown union (known: amami, maruhachi)")


def test_same_account_twice_in_a_file_is_refused(app, write, loaded):
    refused(app, loaded, write(sandbox_file(accounts=[account(number="26"), account(number="0000026")])),
            "accounts[1]: the same account as accounts[0] (115-1-0000026)")


def test_same_account_in_two_files_of_one_call_is_refused(app, write, loaded):
    paths = [write(sandbox_file(), "first.json"), write(sandbox_file(), "again.json")]
    refused(app, loaded, paths, "again.json: accounts[0]: also in first.json")


def test_file_that_is_not_json_is_refused(app, write, loaded):
    refused(app, loaded, write('{"tenant": "amami", "accounts": [', "broken.json"), "broken.json: not JSON (line 1")


def test_one_bad_file_refuses_every_file_of_the_call(app, write, loaded):
    good = write(sandbox_file(accounts=[account(number="7777777")]), "good.json")
    bad = write(sandbox_file(accounts=[account(pin="12")]), "bad.json")
    refused(app, loaded, [good, bad], "bad.json: accounts[0].pin: not 4 ASCII digits")


def test_failure_while_writing_leaves_nothing_half_loaded(engine_app, write, monkeypatch):
    load(engine_app, write(sandbox_file(accounts=three_accounts()), "before.json"))
    before = snapshot(engine_app)
    real, calls = loader._replace_transactions, []

    def fail_on_third(s, account_id, booked):
        calls.append(account_id)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real(s, account_id, booked)

    monkeypatch.setattr(loader, "_replace_transactions", fail_on_third)
    changed = [account(balance=1, number=a["number"], transactions=[]) for a in three_accounts()]
    result = load(engine_app, write(sandbox_file(accounts=changed + [account(number="5555555")])))
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    assert snapshot(engine_app) == before


def test_pin_hash_uses_the_files_account_key_after_padding(app, write):
    """A PIN loaded for number "26" verifies for the account the customer types as 26 (→ 0000026)."""
    load(app, write(sandbox_file(accounts=[account(number="26", pin="2468")])))
    with app.app_context():
        assert core().check_pin(AccountKey("amami", "115", "1", "0000026"), "2468") is AccountCheck.OK


def test_load_needs_at_least_one_file(app):
    result = app.test_cli_runner().invoke(args=["sandbox", "load"])
    assert result.exit_code != 0
    assert "Missing argument 'FILES...'" in result.output
