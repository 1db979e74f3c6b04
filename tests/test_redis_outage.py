"""Rate limits in Redis survive Redis going away: each process falls back to limiting in its own
memory (a warning in the log), every screen and the API keep answering (never a 500), and limits
go back to Redis once it answers again. Runs a throw-away redis-server of its own, on both engine
sets (the shared Redis of the postgres run is never stopped)."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import text_of
from test_api_support import ApiActions

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class ThrowAwayRedis:
    """A redis-server on a free port, without persistence, that a test may stop and start again."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20  # a shared, busy machine
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self):
        if self.process is not None:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)  # in case a test paused it
                self.process.kill()
            self.process.wait()
            self.process = None

    def keys(self) -> list[bytes]:
        return redis.Redis(port=self.port).keys("*")


@pytest.fixture
def throwaway_redis():
    server = ThrowAwayRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_config(throwaway_redis):
    # A small per-address budget for invalid tokens shows the limits still hold while Redis is away.
    return {"REDIS_URL": throwaway_redis.url, "API_AUTH_FAILURES_PER_IP": "3 per minute"}


@pytest.fixture
def limiter_clock(monkeypatch):
    """Flask-Limiter re-tries a dead storage after a back-off (1, 2, 4 … s) on its own clock:
    move that clock on instead of sleeping."""
    import flask_limiter._extension as ext

    real = ext.time

    class Shifted:
        offset = 0.0

        def time(self):
            return real.time() + self.offset

        def __getattr__(self, name):
            return getattr(real, name)

    shifted = Shifted()
    monkeypatch.setattr(ext, "time", shifted)
    return shifted


def walk_to_phone_step(actions) -> None:
    """① and ② as a customer does them; ② lands on the next screen."""
    assert actions.start().status_code == 200
    assert actions.account().status_code == 303
    response = actions.customer()
    assert response.status_code == 303, text_of(response)[:500]


def test_when_redis_goes_away_limits_fall_back_to_memory_and_come_back(
        app, client, amami, throwaway_redis, limiter_clock, caplog):
    caplog.set_level(logging.WARNING)
    assert app.config["RATELIMIT_STORAGE_URI"] == throwaway_redis.url
    api = ApiActions(app, client, "amami")

    walk_to_phone_step(amami)
    assert api.get("accounts").status_code == 200
    assert throwaway_redis.keys(), "the limits were not counted in Redis"

    throwaway_redis.stop()
    walk_to_phone_step(amami)  # a new flow, ① and ② again: no 500, the customer goes on
    answers = [api.get("accounts") for _ in range(3)]
    assert [r.status_code for r in answers] == [200] * 3
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in answers]  # the app's limit, in memory now
    assert remaining == [remaining[0], remaining[0] - 1, remaining[0] - 2], remaining
    statuses = [api.get("accounts", token="not-a-token-we-issued").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]  # the per-address budget holds, in this process's memory
    warnings = [r for r in caplog.records if r.name == "renkei.ratelimit" and r.levelno == logging.WARNING]
    assert ["unreachable" in r.getMessage() for r in warnings] == [True], caplog.text  # once, not per request
    assert not [r for r in caplog.records if r.name == "renkei.errors"], caplog.text

    throwaway_redis.start()  # empty: no persistence
    limiter_clock.offset += 3600  # past Flask-Limiter's back-off before it asks Redis again
    walk_to_phone_step(amami)
    assert api.get("accounts").status_code == 200
    assert throwaway_redis.keys(), "the limits did not go back to Redis"
    assert any("answers again" in r.getMessage() for r in caplog.records if r.name == "renkei.ratelimit"), caplog.text


def test_a_redis_that_hangs_costs_a_request_its_timeout_not_a_worker(app, client, amami, throwaway_redis):
    walk_to_phone_step(amami)
    os.kill(throwaway_redis.process.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        started = time.monotonic()
        walk_to_phone_step(amami)
        elapsed = time.monotonic() - started
    finally:
        os.kill(throwaway_redis.process.pid, signal.SIGCONT)
    assert elapsed < 5 * app.config["REDIS_TIMEOUT_SECONDS"] + 2, elapsed
