"""Every field's rule, once: label, length, character class, normaliser and messages.

The screens' forms (flow/forms.py), the table columns (flow/models.py, corebanking/models.py,
oplog.py, lockout.py, oauth/models.py), the sandbox loader (corebanking/loader.py), the OpenAPI
document (api/openapi.py) and the templates' `maxlength` and hints (a Jinja global `fields`) all
read these specs; none keeps a number of its own. The messages' wording is in messages.py.

Normalisation: customers type on Japanese keyboards. NFKC turns full-width digits, letters and
symbols into ASCII; kana fields additionally become half-width katakana (hiragana and full-width
katakana accepted). Validation afterwards uses ASCII `[0-9]` only: Python's `\\d` and `isdigit()`
would accept `１２３４`.

This module depends on nothing of the app but messages.py, so models and the loader can read it
without importing WTForms or a view.
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Callable, Optional

import jaconv

from . import messages

# --- normalisers: one filter per kind of field ------------------------------------------------

_DASHES = re.compile(r"[\-‐‑‒–—―−ー－ｰ\s]")


def text(value):
    """NFKC + trim. Used by every field."""
    if value is None:
        return None
    return unicodedata.normalize("NFKC", str(value)).strip()


def digits(value):
    """NFKC, then hyphens, long-vowel marks typed as hyphens and spaces removed."""
    value = text(value)
    return _DASHES.sub("", value) if value else value


def half_width_kana(value):
    """Any kana (hiragana, full- or half-width katakana) → half-width katakana; spaces collapsed."""
    value = text(value)
    if not value:
        return value
    value = jaconv.hira2kata(value)
    value = jaconv.z2h(value, kana=True, ascii=True, digit=True)
    return re.sub(r"\s+", " ", value)


# 和暦 (Japanese era) years as people born in them write them: 昭和55, S55, 平成2, 平成元年.
# The first western year of each era; a new era is one line here.
ERAS = {"明治": 1868, "大正": 1912, "昭和": 1926, "平成": 1989, "令和": 2019}
_ERA_LETTERS = {"M": "明治", "T": "大正", "S": "昭和", "H": "平成", "R": "令和"}
_ERA_YEAR = re.compile(r"^(明治|大正|昭和|平成|令和|[MTSHR])\.?(元|[0-9]{1,2})年?$", re.IGNORECASE)


def western_year(value):
    """The birth year as 西暦: 4 digits as typed (full-width too), or a 和暦 year converted
    (昭和55 → 1980, S55 → 1980, 平成元年 → 1989). Anything else is left for the format check."""
    value = digits(value)
    if not value:
        return value
    era = _ERA_YEAR.match(value)
    if era is None:
        return value
    name = _ERA_LETTERS.get(era.group(1).upper(), era.group(1))
    number = 1 if era.group(2) == "元" else int(era.group(2))
    return str(ERAS[name] + number - 1) if number >= 1 else value


# --- the spec ---------------------------------------------------------------------------------

HALF_KANA = re.compile(r"^[\uFF61-\uFF9F ]+$")  # half-width katakana (with its marks) and spaces


@dataclasses.dataclass(frozen=True)
class Spec:
    """One field's rule. `max_length` is also its column's length (characters)."""

    label: str
    normalise: Callable[[Optional[str]], Optional[str]]
    max_length: int
    min_length: int = 1
    pattern: Optional[re.Pattern] = None  # the character class, matched on the normalised value
    message: Optional[str] = None  # when the value does not match `pattern` (or the format check)
    too_long: Optional[str] = None  # when a free-text value is longer than max_length
    hint: str = ""
    typed_max: Optional[int] = None  # <input maxlength> when typing may take more (hyphens); else max_length

    @property
    def maxlength(self) -> int:
        """The `maxlength` of the field's <input>."""
        return self.typed_max or self.max_length

    def accepts(self, value) -> bool:
        """An already normalised value keeps the rule (what the loader checks a sandbox file with)."""
        return (isinstance(value, str) and self.min_length <= len(value) <= self.max_length
                and (self.pattern is None or self.pattern.fullmatch(value) is not None))


def _digits(label: str, length: int, *, at_least: int | None = None, wording: str | None = None,
            hint: str | None = None, example: str | None = None, **extra) -> Spec:
    """ASCII digits only (after normalisation): `length` of them, or `at_least` to `length`."""
    low, high = at_least or length, length
    if wording is not None:
        message = wording.format(n=high)
    elif low == high:
        message = messages.DIGITS_EXACTLY.format(n=high)
    elif high == low + 1:
        message = messages.DIGITS_EITHER.format(low=low, high=high)
    else:
        message = messages.DIGITS_AT_MOST.format(n=high)
    if hint is None:
        hint = (messages.HINT_DIGITS_EXACTLY if low == high else messages.HINT_DIGITS_AT_MOST).format(n=high)
    if example is not None:  # an example beside the field, never a placeholder that looks filled in
        hint = messages.HINT_WITH_EXAMPLE.format(hint=hint, example=example)
    return Spec(label, digits, max_length=high, min_length=low, pattern=re.compile(rf"^[0-9]{{{low},{high}}}$"),
                message=message, hint=hint, **extra)


def _text(label: str, normalise, max_length: int, **extra) -> Spec:
    return Spec(label, normalise, max_length=max_length, too_long=messages.AT_MOST_CHARACTERS.format(n=max_length), **extra)


# ① SOA201 ご利用口座情報入力
BRANCH = _digits("店番", 3, example="001")
ACCOUNT_TYPE = Spec("科目", text, max_length=2)  # the choices are the union's (tenants/<id>.toml)
ACCOUNT_NUMBER = _digits("口座番号", 7, at_least=1, example="1234567")

# ② SOA202 お客様情報入力
NAME_KANA = _text("お名前", half_width_kana, 48, pattern=HALF_KANA, message=messages.HALF_WIDTH_KANA_ONLY,
                  hint=messages.HINT_KANA)
BIRTH_YEAR = dataclasses.replace(
    _digits("生年月日（西暦 年）", 4, wording=messages.YEAR_DIGITS, hint=messages.HINT_BIRTH_YEAR.format(n=4), typed_max=6),
    normalise=western_year)  # 昭和55年 as typed
EARLIEST_BIRTH_YEAR = 1900
PHONE = _digits("電話番号", 11, at_least=10, hint=messages.HINT_DIGITS_NO_HYPHEN,
                typed_max=13)  # 090-1234-5678 as typed
EMAIL = _text("メールアドレス", text, 64, message=messages.EMAIL_FORMAT, hint=messages.HINT_EMAIL)
EMAIL_CONFIRM = dataclasses.replace(EMAIL, label="メールアドレス（確認用）", hint=messages.HINT_EMAIL_CONFIRM)

# ⑤ SOA211 キャッシュカード暗証番号認証
PIN = _digits("キャッシュカードの暗証番号", 4)


# The staff console (webapp/staff): its own fields, with the same one home
STAFF_EMAIL = _text("メールアドレス", text, 254)  # RFC 5321's longest address
TOTP_CODE = _digits("確認コード", 6, hint=messages.HINT_TOTP.format(n=6))  # RFC 6238 as pyotp makes them
STAFF_REASON = _text("理由", text, 100)


def padded_account_number(number: str) -> str:
    """口座番号 as stored and compared everywhere: zero-padded to its full length (123 → 0000123)."""
    return number.zfill(ACCOUNT_NUMBER.max_length)
