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
