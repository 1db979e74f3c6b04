"""DPoP proofs (RFC 9449), checked at the token endpoint and by the account API.

A proof is a JWT in the one `DPoP` header of the request, and is good only when (§4.3):
- its header has `typ` "dpop+jwt", an `alg` of ALGORITHMS (FAPI 2.0 §5.4: PS256 or ES256; never
  `none`, never a MAC) and a `jwk` that is a public key (RSA: 2048 bits or more, §5.4.1), and the
  signature verifies with that key;
- its claims have `jti`, `htm` (the request's method), `htu` (the request's URL as the client sent
  it: `BASE_URL` + path, since TLS ends before this app; query and fragment ignored, scheme and
  host compared case-insensitively, a default port dropped) and `iat` within IAT_WINDOW seconds
  of now, either side;
- its `jti` has not been seen before from that key (`replay.first_use`);
- with an access token (the account API): `ath` is the token's SHA-256, base64url;
- where the server asks for nonces (the token endpoint, §8): `nonce` is one it issued, at most
  NONCE_SECONDS ago. Nonces are stateless — an HMAC of the union and the time with SECRET_KEY — so
  any worker can check any other's.
What it proves is the key's JWK SHA-256 thumbprint (`jkt`, RFC 7638), which the tokens are bound to.
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import math
import struct
from urllib.parse import urlsplit, urlunsplit

from flask import current_app

from .. import clock
from . import replay
from .client_keys import MIN_RSA_BITS, weak_rsa_key

ALGORITHMS = ["ES256", "PS256"]
IAT_WINDOW = 60
NONCE_SECONDS = 300
MAX_PROOF_LENGTH = 8000

# joserfc (and cryptography under it, ~10 MB of a worker's memory) is imported where a proof is
# read, not with this module: the token endpoint and the API import it for every client, and most
# send no proof. Nonces need only hmac.


@functools.cache
def _registry():
    from joserfc.jws import JWSRegistry

    class ProofRegistry(JWSRegistry):
        # a proof's header carries its public key: a 2048-bit RSA JWK (PS256) alone is ~700 bytes of
        # base64url, over joserfc's default 512; MAX_PROOF_LENGTH still bounds the whole proof
        max_header_length = 3000

    # header parameters a proof may carry beyond typ, alg, jwk are ignored (RFC 9449 §4.2), not refused
    return ProofRegistry(algorithms=ALGORITHMS, strict_check_header=False)


class ProofError(Exception):
    """A missing or bad proof: `error` is the code to answer with (RFC 9449 §12.2, §8)."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof"):
        super().__init__(description)
        self.error, self.description = error, description


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token_hash(token: str) -> str:
    return b64url(hashlib.sha256(token.encode()).digest())


def normalized_url(url: str) -> str:
    """Scheme and host lower case, default port dropped, no query or fragment (RFC 9449 §4.3 item 9)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    scheme = parts.scheme.lower()
    if port is not None and not (scheme == "https" and port == 443 or scheme == "http" and port == 80):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def public_url(path: str) -> str:
    return normalized_url(current_app.config["BASE_URL"] + path)


def _key_from_header(header: dict):
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, RSAKey, import_key

    data = header.get("jwk")
    if not isinstance(data, dict):
        raise ProofError("The DPoP proof has no 'jwk' header.")
    if weak_rsa_key(data):
        raise ProofError(f"The DPoP proof's RSA key must have at least {MIN_RSA_BITS} bits.")
    try:
        key = import_key(data)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProofError("The DPoP proof's 'jwk' is not a usable key.") from None
    if not isinstance(key, (ECKey, RSAKey)) or key.is_private:
        raise ProofError("The DPoP proof's 'jwk' must be an EC or RSA public key.")
    return key


def verify(headers: list[str], method: str, url: str, *, access_token: str | None = None,
           nonce_for: str | None = None) -> str:
    """The jkt the request's DPoP proof proves, or ProofError. `headers` are the request's DPoP
    header values; `nonce_for` (the union) when the proof must carry a nonce issued here."""
    from joserfc import jws, jwt
    from joserfc.errors import JoseError

    if len(headers) != 1:
        raise ProofError("Exactly one DPoP header is required.")
    proof = headers[0].strip()
    if not proof or len(proof) > MAX_PROOF_LENGTH:
        raise ProofError("The DPoP header is empty or too long.")
    try:
        header = jws.extract_compact(proof.encode(), registry=_registry()).headers()
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError):  # RecursionError: `[[[[…`
        raise ProofError("The DPoP proof is not a JWT.") from None
    if header.get("typ") != "dpop+jwt":
        raise ProofError("The DPoP proof's 'typ' must be dpop+jwt.")
    if header.get("alg") not in ALGORITHMS:
        raise ProofError("The DPoP proof's 'alg' must be one of " + " ".join(ALGORITHMS) + ".")
    key = _key_from_header(header)
    try:
        claims = jwt.decode(proof, key, algorithms=ALGORITHMS, registry=_registry()).claims
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError):
        raise ProofError("The DPoP proof's signature does not verify.") from None
    _check_claims(claims, method, url)
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise ProofError("The DPoP proof's 'ath' does not match the access token.")
    if nonce_for is not None and not nonce_is_valid(claims.get("nonce"), nonce_for):
        raise ProofError("A DPoP nonce from this server is required.", error="use_dpop_nonce")
    jkt = key.thumbprint()
    keep_until = clock.now() + dt.timedelta(seconds=2 * IAT_WINDOW)
    if not replay.first_use("dpop", jkt, claims["jti"], keep_until):
        raise ProofError("The DPoP proof's 'jti' was used before.")
    return jkt


def _check_claims(claims: dict, method: str, url: str) -> None:
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise ProofError("The DPoP proof needs a 'jti' (8 to 200 characters).")
    if htm != method:
        raise ProofError("The DPoP proof's 'htm' does not match the request's method.")
    if not isinstance(htu, str) or not _same_url(htu, url):
        raise ProofError("The DPoP proof's 'htu' does not match the request's URL.")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool) or not math.isfinite(iat):
        raise ProofError("The DPoP proof needs a numeric 'iat'.")
    if abs(clock.now().timestamp() - iat) > IAT_WINDOW:
        raise ProofError("The DPoP proof's 'iat' is too far from the server's time.")


def _same_url(htu: str, url: str) -> bool:
    try:
        if urlsplit(htu).username is not None:  # normalized_url keeps only the host: userinfo is no part of ours
            return False
        return normalized_url(htu) == normalized_url(url)
    except ValueError:  # a port that is no number, a broken IPv6 literal
        return False


def _nonce_mac(tenant: str, issued: int) -> bytes:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"renkei/dpop-nonce/v1|{tenant}|{issued}".encode(), hashlib.sha256).digest()[:16]


def new_nonce(tenant: str) -> str:
    issued = int(clock.now().timestamp())
    return b64url(struct.pack(">Q", issued) + _nonce_mac(tenant, issued))


def nonce_is_valid(nonce, tenant: str) -> bool:
    if not isinstance(nonce, str) or len(nonce) != 32:
        return False
    try:
        raw = base64.urlsafe_b64decode(nonce + "==")
    except ValueError:
        return False
    if len(raw) != 24:
        return False
    issued = struct.unpack(">Q", raw[:8])[0]
    age = clock.now().timestamp() - issued
    return -5 <= age <= NONCE_SECONDS and hmac.compare_digest(raw[8:], _nonce_mac(tenant, issued))
