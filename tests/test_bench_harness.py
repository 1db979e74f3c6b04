"""The benchmarks' server CPU figure (bench/harness.py `server_cpu`): what gunicorn's master and
workers used, read from /proc, so that bench_screens' CPU a request counts the server's work and
not the load generator's or anything else running on the machine."""
import argparse
import http.client
import os
import pathlib
import sys
import time

import pytest

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


def _open_keep_alive(port: int, n: int) -> list[http.client.HTTPConnection]:
    conns = []
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", harness.BARE_PATH)
        assert conn.getresponse().read() == b"ok"
        conns.append(conn)
    return conns


@pytest.mark.parametrize("reuse_port", [False, True])
def test_connections_by_worker_finds_each_keep_alive_connection_on_the_worker_holding_it(reuse_port):
    """bench_screens and bench_api print, for each phase, how its connections lay across the workers
    (harness.connections_by_worker, from /proc). Under --reuse-port each worker listens on its own
    socket and serve() waits for all of them: 16 connections then reach both workers."""
    args = argparse.Namespace(database_url=None, workers=2, threads=2)
    with harness.workspace(args) as ws, harness.serve(ws, args, *(["--reuse-port"] if reuse_port else [])) as server:
        deadline = time.monotonic() + 30  # by default serve() returns once the master listens: a worker may still boot
        while len(harness.worker_cpu(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        conns = _open_keep_alive(ws.port, 16)
        try:
            split = harness.connections_by_worker(server.pid, ws.port)
        finally:
            for conn in conns:
                conn.close()
        assert len(split) == 2 and sum(split) == 16, split
        if reuse_port:
            assert min(split) >= 1, split  # all 16 on one worker: 2 × 2⁻¹⁶ by chance
        deadline = time.monotonic() + 10
        while sum(harness.connections_by_worker(server.pid, ws.port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert harness.connections_by_worker(server.pid, ws.port) == [0, 0]  # closed ones are not counted


def test_bench_flow_reads_each_steps_time_inside_gunicorn_from_its_access_log():
    """bench_flow --server-times: the access log's request time, by step (the screen's path, its method)."""
    import bench_flow

    args = argparse.Namespace(database_url=None, workers=1, threads=2)
    with harness.workspace(args) as ws:
        access = str(ws.tenants_dir.parent / "access.log")
        with harness.serve(ws, args, "--access-logfile", access, "--access-logformat", bench_flow.ACCESS_FORMAT):
            conn = http.client.HTTPConnection("127.0.0.1", ws.port, timeout=30)
            for method, path in [("GET", "/amami/flow/account"), ("POST", "/amami/flow/pin"),
                                 ("GET", "/amami/api/v1/accounts"), ("GET", harness.BARE_PATH)]:
                conn.request(method, path, body=b"" if method == "POST" else None)
                conn.getresponse().read()
            conn.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(open(access).readlines()) < 4:
                time.sleep(0.1)
        times = bench_flow.server_times(access)
    assert sorted(times) == ["API /accounts", "① GET", "⑤ POST"]  # /healthz is no step of the flow
    assert all(len(values) == 1 and 0 < values[0] < 30 for values in times.values())


@pytest.mark.postgres
def test_services_cpu_counts_the_database_servers_work_even_of_a_backend_that_ended(pg_url):
    """bench_flow --engines postgres also prints PostgreSQL's and Redis's CPU a flow: the cores the
    server is measured on serve them too. A backend's CPU still counts after its connection closed."""
    import psycopg

    before = harness.services_cpu()["PostgreSQL"]
    with psycopg.connect(pg_url) as conn:  # a backend of its own, ended when the block ends
        started = time.process_time()
        conn.execute("SELECT count(*) FROM generate_series(1, 4000000)").fetchone()
        assert time.process_time() - started < 0.05  # the work was the server's, not this process's
    deadline = time.monotonic() + 10
    used = harness.services_cpu()["PostgreSQL"] - before
    while used < 0.1 and time.monotonic() < deadline:  # the postmaster reaps the backend a moment later
        time.sleep(0.1)
        used = harness.services_cpu()["PostgreSQL"] - before
    assert used >= 0.1  # 4 million rows counted: a few hundred ms of a core


def test_stopping_the_server_ends_a_worker_that_missed_the_masters_signal(tmp_path):
    """A worker still starting when gunicorn's master passes SIGTERM on never sees it (it runs the
    master's handler it inherited); the master would wait out its 30 s graceful timeout. harness.stop
    tells such workers again, so the process tests end in seconds, not in a TimeoutExpired."""
    hooks = tmp_path / "slow_second_worker.py"
    hooks.write_text("import time\n\n\ndef post_fork(server, worker):\n"
                     "    if worker.age == 2:\n        time.sleep(3)  # forked, its signal handlers not set yet\n")
    args = argparse.Namespace(database_url=None, workers=2, threads=1)
    with harness.workspace(args) as ws:
        with harness.serve(ws, args, "--config", str(hooks)) as server:
            deadline = time.monotonic() + 30
            while len(harness.worker_cpu(server.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.monotonic()  # the second worker is asleep in post_fork: the signal is lost on it
        stopped_in = time.monotonic() - started
    assert server.returncode is not None and stopped_in < 20


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_the_pace_figure_is_cpu_time_so_other_work_on_the_cores_does_not_lengthen_it():
    """bench_flow and bench_screens print the box's pace (harness.pace_ms) so that CPU figures of runs
    at different moments can be compared. What else runs meanwhile must not move it: four processes
    spinning on the two cores make the same workload take 2-3 times as long by the clock."""
    import multiprocessing

    # The middle of three: one measured while something else ran (CI's own load) would set the bar
    # wrong for both checks below (seen: 89 ms against the box's 50).
    alone = sorted(harness.pace_ms() for _ in range(3))[1]
    spinners = [multiprocessing.Process(target=_spin, args=(20,)) for _ in range(2 * (os.cpu_count() or 1))]
    for p in spinners:
        p.start()
    try:
        started = time.perf_counter()
        crowded = harness.pace_ms()
        wall = (time.perf_counter() - started) * 1000
    finally:
        for p in spinners:
            p.terminate()
            p.join()
    assert wall > 1.5 * 5 * alone  # five runs of the workload, slowed by the clock
    assert crowded < 1.4 * alone, (alone, crowded)


@pytest.mark.postgres
@pytest.mark.parametrize("writes", ["core", "dbapi", "pipeline"])
def test_the_floors_steps_send_the_commands_of_the_flows_steps_they_stand_for(writes, pg_url, request, monkeypatch):
    """bench_floor.py's figure is a floor under bench_flow.py's only while each of its requests makes
    the round trips the product's step makes: counted here the way profile_flow.py counted the
    product's (its round_trips, from a profile), for every step of FLOW, on PostgreSQL and Redis. In
    pipeline mode a transaction's BEGIN, statements and COMMIT go out together, which that count does
    not tell apart: there the statements (psycopg's executes) and the Redis counts are checked. Every
    mode commits each transaction's log row."""
    import cProfile
    import pstats

    import bench_floor
    import floor_app
    import profile_flow

    floor_app.prepare(pg_url)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("FLASK_REDIS_URL", request.config.getoption("--redis-url"))
    monkeypatch.setenv("FLASK_FLOOR_WRITES", writes)
    app = floor_app.create()
    web = app.test_client()
    for step in bench_floor.FLOW:
        method, path = bench_floor.path(step).split(":", 1)
        assert web.open(path, method=method).status_code == 200  # warm: the pool's connection, the script
        profile = cProfile.Profile()
        profile.enable()
        answer = web.open(path, method=method)
        profile.disable()
        assert answer.status_code == 200 and len(answer.data) == 2048
        stats = pstats.Stats(profile)
        if writes == "pipeline":
            executes = sum(ncalls for (path_, _line, name), (_cc, ncalls, *_rest) in stats.stats.items()
                           if path_.replace("\\", "/").endswith("/psycopg/cursor.py") and name == "execute")
            assert executes == step[3] + sum(step[4]), step[0]
            assert profile_flow.round_trips(stats)[1] == step[2], step[0]
        else:
            assert profile_flow.round_trips(stats) == (bench_floor.commands(step), step[2]), step[0]
    from sqlalchemy import func, select

    from webapp.db import make_engine

    engine = make_engine(pg_url)
    with engine.connect() as conn:  # each transaction ended with its log row, committed
        logged = conn.execute(select(func.count()).select_from(floor_app.log)).scalar_one()
    engine.dispose()
    assert logged == 2 * sum(len(step[4]) for step in bench_floor.FLOW)
