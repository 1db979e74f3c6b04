"""Incoming-call authentication (着信認証), the rule:

A call authenticates exactly one waiting attempt when it is dialled to the pool number shown to
that attempt, comes *from* the registered phone (E.164, normalised with phonenumbers, region JP)
and arrives inside the attempt's window (`PHONE_AUTH_WINDOW_SECONDS`, webapp/config.py, counted from
when ④ first appeared). Confirmation is one atomic `UPDATE … WHERE state='waiting' AND … RETURNING`,
so any number of parallel webhooks and polls confirm once; a CallSid is recorded once (unique
column + INSERT … ON CONFLICT DO NOTHING), so the provider's retries count once.

- Pool numbers are drawn at random (a CSPRNG) from the union's pool. Two attempts waiting at once for
  the same phone never share a number (a partial unique index), so a call matches at most one; when
  the pool is exhausted for that phone, the newest attempt supersedes the oldest.
- Withheld numbers (anonymous, Restricted, empty, not a valid number) never authenticate; the
  attempts waiting on that pool number are flagged so ④ can tell the customer to dial 186.
- A call from another number, to another pool number or after the window authenticates nothing
  and is logged (screen "CALL") with the caller masked; a full phone number is never logged.
- 「確定する」 consumes a confirmed attempt once (confirmed → used) and only inside the window.
- How the provider's webhook is signed, read and answered is the provider adapter's business
  (telephony.py; twilio.py for the real one): this module sees a call as (CallSid, caller,
  number dialled, direction).
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import re
import secrets

import phonenumbers
from flask import current_app
from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from .. import clock, oplog
from ..flow import state as flow_state
from .. import db as dbmod
from ..messages import (  # noqa: F401  what the customer reads on ④ (SOA209); flow/call.py reads them here
    CALL_SEEN, PRESSED_TOO_EARLY, SUPERSEDED_TEXT, WAITING_TEXT, WITHHELD_SEEN)
from .models import CONFIRMED, EXPIRED, MAX_ATTEMPTS, SUPERSEDED, USED, WAITING, CallAttempt, InboundCall

# --- the window ---------------------------------------------------------------------------------

def window_seconds() -> int:
    return int(current_app._get_current_object().config["PHONE_AUTH_WINDOW_SECONDS"])


# --- phone numbers ------------------------------------------------------------------------------

# Pseudo-numbers providers put in From when the caller ID is withheld (Twilio spells the words on a keypad).
_WITHHELD_PSEUDO = {"+266696687", "+7378742833", "+86282452253", "+8656696", "+2562533"}
_DIALLABLE = re.compile(r"^\+?[0-9]{1,20}$")


def caller_e164(raw: str | None) -> str | None:
    """The caller's number in E.164, or None when it is withheld or not a real number."""
    parsed = _parsed_caller(raw)
    return None if parsed is None else phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parsed_caller(raw: str | None) -> phonenumbers.PhoneNumber | None:
    value = (raw or "").strip()
    if not _DIALLABLE.fullmatch(value) or value in _WITHHELD_PSEUDO:
        return None
    try:
        parsed = phonenumbers.parse(value, "JP")
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def dialled_e164(raw: str | None) -> str | None:
    """The number dialled (ours, from the pool) in E.164, or None when it is not a number."""
    value = (raw or "").strip()
    if not _DIALLABLE.fullmatch(value):
        return None
    try:
        parsed = phonenumbers.parse(value, "JP")
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """+819011113333 → 09011113333 (the number as the customer knows it)."""
    return re.sub(r"[^0-9]", "", phonenumbers.format_number(_read_e164(e164), phonenumbers.PhoneNumberFormat.NATIONAL))


def _read_e164(e164: str) -> phonenumbers.PhoneNumber:
    """`e164` as phonenumbers.parse(e164, "JP") reads it. A Japanese number in E.164 (+81, then digits
    with no leading 0) is built directly: parsing it was half of ③'s and ④'s masked phone on every
    visit. Anything else, including +810… (whose zeros parse would keep as leading zeros), is parsed.
    tests/test_callauth_screens.py compares the two for thousands of numbers."""
    rest = e164[3:]
    if e164.startswith("+81") and rest.isdigit() and rest[:1] != "0":
        return phonenumbers.PhoneNumber(country_code=81, national_number=int(rest))
    return phonenumbers.parse(e164, "JP")


def mask(digits: str) -> str:
    """All but the last four digits as `*`: 09011113333 → *******3333."""
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def masked_phone(e164: str) -> str:
    return mask(national_digits(e164))


# ④ shows its pool number on every visit, printed and as a link: phonenumbers' parse and format,
# twice, were a tenth of the screen. Pool numbers are the unions' own published numbers, a few per
# union and no customer's, so each is worked out once and kept (never a customer's phone: see
# masked_phone).
@functools.lru_cache(maxsize=1024)
def display_number(e164: str) -> str:
    """A pool number as printed on ④: 0120-111-001."""
    return phonenumbers.format_number(phonenumbers.parse(e164, "JP"), phonenumbers.PhoneNumberFormat.NATIONAL)


@functools.lru_cache(maxsize=1024)
def tel_uri(e164: str) -> str:
    """`tel:` link of a pool number, dialled as a domestic number (0120 numbers are domestic only)."""
    return "tel:" + national_digits(e164)


def pool_of(tenant) -> tuple[str, ...]:
    """The union's pool in E.164 (configuration holds national numbers)."""
    cache = current_app.extensions.setdefault("call_pools", {})
    if tenant.id not in cache:
        cache[tenant.id] = tuple(dict.fromkeys(dialled_e164(n) for n in tenant.call_pool if dialled_e164(n)))
    return cache[tenant.id]


def tenant_of_pool_number(number: str | None) -> str | None:
    return _pool_tenants().get(number)


def _pool_tenants() -> dict[str, str]:
    """Every union's pool number (E.164) → the union (the first listed, should two share one); worked
    out once per app: the webhook asks on every call."""
    from ..tenants import all_tenants

    known = current_app.extensions.get("call_pool_tenants")
    if known is None:
        known = {}
        for tenant in all_tenants().values():
            for number in pool_of(tenant):
                known.setdefault(number, tenant.id)
        current_app.extensions["call_pool_tenants"] = known
    return known


def _dialled_e164(raw: str | None) -> str | None:
    """dialled_e164, without phonenumbers for what providers send nearly always: one of our pool
    numbers, already in E.164 (which phonenumbers gives back unchanged)."""
    return raw if raw in _pool_tenants() else dialled_e164(raw)


@functools.lru_cache(maxsize=1024)
def pool_national_digits(e164: str) -> str:
    """national_digits of a pool number (ours, never a customer's: see display_number), kept."""
    return national_digits(e164)


def _caller(raw: str | None) -> tuple[str | None, str]:
    """(caller_e164(raw), masked_phone of it), or (None, "withheld"), from one parse of the number
    (caller_e164 then masked_phone parse it twice). A customer's number is never kept (no cache)."""
    parsed = _parsed_caller(raw)
    if parsed is None:
        return None, "withheld"
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), mask(re.sub(r"[^0-9]", "", national))


# --- drawing a pool number and opening an attempt ---------------------------------------------

_rng = secrets.SystemRandom()


def choose(numbers: list[str], rng=None) -> str:
    """One of `numbers`, uniformly at random (a CSPRNG unless a test passes its own)."""
    return (rng or _rng).choice(numbers)


def attempt_for(s: Session, flow_id: int) -> CallAttempt | None:
    return s.exec(select(CallAttempt).where(CallAttempt.flow_id == flow_id)).first()


# What ④ shows of its attempt, read by a SELECT built once: a row (attribute access, as the ORM
# object's) for a request that only shows it (④'s GET, the poll's last answer); the ORM object's
# load was ~300 function calls of ④. Writers keep attempt_for (they refresh what they change).
_SHOWN_COLUMNS = ("id", "pool_number", "state", "expires_at", "withheld_call_at", "attempts")
_SHOWN = (sa_select(*(CallAttempt.__table__.c[k] for k in _SHOWN_COLUMNS))
          .where(CallAttempt.__table__.c.flow_id == bindparam("flow_id")))


def shown_attempt(flow_id: int):
    """The flow's attempt as ④ shows it (id, pool_number, state, expires_at, withheld_call_at,
    attempts), read by dbmod.first_read; None when ④ has not opened one yet."""
    return dbmod.first_read(_SHOWN, {"flow_id": flow_id})


def open_attempt(s: Session, flow, tenant, rng=None) -> CallAttempt:
    """The flow's attempt; the first call creates it with a pool number and a window starting now. Commits.

    Safe under parallel requests: one attempt per flow (unique flow_id), one waiting attempt per
    (phone, pool number) (partial unique index); a lost race is retried with a fresh read.
    """
    existing = attempt_for(s, flow.id)
    if existing is not None:
        return existing
    return _open(s, flow, tenant, rng, lambda: attempt_for(s, flow.id))


def open_shown_attempt(s: Session, flow, tenant, rng=None):
    """④'s first GET, which has just read no attempt through shown_attempt: opens the flow's attempt
    as open_attempt does and gives it as shown_attempt does. Neither the ORM read before (the
    INSERT's ON CONFLICT is the check a parallel request needs) nor the ORM object after: those two
    reads were a quarter of that request (bench/profile_flow.py call_open). The attempt this call
    opens is given from what it inserted (its id by RETURNING), not read again after the commit: on
    PostgreSQL that read's transaction ended in a ROLLBACK, and at every ROLLBACK psycopg forgets
    (DEALLOCATE ALL) the statements it had prepared on that connection. An attempt a parallel
    request opened is read."""
    return _open(s, flow, tenant, rng, lambda: shown_attempt(flow.id), shown=True)


_SHOWN_ROW = collections.namedtuple("ShownAttempt", _SHOWN_COLUMNS)


def _open(s: Session, flow, tenant, rng, read, shown: bool = False):
    """Create the flow's attempt unless it has one (a parallel request's), commit, and `read()` it;
    with `shown`, the attempt it created is given as shown_attempt's row without a read."""
    pool = _pool_or_fail(tenant)
    for _ in range(8):
        now = clock.now()
        try:
            number, superseded = _pick_number(s, flow.phone_e164, pool, now, rng=rng)
            if number is None:
                continue
            expires = now + dt.timedelta(seconds=window_seconds())
            created = dbmod.inserted_or_none(s, CallAttempt.__table__, {
                "flow_id": flow.id, "tenant": flow.tenant, "phone_e164": flow.phone_e164, "pool_number": number,
                "state": WAITING, "started_at": now, "expires_at": expires, "attempts": 1,
            }, ["flow_id"], ("id",))
            if created is not None:
                _log_window(s, flow, "call_attempt_started", number, superseded)
            s.commit()
        except IntegrityError:  # a parallel attempt for the same phone took that number first
            s.rollback()
            continue
        if created is not None and shown:
            return _SHOWN_ROW(id=created.id, pool_number=number, state=WAITING, expires_at=expires,
                              withheld_call_at=None, attempts=1)
        attempt = read()
        if attempt is not None:
            return attempt
    raise RuntimeError("could not open a call attempt")


def renewals_left(attempt: CallAttempt) -> int:
    return max(0, MAX_ATTEMPTS - attempt.attempts)


def renew_attempt(s: Session, flow, tenant, attempt: CallAttempt, rng=None) -> bool:
    """「もう一度電話番号認証を行う」: once the window has passed (or another screen took the number),
    the same attempt waits again with another pool number and a fresh window, without ① ② again.
    At most MAX_ATTEMPTS windows per flow, decided by one conditional UPDATE, so parallel presses
    renew once. Commits. False when it cannot be renewed (waiting, confirmed, used, or none left).
    """
    pool = _pool_or_fail(tenant)
    renewable = or_(CallAttempt.state.in_((EXPIRED, SUPERSEDED)),
                    and_(CallAttempt.state == WAITING, CallAttempt.expires_at <= clock.now()))
    for _ in range(8):
        now = clock.now()
        try:
            number, superseded = _pick_number(s, flow.phone_e164, pool, now, avoid=attempt.pool_number, rng=rng,
                                              keep=attempt.id)
            if number is None:
                continue
            renewed = s.execute(
                update(CallAttempt)
                .where(CallAttempt.id == attempt.id, CallAttempt.attempts < MAX_ATTEMPTS, renewable)
                .values(state=WAITING, pool_number=number, started_at=now,
                        expires_at=now + dt.timedelta(seconds=window_seconds()), confirmed_at=None, call_sid=None,
                        withheld_call_at=None, attempts=CallAttempt.attempts + 1)
                .returning(CallAttempt.attempts)).first()
            if renewed is None:
                s.rollback()
                return False
            _log_window(s, flow, "call_attempt_renewed", number, superseded, attempt_no=renewed[0])
            s.commit()
        except IntegrityError:  # a parallel attempt for the same phone took that number first
            s.rollback()
            continue
        s.refresh(attempt)
        return True
    raise RuntimeError("could not renew the call attempt")


def _pool_or_fail(tenant) -> tuple[str, ...]:
    pool = pool_of(tenant)
    if not pool:
        raise RuntimeError(f"tenant {tenant.id} has no call pool configured")
    return pool


# The attempts of a phone that still say waiting, oldest first, as _pick_number reads them: a SELECT
# built once, rows not ORM objects (building and loading it was a quarter of ④'s first GET under the
# profiler). The second leaves out the attempt being renewed.
_ATTEMPTS = CallAttempt.__table__.c
_WAITING_OF_PHONE = (sa_select(_ATTEMPTS.id, _ATTEMPTS.flow_id, _ATTEMPTS.pool_number, _ATTEMPTS.expires_at)
                     .where(_ATTEMPTS.phone_e164 == bindparam("phone"), _ATTEMPTS.state == WAITING)
                     .order_by(_ATTEMPTS.started_at, _ATTEMPTS.id))
_OTHERS_WAITING_OF_PHONE = _WAITING_OF_PHONE.where(_ATTEMPTS.id != bindparam("keep"))


def _pick_number(s: Session, phone: str, pool, now: dt.datetime, *, avoid: str | None = None, rng=None,
                 keep: int | None = None) -> tuple[str | None, object | None]:
    """A pool number no other waiting attempt of this phone shows (another than `avoid` when one is
    free); when all are taken, the oldest waiting attempt gives way (superseded: its row's id,
    flow_id, pool_number and expires_at). (None, None) when a parallel request changed things first:
    the caller rolls back and tries again.

    It reads first and writes only what it must: the usual ④ (no other attempt of this phone waits)
    writes nothing here, and on SQLite the write lock is taken by the caller's INSERT, not for this
    read. Attempts whose window has passed but still say waiting are marked expired first (they hold
    their number in the partial unique index until then)."""
    waiting = (s.connection().execute(_WAITING_OF_PHONE, {"phone": phone}) if keep is None else
               s.connection().execute(_OTHERS_WAITING_OF_PHONE, {"phone": phone, "keep": keep})).all()
    if any(a.expires_at <= now for a in waiting):
        s.execute(update(CallAttempt)
                  .where(CallAttempt.phone_e164 == phone, CallAttempt.state == WAITING, CallAttempt.expires_at <= now)
                  .values(state=EXPIRED))
        waiting = [a for a in waiting if a.expires_at > now]
    taken = {a.pool_number for a in waiting}
    free = [n for n in pool if n not in taken]
    if free:
        return choose([n for n in free if n != avoid] or free, rng), None
    # as many attempts wait for this phone as the pool has numbers: the oldest gives way
    superseded = next(a for a in waiting if a.pool_number in pool)
    gave_way = s.execute(update(CallAttempt)
                         .where(CallAttempt.id == superseded.id, CallAttempt.state == WAITING)
                         .values(state=SUPERSEDED))
    if gave_way.rowcount != 1:
        s.rollback()
        return None, None
    return superseded.pool_number, superseded


def _log_window(s: Session, flow, event: str, number: str, superseded,
                attempt_no: int = 1) -> None:
    detail = f"pool={national_digits(number)} window={window_seconds()}s"
    if attempt_no > 1:
        detail = f"attempt={attempt_no} " + detail
    if superseded is not None:
        detail += f" superseded={superseded.flow_id}"
    oplog.write(s, tenant=flow.tenant, screen=flow_state.STEPS["call"].screen_id, event=event, result="ok",
                flow=flow, detail=detail)


# --- the state ④ shows ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Status:
    kind: str  # waiting | confirmed | expired | superseded | used
    withheld_seen: bool = False

    @property
    def final(self) -> bool:
        """Nothing more will change by itself: polling stops."""
        return self.kind != WAITING


def status_of(attempt: CallAttempt, now: dt.datetime | None = None) -> Status:
    now = now or clock.now()
    if attempt.state in (USED, SUPERSEDED):
        return Status(attempt.state)
    if attempt.state == EXPIRED or now >= attempt.expires_at:
        return Status(EXPIRED)
    if attempt.state == CONFIRMED:
        return Status(CONFIRMED)
    return Status(WAITING, withheld_seen=attempt.withheld_call_at is not None)


_CONSUME = (update(CallAttempt.__table__)
            .where(CallAttempt.__table__.c.flow_id == bindparam("a_flow_id"),
                   CallAttempt.__table__.c.state == CONFIRMED, CallAttempt.__table__.c.expires_at > bindparam("a_now"))
            .values(state=USED)
            .returning(CallAttempt.__table__.c.id))  # built once: ④'s POST runs it


def consume(s: Session, flow_id: int) -> bool:
    """「確定する」 after the call: the flow's attempt (one a flow) confirmed → used, once, inside the
    window (in the caller's transaction). False when there is no such attempt."""
    row = s.connection().execute(_CONSUME, {"a_flow_id": flow_id, "a_now": clock.now()}).first()
    return row is not None


# --- inbound calls (the webhook and the sandbox button share this) -----------------------------

MATCHED = "matched"
DUPLICATE = "duplicate"


def new_call_sid() -> str:
    """A CallSid shaped like the provider's (CA + 32 hex), for simulated calls."""
    return "CA" + secrets.token_hex(16)


def _as_dialled(raw: str | None) -> str:
    """What the provider says was dialled when it is not a number, kept for the record; without
    NUL, which PostgreSQL refuses in text."""
    return str(raw or "").replace("\x00", "")


# The webhook's writes, built once (Core on the tables, no ORM statement evaluation on each call).
_ATTEMPTS = CallAttempt.__table__
_CONFIRM = (update(_ATTEMPTS)
            .where(_ATTEMPTS.c.state == WAITING, _ATTEMPTS.c.pool_number == bindparam("a_to"),
                   _ATTEMPTS.c.phone_e164 == bindparam("a_from"), _ATTEMPTS.c.started_at <= bindparam("a_now"),
                   _ATTEMPTS.c.expires_at > bindparam("a_now"))
            .values(state=CONFIRMED, confirmed_at=bindparam("a_now", type_=_ATTEMPTS.c.confirmed_at.type),
                    call_sid=bindparam("a_call_sid"))
            .returning(_ATTEMPTS.c.id, _ATTEMPTS.c.flow_id, _ATTEMPTS.c.tenant))


def record_inbound_call(s: Session, *, call_sid: str, caller: str | None, dialled: str | None,
                        direction: str | None = None) -> str:
    """Record one reported call and confirm the attempt it authenticates, if any. Commits; returns the outcome.

    The call's row is written last, with its outcome, by one INSERT … ON CONFLICT DO NOTHING: the
    CallSid stays the gate, since a CallSid already recorded (a provider's retry) inserts nothing and
    rolls back what was done before it, the confirmation included. Every writer locks the attempt
    first and the call's row second, so PostgreSQL cannot deadlock two of them."""
    now = clock.now()
    to = _dialled_e164(dialled)
    tenant = pool_tenant = _pool_tenants().get(to)
    from_e164, caller_shown = _caller(caller)

    attempt_id, flow_id, outcome = None, None, None
    if direction not in (None, "", "inbound"):
        outcome = "not_inbound"
    elif tenant is None:
        outcome = "unknown_number"
    elif from_e164 is None:
        outcome = "withheld"
        s.execute(update(CallAttempt)
                  .where(CallAttempt.pool_number == to, CallAttempt.state == WAITING, CallAttempt.expires_at > now)
                  .values(withheld_call_at=now))
    else:
        row = s.connection().execute(_CONFIRM, {"a_to": to, "a_from": from_e164, "a_now": now,
                                                "a_call_sid": call_sid}).first()
        if row is not None:
            attempt_id, flow_id, tenant, outcome = row.id, row.flow_id, row.tenant, MATCHED
        else:
            outcome, attempt = _why_unmatched(s, from_e164, to, now)
            if attempt is not None:
                attempt_id, flow_id = attempt.id, attempt.flow_id

    inserted = dbmod.insert_or_ignore(s, InboundCall.__table__, {
        "call_sid": call_sid, "received_at": now, "tenant": pool_tenant,
        "to_number": (to or _as_dialled(dialled))[:32], "from_masked": caller_shown, "outcome": outcome,
        "attempt_id": attempt_id,
    }, ["call_sid"])
    if not inserted:
        s.rollback()
        return DUPLICATE
    flow = flow_state.by_id(s, flow_id)
    to_shown = (pool_national_digits(to) if pool_tenant is not None else national_digits(to)) if to else "invalid"
    oplog.write(s, tenant=tenant or "-", screen="CALL", event="inbound_call",
                result={MATCHED: "ok", "unknown_number": "refused", "not_inbound": "refused"}.get(outcome, "fail"),
                flow=flow, detail=f"{outcome} from={caller_shown} to={to_shown}")
    s.commit()
    return outcome


def _why_unmatched(s: Session, caller: str, to: str, now: dt.datetime) -> tuple[str, CallAttempt | None]:
    """For the log only: why a call from a real number confirmed nothing."""
    latest = s.exec(select(CallAttempt).where(CallAttempt.phone_e164 == caller)
                    .order_by(CallAttempt.started_at.desc(), CallAttempt.id.desc()).limit(1)).first()
    if latest is not None:
        if latest.pool_number == to:
            if latest.state in (CONFIRMED, USED):
                return "repeat", latest
            if latest.state == SUPERSEDED:
                return "superseded", latest
            return "late", latest
        if latest.state == WAITING and latest.expires_at > now:
            return "wrong_pool_number", latest
    return "wrong_number", None
