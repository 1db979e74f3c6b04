"""One home for every rule and every customer-facing text (issue 10).

A field's rule is its spec in webapp/fields.py; a customer-facing text is in webapp/messages.py;
a union's facts (account types, 認可期間, lock threshold) are in its tenants/<id>.toml. These tests
fail when a copy reappears elsewhere, and check that every reader (form, table column, sandbox
loader, OpenAPI document, rendered screen) agrees with the spec.
"""
from __future__ import annotations

import pathlib
import re

import pytest

from conftest import text_of
from webapp import fields, messages
from webapp.corebanking import loader
from webapp.corebanking.models import SandboxAccount
from webapp.fields import (ACCOUNT_NUMBER, ACCOUNT_TYPE, BIRTH_YEAR, BRANCH, EMAIL, EMAIL_CONFIRM, NAME_KANA, PHONE,
                           PIN)
from webapp.flow import forms
from webapp.flow.models import Flow
from webapp.lockout import AccountLock
from webapp.oauth.models import Consent
from webapp.oplog import OperationLog
from webapp.tenants import load_tenants

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOMES = {"webapp/fields.py", "webapp/messages.py"}


def sources():
    """(relative path, text) of every code and template file, the homes aside."""
    for folder, patterns in (("webapp", ("*.py",)), ("templates", ("*.html", "*.txt"))):
        for pattern in patterns:
            for path in sorted((ROOT / folder).rglob(pattern)):
                name = path.relative_to(ROOT).as_posix()
                if name not in HOMES:
                    yield name, path.read_text(encoding="utf-8")


# A copy of a field rule or of a union's fact, and why it must not stand outside its home.
COPIES = [
    (r"zfill\(", "口座番号 padding: fields.padded_account_number()"),
    (r"\b(NAME_MAX|EMAIL_MAX|PHONE_LENGTHS|PIN_LEN|BRANCH_LEN|ACCOUNT_NUMBER_LEN)\b", "a second home for a field length"),
    (r"\b48\b", "the kana name length: fields.NAME_KANA.max_length"),
    (r"\b(branch|account_type|account_number|number|name_kana|email|phone): .*(max_length=\d|String\(\d)",
     "a field's column length: fields.<FIELD>.max_length"),
    (r"""maxlength=["']?\d""", "an <input maxlength>: fields.<FIELD>.maxlength"),
    (r"半角|文字以内|桁|入力して下さい", "a field's hint or message: messages.py"),
    (r"flow\.forms import", "the loader/models reading WTForms (lint-imports' no-forms-below-views says the rest)"),
    (r"\b30 days\b|30日|consent_days\", 30|\"lock_threshold\", 5", "a union's 認可期間 / lock threshold: tenants/<id>.toml"),
    (r"普通預金|貯蓄預金", "a union's account types: tenants/<id>.toml"),
    (r"120 ?(s\b|秒|seconds)", "the call window: PHONE_AUTH_WINDOW_SECONDS (config.py)"),
    (r"AGREE_LABEL = |AGREE_REQUIRED = |CLIENT_GONE = |WAITING_TEXT = |CALL_SEEN = |UNKNOWN_CLIENT = ",
     "a customer message defined outside messages.py"),
]
# demo data describes demo customers (their account types, branch 120): not rules
NOT_RULES = {"webapp/demo/generate.py", "webapp/demo/__init__.py"}


@pytest.mark.parametrize("pattern, home", COPIES, ids=[home for _, home in COPIES])
def test_no_copy_of_a_rule_outside_its_home(pattern, home):
    found = [f"{name}:{n}: {line.strip()}"
             for name, text in sources() if name not in NOT_RULES
             for n, line in enumerate(text.splitlines(), start=1) if re.search(pattern, line)]
    assert not found, f"{home}; copies:\n" + "\n".join(found)


def test_every_field_message_and_hint_quotes_its_specs_numbers():
    assert BRANCH.message == "半角数字3桁で入力して下さい。" and BRANCH.hint == "(半角数字3桁) (例) 001"
    assert ACCOUNT_NUMBER.message == "半角数字7桁以内で入力して下さい。"
    assert ACCOUNT_NUMBER.hint == "(半角数字7桁以内) (例) 1234567"  # examples beside the field, not placeholders
    assert NAME_KANA.too_long == "48文字以内で入力して下さい。" and NAME_KANA.message == "半角カタカナで入力して下さい。"
    assert EMAIL.too_long == EMAIL_CONFIRM.too_long == "64文字以内で入力して下さい。"
    assert PHONE.message == "半角数字10桁または11桁で入力して下さい。"
    assert BIRTH_YEAR.message == "西暦（半角数字4桁）、または昭和55のような和暦で入力して下さい。"
    assert PIN.message == "半角数字4桁で入力して下さい。" and PIN.hint == "(半角数字4桁)"
    assert messages.AGREE_REQUIRED == ("「許可する」の前に、API利用規定をご確認のうえ「当信用組合のAPI利用規定を確認し、"
                                       "同意します。」にチェックを入れて下さい。")


# --- every reader agrees with the spec ---------------------------------------------------------

FORM_FIELDS = [
    (forms.AccountForm, "branch", BRANCH), (forms.AccountForm, "account_number", ACCOUNT_NUMBER),
    (forms.CustomerForm, "name_kana", NAME_KANA), (forms.CustomerForm, "birth_year", BIRTH_YEAR),
    (forms.CustomerForm, "phone", PHONE), (forms.CustomerForm, "email", EMAIL),
    (forms.CustomerForm, "email_confirm", EMAIL_CONFIRM), (forms.PinForm, "pin", PIN),
]


@pytest.mark.parametrize("form, name, spec", FORM_FIELDS, ids=[f"{f.__name__}.{n}" for f, n, _ in FORM_FIELDS])
def test_form_field_is_built_from_its_spec(form, name, spec):
    unbound = getattr(form, name)
    assert unbound.args[0] == spec.label
    assert unbound.kwargs["filters"] == [spec.normalise]
    validators = unbound.kwargs["validators"]
    lengths = [v.max for v in validators if type(v).__name__ == "Length"]
    assert lengths == ([spec.max_length] if spec.too_long else [])
    patterns = [v.regex for v in validators if type(v).__name__ == "Regexp"]
    assert patterns == ([spec.pattern] if spec.pattern else [])


def test_digit_fields_take_exactly_their_lengths():
    for spec in (BRANCH, ACCOUNT_NUMBER, BIRTH_YEAR, PHONE, PIN):
        assert spec.accepts("1" * spec.max_length) and spec.accepts("1" * spec.min_length)
        assert not spec.accepts("1" * (spec.max_length + 1))
        assert not spec.accepts("1" * (spec.min_length - 1))
        assert not spec.accepts("１" * spec.max_length)  # full-width digits only after normalisation
        assert spec.normalise("１" * spec.max_length) == "1" * spec.max_length
    assert fields.padded_account_number("123") == "0" * (ACCOUNT_NUMBER.max_length - 3) + "123"


COLUMNS = [
    (Flow, "branch", BRANCH), (Flow, "account_type", ACCOUNT_TYPE), (Flow, "account_number", ACCOUNT_NUMBER),
    (Flow, "name_kana", NAME_KANA), (Flow, "email", EMAIL),
    (SandboxAccount, "branch", BRANCH), (SandboxAccount, "account_type", ACCOUNT_TYPE),
    (SandboxAccount, "number", ACCOUNT_NUMBER), (SandboxAccount, "name_kana", NAME_KANA),
    (SandboxAccount, "phone", PHONE),
    (OperationLog, "branch", BRANCH), (OperationLog, "account_type", ACCOUNT_TYPE),
    (OperationLog, "account_number", ACCOUNT_NUMBER), (OperationLog, "name_kana", NAME_KANA),
    (AccountLock, "branch", BRANCH), (AccountLock, "account_type", ACCOUNT_TYPE), (AccountLock, "number", ACCOUNT_NUMBER),
    (Consent, "branch", BRANCH), (Consent, "account_type", ACCOUNT_TYPE), (Consent, "account_number", ACCOUNT_NUMBER),
]


@pytest.mark.parametrize("model, column, spec", COLUMNS, ids=[f"{m.__tablename__}.{c}" for m, c, _ in COLUMNS])
def test_column_length_is_the_fields_length(model, column, spec):
    kind = model.__table__.c[column].type
    assert kind.length == spec.max_length


def _sandbox_file(**account) -> dict:
    entry = dict(branch="115", type="1", number="1100026", name_kana="ﾃﾞｰﾀ ﾀﾛｳ", birth_date="1980-01-01",
                 phone="09011113333", pin="1234", cash_card=True, status="active", balance=0)
    entry.update(account)
    return {"tenant": "amami", "accounts": [entry]}


def _loader_problems(app, **account) -> list[str]:
    try:
        loader.check(_sandbox_file(**account), app.extensions["tenants"])
    except loader.LoadError as e:
        return e.problems
    return []


def test_sandbox_loader_keeps_the_screens_rules(app):
    assert _loader_problems(app, name_kana="ｱ" * NAME_KANA.max_length) == []
    assert _loader_problems(app, name_kana="ｱ" * (NAME_KANA.max_length + 1)) == [
        f"accounts[0].name_kana: longer than {NAME_KANA.max_length} characters"]
    assert _loader_problems(app, number="1" * (ACCOUNT_NUMBER.max_length + 1))
    assert _loader_problems(app, branch="1" * (BRANCH.max_length + 1))
    assert _loader_problems(app, phone="0" * PHONE.min_length) == []
    assert _loader_problems(app, phone="0" * (PHONE.min_length - 1))
    assert _loader_problems(app, phone="0" * (PHONE.max_length + 1))
    assert _loader_problems(app, pin="1" * (PIN.max_length + 1))
    assert _loader_problems(app, birth_date=f"{fields.EARLIEST_BIRTH_YEAR - 1}-12-31")
    parsed = loader.check(_sandbox_file(number="26"), app.extensions["tenants"])
    assert parsed.accounts[0].number == fields.padded_account_number("26")


def test_openapi_account_schema_matches_the_specs(client):
    account = client.get("/amami/api/v1/openapi.json").get_json()["components"]["schemas"]["Account"]["properties"]
    for name, spec in (("branchNo", BRANCH), ("accountNo", ACCOUNT_NUMBER)):
        assert re.fullmatch(account[name]["pattern"], "1" * spec.max_length)
        assert not re.fullmatch(account[name]["pattern"], "1" * (spec.max_length + 1))
        assert account[name]["description"] == spec.label
    assert account["accountName"]["maxLength"] == NAME_KANA.max_length


def _input_of(html: str, field_id: str) -> str:
    return re.search(rf'<input id="{field_id}"[^>]*>', html).group(0)


def test_screens_show_each_fields_maxlength_and_hint(amami):
    account = text_of(amami.start())
    for name, spec in (("branch", BRANCH), ("account_number", ACCOUNT_NUMBER)):
        assert f'maxlength="{spec.maxlength}"' in _input_of(account, name)
        assert f'<p class="field-hint" id="{name}-hint">{spec.hint}</p>' in account
    amami.account()
    customer = text_of(amami.get("flow/customer"))
    for name, spec in (("name_kana", NAME_KANA), ("birth_year", BIRTH_YEAR), ("phone", PHONE), ("email", EMAIL),
                       ("email_confirm", EMAIL_CONFIRM)):
        assert f'maxlength="{spec.maxlength}"' in _input_of(customer, name)
        assert f'<p class="field-hint" id="{name}-hint">{spec.hint}</p>' in customer
    assert f'maxlength="{PHONE.maxlength}"' in _input_of(customer, "phone") and PHONE.maxlength > PHONE.max_length


def test_a_unions_consent_days_and_lock_threshold_have_no_default_in_code(tmp_path):
    """Each union states them in its own file; a file without them is refused at start-up."""
    source = (ROOT / "webapp/tenants/amami.toml").read_text(encoding="utf-8")
    for key in ("consent_days", "lock_threshold"):
        (tmp_path / "amami.toml").write_text(re.sub(rf"(?m)^{key} = .*\n", "", source), encoding="utf-8")
        with pytest.raises(KeyError, match=key):
            load_tenants(tmp_path)
