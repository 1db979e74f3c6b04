"""How gunicorn's workers listen (gunicorn.conf.py `reuse_port`), with real gunicorn processes.

Where the host moves a closing listener's queued connections to the others (Linux's
net.ipv4.tcp_migrate_req=1), each worker listens on a socket of its own and the kernel spreads new
connections over them; elsewhere the workers share one socket, since a worker stopping on a reload
would reset the connections queued on its own (bench/bench_reload.py). RENKEI_REUSE_PORT=0 or 1
decides instead. Most tests change the host's setting, which needs root, and put it back.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing
import os
import pathlib
import signal
import sys
import time

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402

SETTING = pathlib.Path("/proc/sys/net/ipv4/tcp_migrate_req")


def _writable() -> bool:
    try:
        SETTING.write_text(SETTING.read_text())
        return True
    except OSError:
        return False


needs_root = pytest.mark.skipif(not SETTING.exists() or not _writable(),
                                reason="needs Linux 5.14+ and root to set net.ipv4.tcp_migrate_req")
ROOT = BENCH.parent


@pytest.mark.parametrize("env, chosen", [
    ({"RENKEI_REUSE_PORT": "1"}, True), ({"RENKEI_REUSE_PORT": "0"}, False),
    ({"RENKEI_REUSE_PORT": "1", "RENKEI_REUSE_PORT_CHOSEN": "0"}, False),  # a reload keeps the master's choice
    ({"RENKEI_REUSE_PORT": "0", "RENKEI_REUSE_PORT_CHOSEN": "1"}, True)])
def test_the_override_decides_and_a_choice_once_made_is_kept(env, chosen, tmp_path):
    import json
    import subprocess

    script = "import json, os, runpy; conf = runpy.run_path('gunicorn.conf.py'); " \
             "print(json.dumps([conf['reuse_port'], os.environ['RENKEI_REUSE_PORT_CHOSEN']]))"
    base = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_REUSE_PORT")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**base, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), **env})
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [chosen, "1" if chosen else "0"]


@contextlib.contextmanager
def migrate_req(value: str, reuse_port: str | None = None):
    """The host's tcp_migrate_req set to `value` (and RENKEI_REUSE_PORT to `reuse_port`, or unset) for
    the block, put back after it."""
    original, env = SETTING.read_text().strip(), os.environ.pop("RENKEI_REUSE_PORT", None)
    SETTING.write_text(value)
    if reuse_port is not None:
        os.environ["RENKEI_REUSE_PORT"] = reuse_port
    try:
        yield
    finally:
        SETTING.write_text(original)
        os.environ.pop("RENKEI_REUSE_PORT", None)
        if env is not None:
            os.environ["RENKEI_REUSE_PORT"] = env


def listening(server, port: int) -> tuple[bool, list[bool]]:
    """Whether the master listens on `port`, and whether each worker does on a socket of its own."""
    states = harness._tcp_states(port)

    def listeners(pid) -> set[str]:
        return {inode for inode in harness._socket_inodes(pid) if states.get(inode) == "0A"}

    shared = listeners(server.pid)  # a shared socket is the master's, inherited by every worker
    return bool(shared), [bool(listeners(pid) - shared) for pid in harness._workers(server.pid)]


def _wait_for_workers(server, port: int, pids: set[str] = frozenset(), count: int = 2) -> None:
    """Until `count` workers, none of them in `pids` (the ones a reload replaces), serve on `port`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = harness._workers(server.pid)
        if len(workers) == count and not set(workers) & set(pids) and harness.all_listening(server.pid, port, count):
            return
        time.sleep(0.1)
    raise AssertionError(f"workers not ready: {harness._workers(server.pid)}")


def _serve(ws, args):
    return harness.serve(ws, args, "--graceful-timeout", "5")


ARGS = argparse.Namespace(database_url=None, workers=2, threads=4, worker_class="gthread")


@needs_root
@pytest.mark.parametrize("setting, override, per_worker", [
    ("1", None, True), ("0", None, False), ("1", "0", False), ("0", "1", True)])
def test_the_workers_listen_each_on_their_own_socket_only_where_the_host_migrates_queued_connections(
        setting, override, per_worker):
    with migrate_req(setting, override), harness.workspace(ARGS) as ws, _serve(ws, ARGS) as server:
        _wait_for_workers(server, ws.port)
        master, workers = listening(server, ws.port)
        assert (master, workers) == ((False, [True, True]) if per_worker else (True, [False, False]))
        conns = []
        try:
            for _ in range(16):
                conn = http.client.HTTPConnection("127.0.0.1", ws.port, timeout=30)
                conn.request("GET", harness.BARE_PATH)
                assert conn.getresponse().read() == b"ok"
                conns.append(conn)
            split = harness.connections_by_worker(server.pid, ws.port)
        finally:
            for conn in conns:
                conn.close()
        assert sum(split) == 16
        if per_worker:
            assert min(split) >= 1, split  # the kernel spread them: all 16 on one worker is 2 × 2⁻¹⁶


def _short_connections(port: int, deadline: float, results) -> None:
    """A client opening a new connection for every request until `deadline`: (answered, failed, first failure)."""
    answered = failed = 0
    first = ""
    while time.time() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", harness.BARE_PATH, headers={"Connection": "close"})
            response = conn.getresponse()
            if response.read() == b"ok" and response.status == 200:
                answered += 1
            else:
                failed += 1
                first = first or f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as error:
            failed += 1
            first = first or repr(error)
        finally:
            conn.close()
    results.put((answered, failed, first))


@needs_root
def test_reloading_the_workers_under_load_loses_no_connection():
    """Three HUP reloads (new workers start, the old ones stop) while 6 clients open a connection for
    every request: each request is answered. With a socket per worker and no migration the same run
    loses connections queued on a stopping worker's socket (bench/bench_reload.py: 79-119 in 6
    reloads at wrk's rate)."""
    with migrate_req("1"), harness.workspace(ARGS) as ws, _serve(ws, ARGS) as server:
        _wait_for_workers(server, ws.port)
        assert listening(server, ws.port) == (False, [True, True])
        results = multiprocessing.Queue()
        deadline = time.time() + 9
        clients = [multiprocessing.Process(target=_short_connections, args=(ws.port, deadline, results))
                   for _ in range(6)]
        for client in clients:
            client.start()
        for _ in range(3):
            time.sleep(2)
            before = set(harness._workers(server.pid))
            os.kill(server.pid, signal.SIGHUP)
            _wait_for_workers(server, ws.port, before)
        outcomes = [results.get(timeout=60) for _ in clients]
        for client in clients:
            client.join(timeout=30)
    answered = sum(a for a, _, _ in outcomes)
    failed = [(f, first) for _, f, first in outcomes if f]
    assert failed == [] and answered > 1000, (answered, failed)


@needs_root
def test_a_reload_keeps_how_the_workers_listen_when_the_hosts_setting_changed_meanwhile():
    """The choice is made once per master: new workers that listened otherwise than the old ones
    could not bind beside them (a shared socket holds the port without SO_REUSEPORT)."""
    with migrate_req("1"), harness.workspace(ARGS) as ws, _serve(ws, ARGS) as server:
        _wait_for_workers(server, ws.port)
        assert listening(server, ws.port) == (False, [True, True])
        SETTING.write_text("0")
        before = set(harness._workers(server.pid))
        os.kill(server.pid, signal.SIGHUP)
        _wait_for_workers(server, ws.port, before)
        assert listening(server, ws.port) == (False, [True, True])
        conn = http.client.HTTPConnection("127.0.0.1", ws.port, timeout=30)
        conn.request("GET", harness.BARE_PATH)
        assert conn.getresponse().read() == b"ok"
        conn.close()
