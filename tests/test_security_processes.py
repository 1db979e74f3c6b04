"""Claims about processes, tested with processes: gunicorn with 2 gthread workers, as the Procfile
runs it, attacked over HTTP by bench/attack.py (the security review's script).

The identity-check budgets live in the database, so they hold across workers on the embedded
default (SQLite, memory:// limits) as on PostgreSQL and with Redis.
"""
from __future__ import annotations

import pathlib
import sys
import urllib.request

import pytest

from webapp import clock

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import attack  # noqa: E402
import harness  # noqa: E402


@pytest.fixture(autouse=True)
def real_clock(quiet_clock):
    """The server runs on the real clock: seed its flows with real times too."""
    clock.set_now(None)


def _attack(*options: str) -> dict:
    return attack.run(attack.arguments(["--workers", "2", "--threads", "4", *options]), ("one-address",))["one-address"]


def test_pins_across_accounts_from_one_address_stop_at_the_budget_across_workers():
    figures = _attack()
    assert figures == {"attempts": 60, "evaluated": 30, "refused": 30}


@pytest.mark.postgres
def test_pins_across_accounts_from_one_address_stop_at_the_budget_on_postgres_and_redis(pg_url):
    figures = _attack("--database-url", pg_url, "--redis-url", "redis://127.0.0.1:6379/0")
    assert figures == {"attempts": 60, "evaluated": 30, "refused": 30}


def test_parallel_wrong_pins_from_many_addresses_are_evaluated_five_times_across_workers():
    args = attack.arguments(["--workers", "2", "--threads", "4"])
    assert attack.run(args, ("parallel-pins",))["parallel-pins"] == {"attempts": 100, "evaluated": 5}


def test_access_log_never_holds_a_token_from_a_query_string(tmp_path):
    access_log = tmp_path / "access.log"
    args = attack.arguments(["--workers", "2", "--threads", "2"])
    with harness.workspace(args) as ws:
        from webapp import create_app, db

        app = create_app(ws.app_config())
        db.create_all(app)
        app.extensions["db_engine"].dispose()
        with harness.serve(ws, args, "--access-logfile", str(access_log)):
            for path in ("/amami/api/v1/accounts?access_token=SECRET-AT-1&accountId=7",
                         "/amami/oauth/introspect?token=SECRET-RT-2&client_secret=SECRET-CS-3",
                         "/amami/flow/account?code=SECRET-CODE-4"):
                try:
                    urllib.request.urlopen(ws.origin + path, timeout=10)
                except urllib.error.HTTPError:
                    pass  # refused, as it must be; the question is what was logged
    logged = access_log.read_text()
    assert "/amami/api/v1/accounts?access_token=[redacted]&accountId=7" in logged
    assert "SECRET" not in logged


def test_the_api_per_app_limit_holds_across_workers_with_redis():
    """The account API's per-app limit is counted in Redis (views.per_app_limit, Limiter.count_limits):
    two gunicorn workers, a new connection for each call so both serve them, and the app gets
    exactly its limit, not its limit a worker."""
    import argparse
    import uuid

    import conftest
    import requests
    from bench_transactions import seed

    if not conftest.REDIS_URL:
        pytest.skip("with memory:// limits count per worker (README): the --engines=postgres run has Redis")
    args = argparse.Namespace(database_url=None, workers=2, threads=4)
    with harness.workspace(args, API_RATE_LIMIT="5 per minute", REDIS_URL=conftest.REDIS_URL,
                           RATELIMIT_KEY_PREFIX=f"renkei-test-{uuid.uuid4().hex}") as ws:
        token, _ = seed(ws.app_config(TESTING=True))
        with harness.serve(ws, args):
            answers = []
            for _ in range(16):
                with requests.Session() as web:  # its own connection: the calls spread over both workers
                    answers.append(web.get(f"{ws.origin}/amami/api/v1/accounts", timeout=10,
                                           headers={"Authorization": f"Bearer {token}", "Connection": "close"}))
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 11
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert "Retry-After" not in answers[0].headers and 1 <= int(answers[-1].headers["Retry-After"]) <= 60
