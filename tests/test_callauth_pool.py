"""Pool numbers: drawn at random from the union's pool; never shared by two waiting attempts of one phone."""
from __future__ import annotations

import collections
import datetime as dt
import secrets
import threading

import pytest
from sqlmodel import Session, select

from conftest import QUIET_TIME
from webapp import clock, db
from webapp.callauth import service
from webapp.callauth.models import CallAttempt
from webapp.flow.models import Flow
from webapp.oplog import OperationLog
from sql_support import writes_during
from test_callauth_support import attempts

# chi-square critical values at p = 1e-6 (a fair draw fails about once in a million runs)
CHI2_CRITICAL = {2: 27.63, 4: 33.38}


def chi_square(counts: dict, categories, draws: int) -> float:
    expected = draws / len(categories)
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in categories)


def make_flows(app, tenant: str, phones: list[str]) -> list[Flow]:
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        made = []
        for i, phone in enumerate(phones):
            now = clock.now()
            made.append(Flow(handle_hash=secrets.token_hex(32), tenant=tenant, step="call", client_id="c",
                             redirect_uri="https://app.example/cb", oauth_request={}, phone_e164=phone,
                             created_at=now, updated_at=now))
        s.add_all(made)
        s.commit()
        return made


def open_for(app, flow, rng=None) -> CallAttempt:
    with app.test_request_context():
        return service.open_attempt(db.session(), flow, app.extensions["tenants"][flow.tenant], rng=rng)


def test_choice_uses_a_cspRNG_and_is_uniform_over_many_draws():
    assert isinstance(service._rng, secrets.SystemRandom)
    pool = ["+81120111001", "+81120111002", "+81120111003", "+81120111004", "+81120111005"]
    draws = 20_000
    counts = collections.Counter(service.choose(pool) for _ in range(draws))
    assert set(counts) == set(pool)
    assert chi_square(counts, pool, draws) < CHI2_CRITICAL[4]


def test_attempts_draw_their_number_uniformly_from_the_unions_pool(app):
    pool = app.extensions["tenants"]["amami"].call_pool
    draws = 400
    phones = [f"+8190{i:08d}" for i in range(draws)]
    counts = collections.Counter(service.national_digits(open_for(app, f).pool_number)
                                 for f in make_flows(app, "amami", phones))
    assert set(counts) == set(pool)
    assert chi_square(counts, pool, draws) < CHI2_CRITICAL[4]


def test_second_waiting_attempt_of_a_phone_draws_only_from_the_free_numbers(app):
    pool = app.extensions["tenants"]["maruhachi"].call_pool  # three numbers
    draws = 300
    counts = collections.Counter()
    for i in range(draws):
        clock.set_now(QUIET_TIME + dt.timedelta(hours=i))  # earlier attempts have expired
        first, second = make_flows(app, "maruhachi", [f"+8190{i:08d}"] * 2)
        a, b = open_for(app, first), open_for(app, second)
        assert a.pool_number != b.pool_number
        counts[(a.pool_number, b.pool_number)] += 1
    assert len(counts) == 6  # every ordered pair of distinct numbers occurs


def test_attempts_for_different_phones_may_share_a_number(app):
    always_first = type("First", (), {"choice": staticmethod(lambda seq: seq[0])})()
    one, two = make_flows(app, "amami", ["+819011113333", "+819022224444"])
    assert open_for(app, one, always_first).pool_number == open_for(app, two, always_first).pool_number


def test_exhausted_pool_supersedes_the_oldest_waiting_attempt(app):
    pool = app.extensions["tenants"]["maruhachi"].call_pool
    made = make_flows(app, "maruhachi", ["+81534441234"] * (len(pool) + 1))
    opened = []
    for i, flow in enumerate(made):
        clock.set_now(QUIET_TIME + dt.timedelta(seconds=i))
        opened.append(open_for(app, flow))
    states = {a.flow_id: a.state for a in attempts(app)}
    assert states[made[0].id] == "superseded"
    assert all(states[f.id] == "waiting" for f in made[1:])
    assert opened[-1].pool_number == opened[0].pool_number
    with app.app_context(), Session(db.engine()) as s:  # the log says whose attempt gave way
        (detail,) = s.exec(select(OperationLog.detail).where(OperationLog.flow_id == made[-1].id,
                                                             OperationLog.event == "call_attempt_started")).all()
    assert detail.endswith(f" superseded={made[0].id}")


def test_expired_attempts_free_their_number(app):
    pool = app.extensions["tenants"]["maruhachi"].call_pool
    made = make_flows(app, "maruhachi", ["+81534441234"] * (len(pool) + 1))
    for flow in made[:-1]:
        open_for(app, flow)
    clock.set_now(QUIET_TIME + dt.timedelta(seconds=121))
    # the passed windows still say waiting: they are expired before their numbers are drawn again
    assert writes_during(app, lambda: open_for(app, made[-1])) == ["UPDATE", "INSERT", "INSERT"]
    states = sorted(a.state for a in attempts(app))
    assert states == ["expired"] * len(pool) + ["waiting"]



def test_the_usual_first_attempt_writes_only_itself_and_its_log_row(app):
    """No other attempt of the phone waits: nothing to expire, so the only writes are the INSERTs
    (on SQLite the write lock is taken for them alone, not for the reads before)."""
    [flow] = make_flows(app, "amami", ["+819011113333"])
    assert writes_during(app, lambda: open_for(app, flow)) == ["INSERT", "INSERT"]



def _parallel_opens_get_distinct_numbers(app):
    pool = app.extensions["tenants"]["amami"].call_pool
    made = make_flows(app, "amami", ["+819011113333"] * len(pool))
    barrier = threading.Barrier(len(made))
    errors = []

    def open_one(flow):
        try:
            with app.test_request_context():
                barrier.wait()
                service.open_attempt(db.session(), flow, app.extensions["tenants"]["amami"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=open_one, args=(f,)) for f in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    waiting = [a for a in attempts(app) if a.state == "waiting"]
    assert len(waiting) == len(pool)
    assert len({a.pool_number for a in waiting}) == len(pool)


def test_parallel_attempts_of_one_phone_get_distinct_numbers_sqlite(app):
    _parallel_opens_get_distinct_numbers(app)


@pytest.mark.postgres
def test_parallel_attempts_of_one_phone_get_distinct_numbers_postgres(pg_app):
    _parallel_opens_get_distinct_numbers(pg_app)



def test_pool_numbers_are_printed_as_phonenumbers_formats_them_and_only_they_are_kept(app, amami):
    # ④ prints its pool number and links it on every visit; both are kept per number (issue 13):
    # the kept answers are phonenumbers' own, and a visit to ④ keeps its pool number, nothing else
    # (never the customer's phone, which ④ shows masked).
    from test_callauth_support import pool_number_on, to_call_screen

    with app.app_context():
        pools = [n for tenant in app.extensions["tenants"].values() for n in service.pool_of(tenant)]
    assert pools
    for number in pools:
        for _ in range(2):  # worked out, then kept
            assert service.display_number(number) == service.display_number.__wrapped__(number)
            assert service.tel_uri(number) == "tel:" + service.national_digits(number)
    service.display_number.cache_clear()
    service.tel_uri.cache_clear()
    page = to_call_screen(amami)
    for _ in range(2):
        assert amami.get("flow/call").status_code == 200
    assert "+81" + pool_number_on(page)[1:] in pools
    assert service.display_number.cache_info().currsize == service.tel_uri.cache_info().currsize == 1
