"""`private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9) for FAPI 2.0
clients: Authlib's `JWTBearerClientAssertion` (joserfc underneath), with FAPI 2.0's rules.

The assertion is a JWT the client signed with a key of its registered JWK Set, and is good only when:
- its `alg` is one of ALGORITHMS (FAPI 2.0 §5.4: PS256 or ES256);
- `iss` and `sub` are the client's id; `aud` is the union's issuer identifier, as a single string
  (FAPI 2.0 §5.3.2.1 item 8: not the token or PAR endpoint's URL, not an array);
- `exp` has not passed and is at most MAX_LIFETIME ahead; `iat`/`nbf`, when present, are not more
  than LEEWAY seconds ahead;
- its `jti` has not been seen before from that client (`replay.first_use`, kept until `exp`), at
  any endpoint;
- a `client_id` sent beside it names the same client (RFC 7521 §4.2).
Anything else is 401/400 `invalid_client`.
"""
from __future__ import annotations

import datetime as dt
import math

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import g
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .. import clock
from . import issuer, replay
from .client_keys import ASSERTION_ALGORITHMS as ALGORITHMS
from .client_keys import KeysUnavailable, key_set

METHOD = "private_key_jwt"
LEEWAY = 60
MAX_LIFETIME = 3600
MAX_ASSERTION_LENGTH = 8000


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = METHOD

    def __init__(self):
        super().__init__(validate_jti=True, leeway=LEEWAY)

    def __call__(self, query_client, request):
        assertion = request.form.get("client_assertion")
        if isinstance(assertion, str) and len(assertion) > MAX_ASSERTION_LENGTH:
            raise InvalidClientError(description="The client assertion is too long.")
        try:
            client = super().__call__(query_client, request)
        except RecursionError:  # Authlib reads the claims with json.loads: a payload of `[[[[…`
            raise InvalidClientError(description="The client assertion is not a JWT.") from None
        if client is not None and request.form.get("client_id") not in (None, client.client_id):
            # RFC 7521 §4.2: a client_id beside the assertion MUST name the client its `sub` names
            raise InvalidClientError(description="'client_id' is not the client of the assertion.")
        return client

    def get_audiences(self):
        return [issuer(g.tenant.id)]

    def resolve_client_public_key(self, client):
        try:
            return key_set(client.row)
        except KeysUnavailable:
            raise InvalidClientError(description="The client's JWK Set is not available.") from None

    def process_assertion_claims(self, assertion, resolve_key):
        claims = _verified_claims(assertion, resolve_key)
        if not isinstance(claims.get("aud"), str):
            raise InvalidClientError(description="The client assertion's 'aud' must be the issuer, as a string.")
        self.verify_claims(claims)
        return claims

    def verify_claims(self, claims):
        """Authlib's checks, against the app's clock (`clock.now`, which tests move) rather than joserfc's."""
        now = clock.now().timestamp()
        if claims.get("iss") != claims.get("sub"):
            raise InvalidClientError(description="The client assertion's 'iss' and 'sub' must both be the client_id.")
        if claims.get("aud") not in self.get_audiences():
            raise InvalidClientError(description="The client assertion's 'aud' must be the issuer.")
        exp = claims.get("exp")
        if not _is_time(exp) or exp + LEEWAY < now:
            raise InvalidClientError(description="The client assertion has no 'exp' or has expired.")
        if exp - now > MAX_LIFETIME:
            raise InvalidClientError(description="The client assertion's 'exp' is too far ahead.")
        for name in ("iat", "nbf"):
            value = claims.get(name)
            if value is not None and (not _is_time(value) or value - LEEWAY > now):
                raise InvalidClientError(description=f"The client assertion's '{name}' is in the future.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
            raise InvalidClientError(description="The client assertion needs a 'jti'.")
        if not self.validate_jti(claims, jti):
            raise InvalidClientError(description="The client assertion's 'jti' was used before.")

    def validate_jti(self, claims, jti):
        keep_until = dt.datetime.fromtimestamp(claims["exp"] + LEEWAY, dt.timezone.utc)
        return replay.first_use("client_assertion", claims["sub"], jti, keep_until)


def _is_time(value) -> bool:
    """A number of seconds: not a bool, and not NaN or Infinity (which JSON parsing lets through)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _verified_claims(assertion: str, keys: KeySet) -> dict:
    """The claims of an assertion signed by one of `keys`: the one its `kid` names, or, without a
    `kid`, any of them."""
    try:
        has_kid = "kid" in jws.extract_compact(assertion.encode()).headers()
    except (JoseError, ValueError, TypeError, UnicodeError):
        has_kid = False
    for candidate in [keys] if has_kid else keys.keys:
        try:
            return jwt.decode(assertion, candidate, algorithms=ALGORITHMS).claims
        except (JoseError, ValueError, TypeError, UnicodeError):
            continue
    raise InvalidClientError(description="The client assertion's signature does not verify with the client's "
                                         "keys (PS256 or ES256).")
