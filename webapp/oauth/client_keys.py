"""A FAPI 2.0 client's public keys (its JWK Set), for verifying its `private_key_jwt` assertions.

Registered either by value (`clients add --jwks-file`, kept in `OAuthClient.jwks`) or by reference
(`--jwks-uri`): then fetched over https and kept for JWKS_CACHE_SECONDS (300 s) per process, so a
key rotation at the client is seen within minutes. The fetch is the webhooks' guarded call
(webhooks/post.py `fetch`): only to a public address, connected to the very address checked (no
DNS rebinding), no redirects, at most MAX_BYTES, the whole answer within JWKS_FETCH_TIMEOUT (5 s),
so a client's server can neither reach inside the union's network through us nor hold a token
request for long; a failed fetch is tried again only after JWKS_RETRY_SECONDS (10 s). A set that
cannot be had or read is no key at all: the client's authentication fails (401 invalid_client),
never a 500.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from typing import TYPE_CHECKING

from flask import current_app

from ..webhooks.post import CallFailed, CallRefused, fetch
from .models import OAuthClient

if TYPE_CHECKING:  # joserfc is imported where a key set is read: only FAPI 2.0 clients have one
    from joserfc.jwk import KeySet

MIN_RSA_BITS = 2048  # FAPI 2.0 §5.4.1 item 2 (the clients' keys and DPoP keys alike)
# what the clients' keys may sign their assertions with (FAPI 2.0 §5.4): here, not in client_assertion.py,
# so the metadata can name them without importing joserfc
ASSERTION_ALGORITHMS = ["ES256", "PS256"]
DEFAULT_TIMEOUT = 5.0
DEFAULT_CACHE_SECONDS = 300
DEFAULT_RETRY_SECONDS = 10
MAX_BYTES = 64 * 1024

_cache: dict[str, tuple[float, dict | None, str | None]] = {}  # uri → (when, the set or None, why not)
_lock = threading.Lock()


class KeysUnavailable(Exception):
    """The client's JWK Set could not be had or is not a JWK Set."""


def weak_rsa_key(jwk) -> bool:
    """An RSA JWK whose modulus is shorter than MIN_RSA_BITS (read before joserfc imports it, which
    would only warn)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return False
    n = jwk.get("n")
    try:
        modulus = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)) if isinstance(n, str) else b""
    except ValueError:
        return True
    return int.from_bytes(modulus, "big").bit_length() < MIN_RSA_BITS


def public_key_set(data) -> KeySet:
    """A JWK Set of public keys only; KeysUnavailable for anything else (a private key included)."""
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise KeysUnavailable("not a JWK Set")
    if any(weak_rsa_key(jwk) for jwk in data["keys"]):
        raise KeysUnavailable(f"an RSA key of fewer than {MIN_RSA_BITS} bits")
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
    """The JWK Set document at `uri`, from the cache while it is fresh. A failed fetch is remembered
    for JWKS_RETRY_SECONDS: requests naming a client whose server is down (anyone can send an
    unsigned assertion naming it) do not each wait out a fetch of their own."""
    config = current_app.config
    now = time.monotonic()
    with _lock:
        hit = _cache.get(uri)
    if hit is not None:
        at, data, error = hit
        if data is not None and now - at < float(config.get("JWKS_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)):
            return data
        if data is None and now - at < float(config.get("JWKS_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)):
            raise KeysUnavailable(f"fetching {uri} failed a moment ago: {error}")
    timeout = float(config.get("JWKS_FETCH_TIMEOUT", DEFAULT_TIMEOUT))
    try:
        body = fetch(uri, "application/jwk-set+json, application/json", sandbox=bool(config["SANDBOX"]),
                     timeout=timeout, max_bytes=MAX_BYTES)
        data = json.loads(body)
    except (CallRefused, CallFailed, ValueError, RecursionError) as e:
        error = f"{e.__class__.__name__}: {e}"[:300]
        with _lock:
            _cache[uri] = (now, None, error)
        raise KeysUnavailable(f"fetching {uri}: {error}") from e
    with _lock:
        _cache[uri] = (now, data, None)
    return data


def forget(uri: str | None = None) -> None:
    """Drop the cached set of `uri` (every set when None)."""
    with _lock:
        if uri is None:
            _cache.clear()
        else:
            _cache.pop(uri, None)
