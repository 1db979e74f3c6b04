"""The benchmarks' server CPU figure (bench/harness.py `server_cpu`): what gunicorn's master and
workers used, read from /proc, so that bench_screens' CPU a request counts the server's work and
not the load generator's or anything else running on the machine."""
import argparse
import http.client
import pathlib
import sys
import time

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402


def test_server_cpu_counts_every_worker_and_grows_with_the_requests_served():
    args = argparse.Namespace(database_url=None, workers=2, threads=2)
    with harness.workspace(args) as ws, harness.serve(ws, args) as server:
        deadline = time.monotonic() + 30
        while len(harness.worker_cpu(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(harness.worker_cpu(server.pid)) == 2  # both workers are read, not only the master
        before = harness.server_cpu(server.pid)
        conn = http.client.HTTPConnection("127.0.0.1", ws.port, timeout=30)
        for _ in range(400):
            conn.request("GET", harness.BARE_PATH)
            conn.getresponse().read()
        conn.close()
        used = harness.server_cpu(server.pid) - before
    # 400 requests cost the workers well over one clock tick (10 ms); the master, alone, uses none.
    assert 0.01 <= used < 60
