"""Load shedding's counts in this process's memory (`memory://`, and the fall-back while Redis is away)
go through SweptMemoryStorage.hit_in_order: one call a request for the sender's limits and the
ceiling, counting exactly what `hit` on each limit in turn counted (issue 13: each `hit` was ~2 % of
a ④ poll's instructions). The same answers, the same counters under the same keys with the same
expiries, the refused limit counted and those after it not, windows that start again once over,
and no count lost when many threads count at once."""
from __future__ import annotations

import threading
import time

import pytest
from limits import parse

from conftest import make_app
from test_shedding_counts import _hit_by_hit, _run
from webapp import extensions
from webapp.extensions import SweptMemoryStorage, limiter


@pytest.fixture
def memory_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'shed.sqlite3'}", REDIS_URL=None, RATELIMIT_STORAGE_URI="memory://",
                   RATELIMIT_KEY_PREFIX="unset")
    assert type(limiter.limiter.storage) is SweptMemoryStorage
    return app


def _counters(prefix: str) -> dict:
    """key (prefix made P) → (count, seconds left in its window, rounded)."""
    storage = limiter.limiter.storage
    now = time.time()
    return {key.replace(prefix, "P"): (count, round(storage.expirations[key] - now))
            for key, count in storage.storage.items() if prefix in key}


def test_one_call_counts_what_hit_by_hit_counted(memory_app, monkeypatch):
    def one_by_one(*_args):
        raise AssertionError("counted limit by limit")

    answers = _run(memory_app, "stock", _hit_by_hit)
    with monkeypatch.context() as patched:
        patched.setattr(limiter, "hit", one_by_one)
        assert _run(memory_app, "in-order", limiter.hit_in_order) == answers
    assert set(answers) == {None, 0, 1, 2}  # passed, refused by each sender window, by the ceiling
    assert _counters("in-order") == _counters("stock")
    assert len(_counters("stock")) == 7 and {left for _count, left in _counters("stock").values()} == {60, 3600}


def test_a_window_over_starts_again_and_keeps_its_first_expiry(memory_app, monkeypatch):
    memory_app.config["RATELIMIT_KEY_PREFIX"] = "again"
    minute = [(parse("2 per minute"), "sender", "ip:x")]
    now = [1_000_000.0]
    monkeypatch.setattr(extensions.time, "time", lambda: now[0])
    with memory_app.test_request_context("/"):
        assert [limiter.hit_in_order(minute) for _ in range(3)] == [None, None, 0]
        now[0] += 59.9  # the window that began at 1,000,000 still holds: later counts do not move it
        assert limiter.hit_in_order(minute) == 0
        now[0] += 0.2  # over: a new window, counted from here
        assert [limiter.hit_in_order(minute) for _ in range(3)] == [None, None, 0]
    (key,) = [k for k in limiter.limiter.storage.storage if "again" in k]
    assert limiter.limiter.storage.expirations[key] == now[0] + 60


def test_threads_counting_at_once_lose_no_count(memory_app):
    memory_app.config["RATELIMIT_KEY_PREFIX"] = "threads"
    ceiling = [(parse("1000 per minute"), "service", "all")]
    refused = []
    start = threading.Barrier(8)

    def count() -> None:
        with memory_app.test_request_context("/"):
            start.wait()
            refused.extend(i for i in (limiter.hit_in_order(ceiling) for _ in range(150)) if i is not None)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refused) == 8 * 150 - 1000  # exactly the ceiling's 1,000 passed
    assert list(_counters("threads").values()) == [(1200, 60)]


def test_an_address_past_its_limit_is_refused_in_memory_and_another_is_not(tmp_path):
    """What a customer sees: in memory, an address past REQUESTS_PER_IP is refused (429) on a
    customer page, and another address is served."""
    app = make_app(f"sqlite:///{tmp_path / 'shed.sqlite3'}", REDIS_URL=None, RATELIMIT_STORAGE_URI="memory://",
                   REQUESTS_PER_IP="3 per minute")
    web = app.test_client()
    statuses = [web.get("/amami/faq", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert web.get("/amami/faq", environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 200
