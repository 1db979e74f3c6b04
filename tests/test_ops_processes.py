"""What operators watch, with processes: gunicorn with 2 workers (gunicorn.conf.py's multiprocess
set-up), so /metrics adds up every worker's counts whichever worker answers the scrape, and the
error log (gunicorn's and the app's lines) is JSON."""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import re
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402

TOKEN = "metrics-" + "x" * 32
REQUESTS = 40


def _get(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn, 2 sync workers (each takes one request at a time, so parallel requests land on both),
    a named metrics dir."""
    tmp = tmp_path_factory.mktemp("ops")
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")  # must not be counted
    error_log = tmp / "error.log"
    args = argparse.Namespace(workers=2, threads=1, database_url=None, worker_class="sync")
    with harness.workspace(args, METRICS_TOKEN=TOKEN) as ws:
        from webapp import create_app, db

        app = create_app(ws.app_config())
        db.create_all(app)
        app.extensions["db_engine"].dispose()
        mp = pytest.MonkeyPatch()
        mp.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        try:
            with harness.serve(ws, args, "--error-logfile", str(error_log), "--log-level", "info"):
                deadline = time.monotonic() + 30
                while error_log.read_text().count("Booting worker") < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                # One worker is held by a request that is slow to arrive, so the other serves the rest;
                # then the slow one completes: both workers have counted.
                slow = socket.create_connection(("127.0.0.1", ws.port), timeout=20)
                slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                time.sleep(0.5)
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    statuses = list(pool.map(lambda _: _get(ws.origin + "/healthz")[0], range(REQUESTS - 1)))
                assert statuses == [200] * (REQUESTS - 1)
                slow.sendall(b"Connection: close\r\n\r\n")
                assert slow.recv(100).startswith(b"HTTP/1.1 200")
                slow.close()
                # a forged webhook: a warning from the app, inside a request
                request = urllib.request.Request(ws.origin + "/telephony/inbound", data=b"CallSid=CA1", method="POST")
                try:
                    urllib.request.urlopen(request, timeout=20)
                except urllib.error.HTTPError as e:
                    assert e.code == 403
                scrapes = [_get(ws.origin + "/metrics", {"Authorization": f"Bearer {TOKEN}"}) for _ in range(6)]
                files = sorted(p.name for p in metrics_dir.iterdir())
        finally:
            mp.undo()
    yield {"scrapes": scrapes, "files": files, "error_log": error_log.read_text()}


def test_two_workers_add_up_their_counts_in_every_scrape(server):
    pids = {m.group(1) for name in server["files"] if (m := re.fullmatch(r"counter_(\d+)\.db", name))}
    assert len(pids) >= 2, server["files"]  # both workers served and counted
    assert "counter_1.db" not in server["files"]  # an earlier run's file was dropped at start
    for status, text in server["scrapes"]:
        assert status == 200
        line = re.search(r'renkei_http_requests_total\{endpoint="healthz",method="GET",status="200"\} (\S+)', text)
        assert line and float(line.group(1)) == REQUESTS
        assert re.search(r'renkei_telephony_webhook_total\{result="forbidden"\} 1\.0', text)


def test_error_log_is_one_json_object_a_line_with_the_request_id(server):
    lines = [line for line in server["error_log"].splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records)
    forged = next(r for r in records if "bad signature" in r["message"])
    assert forged["level"] == "WARNING" and re.fullmatch(r"[0-9a-f-]{36}", forged["request_id"])
    assert forged["correlation_id"] == forged["request_id"]  # no flow: the request's own id
