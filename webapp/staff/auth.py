"""Staff authentication: a one-time setup link, then password (argon2) and TOTP (RFC 6238) at each login.

Rules this module enforces:
- A setup link is good for 24 hours and once (one atomic UPDATE consumes it). It sets the password
  and enrols the TOTP seed shown beside the QR code: the first code proves the enrolment.
- Each password or code entry first reserves its place with one atomic UPDATE (STAFF_LOGIN_FAILURES
  in a row, default 5, lock the staff account for STAFF_LOCK_SECONDS, default 30 minutes), so parallel
  guesses on any number of processes get no more tries than that. A right password gives its place
  back; a right code clears the count. While locked, even the right answers are refused, unchecked.
- A TOTP code is accepted once: the step it belongs to must be later than the last accepted one.
- A session lives server-side (StaffSession); the browser holds only its random id, in a cookie of
  its own (never in the customer flow's session). It ends after STAFF_IDLE_SECONDS (15 min) without a
  request and STAFF_MAX_SECONDS (8 h) after the login, whichever comes first; the id is new at each
  stage (password, then code).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import and_, case, literal, or_, update
from sqlmodel import select

from .. import clock
from ..db import UTCDateTime
from .models import StaffAccount, StaffSession, StaffSetupToken

if TYPE_CHECKING:
    from argon2 import PasswordHasher

SETUP_LINK_HOURS = 24
TOTP_STEP_SECONDS = 30
STAGE_PASSWORD, STAGE_OK = "password", "ok"
PASSWORD_STAGE_SECONDS = 5 * 60  # between the password and the code

DEFAULTS = {
    "STAFF_IDLE_SECONDS": 15 * 60,
    "STAFF_MAX_SECONDS": 8 * 60 * 60,
    "STAFF_LOGIN_FAILURES": 5,
    "STAFF_LOCK_SECONDS": 30 * 60,
    "STAFF_LOGIN_RATE_LIMIT": "20 per minute",
    # argon2id; RFC 9106's second recommended option (64 MiB, 3 passes). Tests lower the memory.
    "STAFF_ARGON2_MEMORY_KIB": 65536,
}


def setting(name: str):
    return current_app.config.get(name, DEFAULTS[name])


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- passwords ------------------------------------------------------------------------------------

# argon2 and pyotp are imported by the functions that use them: only staff logins need them, and a
# web worker that never sees one does not hold them (issue 13; tests/test_worker_imports.py).

def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher(memory_cost=int(setting("STAFF_ARGON2_MEMORY_KIB")))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """False for a wrong password; with no stored hash, the same work is done against a dummy."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    if stored is None:
        stored = current_app.extensions.setdefault("staff_dummy_hash", hasher.hash(secrets.token_hex(16)))
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# --- TOTP -----------------------------------------------------------------------------------------

def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32(32)  # 160 bits, RFC 4226's recommendation


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def grouped(secret: str) -> str:
    """The seed as staff type it into an authenticator app: groups of four."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def totp_step(secret: str, code: str, at: dt.datetime | None = None) -> int | None:
    """The 30 s step whose code `code` is (this one or a neighbour, for clock drift), or None."""
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    import pyotp

    totp = pyotp.TOTP(secret)
    now = int((at or clock.now()).timestamp())
    current = now // TOTP_STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def accept_totp(s, account: StaffAccount, code: str) -> bool:
    """True when `code` is right and its step was never used: the step is recorded atomically."""
    step = totp_step(account.totp_secret or "", code)
    if step is None:
        return False
    taken = s.execute(update(StaffAccount).where(
        StaffAccount.id == account.id,
        or_(StaffAccount.totp_last_step.is_(None), StaffAccount.totp_last_step < step))
        .values(totp_last_step=step))
    return taken.rowcount == 1


# --- the failure lock -----------------------------------------------------------------------------

def reserve_attempt(s, account: StaffAccount) -> bool:
    """Count this entry as a failure before it is checked; False when the account is locked. Commits."""
    now = clock.now()
    limit = int(setting("STAFF_LOGIN_FAILURES"))
    lock_end = now + dt.timedelta(seconds=int(setting("STAFF_LOCK_SECONDS")))
    now_v, end_v = literal(now, UTCDateTime()), literal(lock_end, UTCDateTime())
    lock_over = and_(StaffAccount.locked_until.is_not(None), StaffAccount.locked_until <= now_v)
    counted = case((lock_over, 1), else_=StaffAccount.failures + 1)
    row = s.execute(
        update(StaffAccount)
        .where(StaffAccount.id == account.id,
               or_(StaffAccount.locked_until.is_(None), StaffAccount.locked_until <= now_v))
        .values(failures=counted, locked_until=case((counted >= limit, end_v), else_=None))
        .returning(StaffAccount.failures)
    ).first()
    s.commit()
    return row is not None


def give_back_attempt(s, account: StaffAccount) -> None:
    """The entry was right (the password): its reserved place is returned, and a lock it took lifted."""
    s.execute(update(StaffAccount).where(StaffAccount.id == account.id, StaffAccount.failures > 0)
              .values(failures=StaffAccount.failures - 1, locked_until=None))


def clear_failures(s, account: StaffAccount) -> None:
    s.execute(update(StaffAccount).where(StaffAccount.id == account.id).values(failures=0, locked_until=None))


def locked_until(s, account_id: int) -> dt.datetime | None:
    value = s.exec(select(StaffAccount.locked_until).where(StaffAccount.id == account_id)).first()
    return value if value is not None and value > clock.now() else None


# --- setup links ----------------------------------------------------------------------------------

def issue_setup_link(s, account: StaffAccount) -> str:
    """A new one-time token for `account` (earlier unused ones stop working); a new TOTP seed. Commits."""
    now = clock.now()
    s.execute(update(StaffSetupToken).where(StaffSetupToken.staff_id == account.id,
                                            StaffSetupToken.used_at.is_(None)).values(used_at=now))
    token = secrets.token_urlsafe(32)
    s.add(StaffSetupToken(staff_id=account.id, token_hash=token_hash(token), created_at=now,
                          expires_at=now + dt.timedelta(hours=SETUP_LINK_HOURS)))
    account.totp_secret = new_totp_secret()
    account.totp_last_step = None
    s.add(account)
    s.commit()
    return token


def find_setup(s, tenant_id: str, token: str) -> tuple[StaffSetupToken, StaffAccount] | None:
    row = s.exec(select(StaffSetupToken, StaffAccount).join(StaffAccount, StaffAccount.id == StaffSetupToken.staff_id)
                 .where(StaffSetupToken.token_hash == token_hash(token))).first()
    if row is None:
        return None
    link, account = row
    if (account.tenant != tenant_id or link.used_at is not None or link.expires_at <= clock.now()
            or account.disabled_at is not None):
        return None
    return link, account


def complete_setup(s, link: StaffSetupToken, account: StaffAccount, password: str, code: str) -> bool:
    """Consume the link, check the first code, set the password. False (nothing changed) if the code
    is wrong or the link was used meanwhile. Commits on success."""
    step = totp_step(account.totp_secret or "", code)
    if step is None:
        return False
    now = clock.now()
    used = s.execute(update(StaffSetupToken).where(StaffSetupToken.id == link.id, StaffSetupToken.used_at.is_(None),
                                                   StaffSetupToken.expires_at > literal(now, UTCDateTime()))
                     .values(used_at=now))
    if used.rowcount != 1:
        s.rollback()
        return False
    s.execute(update(StaffAccount).where(StaffAccount.id == account.id).values(
        password_hash=hash_password(password), totp_last_step=step, enrolled_at=now, failures=0, locked_until=None))
    end_sessions(s, account.id)
    return True


# --- sessions -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Current:
    session: StaffSession
    account: StaffAccount

    @property
    def signed_in(self) -> bool:
        return self.session.stage == STAGE_OK


def new_session_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def start_session(s, account: StaffAccount) -> str:
    """After the password: a session at stage "password". Returns the cookie value."""
    token = new_session_token()
    now = clock.now()
    s.add(StaffSession(token_hash=token_hash(token), staff_id=account.id, tenant=account.tenant,
                       stage=STAGE_PASSWORD, created_at=now, last_seen_at=now))
    return token


def promote_session(s, current: Current) -> str:
    """After the code: the same row under a new id, at stage "ok"; 8 hours count from now."""
    token = new_session_token()
    now = clock.now()
    s.execute(update(StaffSession).where(StaffSession.id == current.session.id).values(
        token_hash=token_hash(token), stage=STAGE_OK, created_at=now, last_seen_at=now))
    return token


def load_session(s, token: str | None) -> tuple[Current | None, bool]:
    """The live session of this cookie, and whether one has just ended by a timeout."""
    if not token:
        return None, False
    row = s.exec(select(StaffSession, StaffAccount).join(StaffAccount, StaffAccount.id == StaffSession.staff_id)
                 .where(StaffSession.token_hash == token_hash(token), StaffSession.ended_at.is_(None))).first()
    if row is None:
        return None, False
    session, account = row
    now = clock.now()
    idle = PASSWORD_STAGE_SECONDS if session.stage == STAGE_PASSWORD else int(setting("STAFF_IDLE_SECONDS"))
    if (now - session.last_seen_at > dt.timedelta(seconds=idle)
            or now - session.created_at > dt.timedelta(seconds=int(setting("STAFF_MAX_SECONDS")))
            or account.disabled_at is not None):
        end_session(s, session.id)
        s.commit()
        return None, True
    return Current(session, account), False


def touch(s, current: Current) -> None:
    s.execute(update(StaffSession).where(StaffSession.id == current.session.id).values(last_seen_at=clock.now()))


def end_session(s, session_id: int) -> None:
    s.execute(update(StaffSession).where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
              .values(ended_at=clock.now()))


def end_sessions(s, staff_id: int) -> None:
    s.execute(update(StaffSession).where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
              .values(ended_at=clock.now()))
