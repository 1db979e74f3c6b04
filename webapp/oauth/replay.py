"""The replay cache of one-time JWTs: a DPoP proof (RFC 9449 §11.1) or a client assertion
(RFC 7523 §3 item 7) whose `jti` was seen before is refused.

`first_use` INSERTs a row keyed by the SHA-256 of (kind, who signed, jti) under a unique index, in a
transaction of its own committed at once: of parallel requests carrying the same JWT exactly one
inserts, whatever becomes of the request that carried it. Rows are kept until the JWT could not be
accepted anyway (its `exp`, or the proof's `iat` window), then deleted by later inserts.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from .. import clock, db
from .models import SeenJti


def first_use(kind: str, issuer: str, jti: str, keep_until: dt.datetime) -> bool:
    """True the first time this (kind, issuer, jti) is seen; False for a replay."""
    key = hashlib.sha256(f"{kind}\x00{issuer}\x00{jti}".encode()).hexdigest()
    try:
        with db.engine().begin() as conn:
            conn.execute(delete(SeenJti).where(SeenJti.expires_at < clock.now()))
            conn.execute(insert(SeenJti).values(key_hash=key, expires_at=keep_until))
    except IntegrityError:
        return False
    return True
