"""Each union's key for signing its events (ES256), made once and kept in the database.

All workers and hosts share it through the `signing_key` table, and it survives restarts. The
private JWK is stored only encrypted (JWE `dir` + `A256GCM`) under a key derived from
FLASK_SECRET_KEY, so a copy of the database alone cannot sign. The first worker to need a key makes
it (INSERT … ON CONFLICT DO NOTHING on the union and the secret's id; a parallel loser reads the
winner's). A new FLASK_SECRET_KEY makes a new key; every public key stays in the JWKS at
`{issuer}/jwks.json`, so events signed before the rotation still verify.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from typing import TYPE_CHECKING

from flask import current_app
from sqlmodel import Session, select

from .. import clock, db
from .models import SigningKey

# joserfc (and cryptography, ~10 MB of a worker's memory) is imported where a key is made or
# opened: the webhooks worker signs, while a web worker only serves the stored public keys.
if TYPE_CHECKING:
    from joserfc.jwk import ECKey, OctKey

ALGORITHM = "ES256"
_WRAP = {"alg": "dir", "enc": "A256GCM"}


def _derived(purpose: bytes) -> bytes:
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), b"renkei/webhooks/" + purpose,
                    hashlib.sha256).digest()


def _secret_id() -> str:
    return _derived(b"secret-id").hex()[:32]


def _wrapping_key() -> OctKey:
    from joserfc.jwk import OctKey

    return OctKey.import_key(_derived(b"key-wrap"))


def _current(s: Session, tenant: str) -> SigningKey | None:
    return s.exec(select(SigningKey).where(SigningKey.tenant == tenant,
                                           SigningKey.secret_id == _secret_id())).first()


def _create(s: Session, tenant: str) -> None:
    from joserfc import jwe
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", auto_kid=True)
    public = {**key.as_dict(private=False), "use": "sig", "alg": ALGORITHM}
    private = jwe.encrypt_compact(_WRAP, json.dumps(key.as_dict(private=True)).encode(), _wrapping_key())
    db.insert_or_ignore(s, SigningKey.__table__,
                        dict(tenant=tenant, secret_id=_secret_id(), kid=key.kid, public_jwk=public,
                             private_jwk_encrypted=private, created_at=clock.now()),
                        ["tenant", "secret_id"])
    s.commit()


def _current_or_new(tenant: str) -> SigningKey:
    with Session(db.engine(), expire_on_commit=False) as s:
        row = _current(s, tenant)
        if row is None:
            _create(s, tenant)
            row = _current(s, tenant)
        return row


def signing_key(tenant: str) -> ECKey:
    """The union's private key (its `kid` set), made on first use."""
    from joserfc import jwe
    from joserfc.jwk import ECKey

    row = _current_or_new(tenant)
    plaintext = jwe.decrypt_compact(row.private_jwk_encrypted, _wrapping_key()).plaintext
    return ECKey.import_key(json.loads(plaintext), {"kid": row.kid})


def public_jwks(tenant: str) -> dict:
    """The union's JWK Set: the current key (made now if need be) and those of earlier secrets."""
    _current_or_new(tenant)
    with Session(db.engine()) as s:
        rows = s.exec(select(SigningKey).where(SigningKey.tenant == tenant).order_by(SigningKey.id.desc()))
        return {"keys": [dict(row.public_jwk) for row in rows]}
