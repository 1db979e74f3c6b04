"""Opaque identifiers handed to fintech apps: `accountId` and `nextItemKey`.

- accountId = base64url(HMAC-SHA256(k, tenant|client_id|branch|type|number))[:128 bits]:
  stable for one app and one account (a re-consent gives the app the same id), unrelated between
  two apps (no cross-app correlation), not derivable without the server key, and carrying no
  account number. k is derived from API_ID_KEY (default SECRET_KEY): rotating it changes every id.
- nextItemKey = base64url(version, dateFrom, dateTo, last (date, seq) returned, MAC): the page's
  position in the newest-first order, plus the window it was issued for. Signed and bound to the
  union and accountId, so a key cannot be forged, edited or used on another account.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import re
import struct

from flask import current_app

from ..corebanking import AccountKey

ACCOUNT_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_KEY_FORMAT = ">BIIIQ"  # version, dateFrom, dateTo, last date (ordinals), last seq
_KEY_VERSION = 1
_MAC_BYTES = 16


def _key(purpose: bytes) -> bytes:
    config = current_app._get_current_object().config  # every API call: one context lookup
    return _derived_key(str(config.get("API_ID_KEY") or config["SECRET_KEY"]), purpose)


@functools.lru_cache(maxsize=16)
def _derived_key(secret: str, purpose: bytes) -> bytes:
    """The purpose's key, derived once per secret (it was derived on every call); a new secret
    (a rotation) derives new keys at once."""
    return hmac.new(secret.encode(), b"renkei/api/" + purpose, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def account_id(client_id: str, key: AccountKey) -> str:
    return _account_id(_key(b"account-id/v1"), client_id, key)


@functools.lru_cache(maxsize=1024)
def _account_id(mac_key: bytes, client_id: str, key: AccountKey) -> str:
    """Kept per (key, client, account): an app polls the same account on a schedule, and each of its
    calls made this MAC again. A new secret is a new `mac_key`, so a rotation is seen at once."""
    message = f"{key.tenant}|{client_id}|{key.branch}|{key.account_type}|{key.number}".encode()
    return _b64(hmac.new(mac_key, message, hashlib.sha256).digest()[:16])


def same_account_id(given: str, client_id: str, key: AccountKey) -> bool:
    return hmac.compare_digest(given.encode(), account_id(client_id, key).encode())


@dataclasses.dataclass(frozen=True)
class PagePosition:
    date_from: dt.date
    date_to: dt.date
    last: tuple[dt.date, int]  # (date, seq) of the last row of the page before


def _mac(tenant: str, acct_id: str, payload: bytes) -> bytes:
    return hmac.new(_key(b"next-item-key/v1"), tenant.encode() + b"|" + acct_id.encode() + b"|" + payload,
                    hashlib.sha256).digest()[:_MAC_BYTES]


def encode_next(tenant: str, acct_id: str, position: PagePosition) -> str:
    last_date, last_seq = position.last
    payload = struct.pack(_KEY_FORMAT, _KEY_VERSION, position.date_from.toordinal(),
                          position.date_to.toordinal(), last_date.toordinal(), last_seq)
    return _b64(payload + _mac(tenant, acct_id, payload))


def decode_next(tenant: str, acct_id: str, value: str) -> PagePosition | None:
    """The position a key stands for, or None when it is not one of ours for this account."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    size = struct.calcsize(_KEY_FORMAT)
    if len(raw) != size + _MAC_BYTES:
        return None
    payload, mac = raw[:size], raw[size:]
    if not hmac.compare_digest(mac, _mac(tenant, acct_id, payload)):
        return None
    version, date_from, date_to, last_date, last_seq = struct.unpack(_KEY_FORMAT, payload)
    if version != _KEY_VERSION:
        return None
    try:
        return PagePosition(dt.date.fromordinal(date_from), dt.date.fromordinal(date_to),
                            (dt.date.fromordinal(last_date), last_seq))
    except (ValueError, OverflowError):
        return None
