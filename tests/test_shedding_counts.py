"""Load shedding counts a request's own limits and then the service-wide ceiling in one call to Redis
(Limiter.hit_in_order, one script: issue 13), counting exactly what `hit` on each limit in turn
counted: the same answers, the same counters under the same keys, each with its window's expiry, the
limit that refused counted and those after it not; and in memory when Redis is away. Runs a
throw-away redis-server of its own (test_redis_outage's), on both engine sets."""
from __future__ import annotations

import shutil
import uuid

import pytest
from limits import parse

from conftest import make_app
from test_redis_outage import ThrowAwayRedis, redis
from webapp.extensions import limiter

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

SENDER = (parse("5 per minute"), parse("3 per hour"))
CEILING = (parse("6 per minute"),)
SENDERS = "aabaabcaaacbbbc"


@pytest.fixture
def server():
    s = ThrowAwayRedis()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def redis_app(server, tmp_path):
    return make_app(f"sqlite:///{tmp_path / 'shed.sqlite3'}", REDIS_URL=server.url,
                    RATELIMIT_KEY_PREFIX="unset")


def _counts(sender: str) -> list[tuple]:
    return [(item, "sender", f"ip:{sender}") for item in SENDER] + [(item, "service", "all") for item in CEILING]


def _hit_by_hit(counts) -> int | None:
    """What shedding did before: `hit` on each limit in turn, stopping at the first one reached."""
    for i, (item, *identifiers) in enumerate(counts):
        if not limiter.hit(item, *identifiers):
            return i
    return None


def _run(app, prefix: str, count) -> list:
    app.config["RATELIMIT_KEY_PREFIX"] = prefix
    with app.test_request_context("/"):
        return [count(_counts(sender)) for sender in SENDERS]


def _counters(server, prefix: str) -> dict:
    client = redis.Redis(port=server.port)
    return {key.decode().replace(prefix, "P"): (int(client.get(key)), client.ttl(key) > 0)
            for key in client.keys(f"*{prefix}*")}


def test_one_script_counts_what_hit_by_hit_counted(redis_app, server):
    script, stock = "s-" + uuid.uuid4().hex, "h-" + uuid.uuid4().hex
    answers = _run(redis_app, script, limiter.hit_in_order)
    assert answers == _run(redis_app, stock, _hit_by_hit)
    assert set(answers) == {None, 0, 1, 2}  # passed, refused by each sender window, by the ceiling
    assert _counters(server, script) == _counters(server, stock) and len(_counters(server, stock)) == 7


def test_a_request_counts_its_limits_in_one_call(redis_app, server, monkeypatch):
    def one_by_one(*_args):
        raise AssertionError("counted limit by limit")

    monkeypatch.setattr(limiter, "hit", one_by_one)
    prefix = redis_app.config["RATELIMIT_KEY_PREFIX"] = "r-" + uuid.uuid4().hex
    # Windows of a minute, not the test config's second: a new app's first request can take more
    # than a second on a busy box, and its counters would expire before they are read below.
    redis_app.config.update(REQUESTS_PER_IP="100000 per minute", GLOBAL_REQUEST_LIMIT="100000 per minute")
    assert redis_app.test_client().get("/amami/faq").status_code == 200
    counted = _counters(server, prefix)
    assert len(counted) == 2 and all(value == (1, True) for value in counted.values())  # address, ceiling


def test_without_redis_the_limits_count_in_memory_in_the_same_order(redis_app, server):
    server.stop()
    prefix = "m-" + uuid.uuid4().hex
    answers = _run(redis_app, prefix, limiter.hit_in_order)
    assert limiter._storage_dead  # gone to memory, as `hit` goes
    assert set(answers) == {None, 0, 1, 2}
