"""One normalisation filter for every field: customers type on Japanese keyboards.

NFKC turns full-width digits, letters and symbols into ASCII; kana fields additionally become
half-width katakana (hiragana and full-width katakana accepted). Validation afterwards uses ASCII
`[0-9]` only: Python's `\\d` and `isdigit()` would accept `１２３４`.
"""
from __future__ import annotations

import re
import unicodedata

import jaconv

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
