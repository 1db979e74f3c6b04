"""An ad hoc maintenance window reaches every worker process at once (webapp/maintenance.py): on
SQLite each worker thread keeps the windows it read until the database's count of their changes
moves (maintenance_changes, kept by triggers). Through the real server, gunicorn with two workers as
the Procfile runs it; the window is written by another process (this one), as the staff console's
worker or the CLI would."""
from __future__ import annotations

import datetime as dt

import pytest
import requests
from sqlalchemy import insert, update

from test_faults import TENANT, prepared, server_args, serving, write
from webapp import clock, messages
from webapp.maintenance import MaintenanceWindow
from webapp.staff.models import StaffAccount

REQUESTS = 40  # each on a new connection: spread over both workers and their threads


@pytest.fixture(autouse=True)
def real_clock(quiet_clock):
    """The server runs on the real clock: the window is written in real times too."""
    clock.set_now(None)


def _statuses(origin: str, path: str) -> list[tuple[int, bool]]:
    """(status, whether the maintenance message is on the page) of REQUESTS fresh requests."""
    seen = []
    for _ in range(REQUESTS):
        response = requests.get(origin + path, timeout=10, allow_redirects=False, headers={"Connection": "close"})
        seen.append((response.status_code, messages.MAINTENANCE in response.text))
    return seen


def test_a_window_written_by_another_process_closes_every_worker_at_once_and_its_cancel_reopens(tmp_path):
    args = server_args(workers=2)
    with prepared(args) as (ws, _client):
        now = clock.now()
        write(ws, insert(StaffAccount).values(id=1, tenant=TENANT, email="ops@example.jp", role="admin",
                                              created_at=now))
        with serving(ws, args, tmp_path / "server.log"):
            path = f"/{TENANT}/oauth/authorize"  # the authorization start: closed inside a window
            assert all(status != 503 and not notice for status, notice in _statuses(ws.origin, path))  # warm
            write(ws, insert(MaintenanceWindow).values(
                id=1, tenant=TENANT, starts_at=now - dt.timedelta(minutes=1), ends_at=now + dt.timedelta(hours=1),
                reason="勘定系の臨時保守", created_by=1, created_at=now))
            assert _statuses(ws.origin, path) == [(503, True)] * REQUESTS
            write(ws, update(MaintenanceWindow).values(cancelled_at=clock.now(), cancelled_by=1))
            assert all(status != 503 and not notice for status, notice in _statuses(ws.origin, path))
