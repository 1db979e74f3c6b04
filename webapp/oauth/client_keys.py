"""A FAPI 2.0 client's public keys (its JWK Set), for verifying its `private_key_jwt` assertions.

Registered either by value (`clients add --jwks-file`, kept in `OAuthClient.jwks`) or by reference
(`--jwks-uri`): then fetched over https with a timeout (JWKS_FETCH_TIMEOUT, 5 s) and kept for
JWKS_CACHE_SECONDS (300 s) per process, so a key rotation at the client is seen within minutes and
a slow client server never holds a token request for long. A set that cannot be had or read is
no key at all: the client's authentication fails (401 invalid_client), never a 500.
"""
from __future__ import annotations

import threading
import time

import requests
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .models import OAuthClient

DEFAULT_TIMEOUT = 5.0
DEFAULT_CACHE_SECONDS = 300
MAX_BYTES = 64 * 1024

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


class KeysUnavailable(Exception):
    """The client's JWK Set could not be had or is not a JWK Set."""


def public_key_set(data) -> KeySet:
    """A JWK Set of public keys only; KeysUnavailable for anything else (a private key included)."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise KeysUnavailable("not a JWK Set")
    try:
        keys = KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise KeysUnavailable(str(e)) from e
    if any(key.is_private for key in keys.keys):
        raise KeysUnavailable("a JWK Set of public keys is expected, it holds a private key")
    return keys


def key_set(client: OAuthClient) -> KeySet:
    if client.jwks is not None:
        return public_key_set(client.jwks)
    if client.jwks_uri:
        return public_key_set(_fetched(client.jwks_uri))
    raise KeysUnavailable("no JWK Set registered")


def _fetched(uri: str) -> dict:
    ttl = float(current_app.config.get("JWKS_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
    now = time.monotonic()
    with _lock:
        hit = _cache.get(uri)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    timeout = float(current_app.config.get("JWKS_FETCH_TIMEOUT", DEFAULT_TIMEOUT))
    try:
        response = requests.get(uri, timeout=timeout, allow_redirects=False,
                                headers={"Accept": "application/jwk-set+json, application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_BYTES:
            raise KeysUnavailable("JWK Set too large")
        data = response.json()
    except (requests.RequestException, ValueError) as e:
        raise KeysUnavailable(f"fetching {uri}: {e.__class__.__name__}") from e
    with _lock:
        _cache[uri] = (now, data)
    return data


def forget(uri: str | None = None) -> None:
    """Drop the cached set of `uri` (every set when None)."""
    with _lock:
        if uri is None:
            _cache.clear()
        else:
            _cache.pop(uri, None)
