"""What every benchmark here shares: gunicorn gthread on loopback, a keep-alive load generator,
and the figures it prints (a bare route next to the endpoint under test, and their ratio).

A benchmark script parses `arguments()`, opens a `workspace()` (a temp directory with the unions'
configuration minus the maintenance calendars, a database, a free port), seeds what its endpoint
needs with `workspace.app_config()`, then under `serve()` measures with `compare()` and prints with
`report()`. The bare route and the endpoint are measured alternately, --rounds pairs, so that other
load on the machine hits both alike; the clients are separate processes (keep-alive connections)
so the load generator does not share one GIL with itself, and each records every request's latency
(an array of floats, sent back once) for the p50/p99 figures. The load-shedding ceilings (service-wide
and per address) are lifted, so a run never meets a 429 from them.
"""
from __future__ import annotations

import argparse
import array
import contextlib
import dataclasses
import http.client
import json
import math
import multiprocessing
import os
import pathlib
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-" + secrets.token_hex(24)
TOKEN = "bench-" + secrets.token_hex(12)
BARE_PATH = "/healthz"


def arguments(doc: str, endpoint: str) -> argparse.Namespace:
    """The command line every benchmark takes; `endpoint` names the measured path in --help."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured phase")
    parser.add_argument("--rounds", type=int, default=3, help=f"pairs of phases (bare, {endpoint})")
    parser.add_argument("--concurrency", type=int, default=4, help="client processes (one connection each)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    return parser.parse_args()


def register_app(app, tenant: str = "amami", redirect_uri: str = "https://app.example/cb") -> dict:
    """The benchmark's fintech app, registered through the CLI: {"client_id", "client_secret"}."""
    import json

    result = app.test_cli_runner().invoke(args=["clients", "add", "--tenant", tenant, "--name", "Bench App",
                                                "--operator", "Bench K.K.", "--redirect-uri", redirect_uri])
    return json.loads(result.output)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tenants_without_maintenance(folder: pathlib.Path) -> None:
    """Copy the unions' configuration, cut before the first [[maintenance]] table (they come last)."""
    for path in (ROOT / "webapp" / "tenants").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        cut = text.find("[[maintenance]]")
        (folder / path.name).write_text(text if cut < 0 else text[:cut], encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class Workspace:
    tenants_dir: pathlib.Path
    database_url: str
    port: int
    settings: dict  # app settings the benchmark needs, the same for its seeding app and for gunicorn

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def engine(self) -> str:
        return self.database_url.split(":", 1)[0]

    def app_config(self, **extra) -> dict:
        """Configuration for `create_app()` in this process (seeding), matching the server's."""
        return {"SECRET_KEY": SECRET, "DATABASE_URL": self.database_url, "BASE_URL": self.origin,
                "TENANTS_DIR": str(self.tenants_dir), "TELEPHONY_AUTH_TOKEN": TOKEN, **self.settings, **extra}

    def server_env(self) -> dict:
        """The same configuration as the environment gunicorn's `create_app()` reads (`FLASK_*`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_URL", "REDIS_URL"))}
        env.update(DATABASE_URL=self.database_url, FLASK_SECRET_KEY=SECRET, FLASK_TELEPHONY_AUTH_TOKEN=TOKEN,
                   FLASK_TENANTS_DIR=str(self.tenants_dir), FLASK_BASE_URL=self.origin,
                   FLASK_GLOBAL_REQUEST_LIMIT="100000000 per second", FLASK_REQUESTS_PER_IP="100000000 per second",
                   FLASK_TOKEN_REQUESTS_PER_CLIENT="100000000 per second")
        env.update({f"FLASK_{k}": str(v) for k, v in self.settings.items()})
        return env


@contextlib.contextmanager
def workspace(args: argparse.Namespace, **settings) -> Iterator[Workspace]:
    """A temp directory holding the tenants' configuration, and a database: a SQLite file in it, or
    with --database-url (PostgreSQL) a scratch database made beside that one and dropped after, so a
    run neither meets nor leaves another run's rows (a second run seeding into the same database
    failed on its unique keys). The database the server uses is `ws.database_url`, never the one
    given: whatever acts on it (tests/test_faults.py takes it away) must use that."""
    with tempfile.TemporaryDirectory(prefix="renkei-bench-") as tmp, \
            scratch_beside(args.database_url) as database_url:
        tmp = pathlib.Path(tmp)
        tenants_dir = tmp / "tenants"
        tenants_dir.mkdir()
        tenants_without_maintenance(tenants_dir)
        yield Workspace(tenants_dir=tenants_dir, database_url=database_url or f"sqlite:///{tmp / 'bench.sqlite3'}",
                        port=free_port(), settings=settings)


@contextlib.contextmanager
def scratch_beside(url: str | None) -> Iterator[str | None]:
    """`url` as it is, unless it is PostgreSQL's: then a scratch database on its server, dropped after."""
    if not url or not url.startswith("postgresql"):
        yield url
        return
    scratch = scratch_database(url)
    try:
        yield scratch
    finally:
        drop_database(scratch)


def _connect(url: str, database: str | None = None):
    """psycopg's connection to `database` on `url`'s server, which may be a Unix socket
    (`postgresql://postgres@/test?host=/var/run/postgresql`, SQLAlchemy's form)."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(dbname=database or u.database, user=u.username, password=u.password,
                           host=u.query.get("host") or u.host, port=u.port, autocommit=True)


def scratch_database(url: str) -> str:
    """A new empty database on `url`'s server: its URL."""
    from sqlalchemy.engine import make_url

    name = "renkei_bench_" + secrets.token_hex(4)
    with _connect(url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    with _connect(url, "postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


@contextlib.contextmanager
def serve(ws: Workspace, args: argparse.Namespace, *extra: str,
          app: str = "webapp:create_app()") -> Iterator[subprocess.Popen]:
    """gunicorn (--worker-class, default gthread; --workers x --threads) serving `app` (the product's
    by default) on ws.port until the block ends; `extra` are more gunicorn options (e.g. "--access-logfile", path).
    Yields gunicorn's master process (tests/test_faults.py kills it and its workers)."""
    worker_class = getattr(args, "worker_class", "gthread")
    # gunicorn turns a sync worker with more than one thread into gthread: sync means one thread.
    threads = 1 if worker_class == "sync" else args.threads
    # -OO as the Procfile runs it (no docstrings in a worker's memory, issue 13)
    command = [sys.executable, "-OO", "-m", "gunicorn", "--workers", str(args.workers), "--worker-class", worker_class,
               "--threads", str(threads), "--bind", f"127.0.0.1:{ws.port}", "--log-level", "warning"]
    try:
        from importlib.metadata import version

        if int(version("gunicorn").split(".")[0]) >= 27:
            command.append("--no-control-socket")  # one per user: a running demo would clash
    except Exception:  # pragma: no cover - version unknown: leave the default
        pass
    server = subprocess.Popen([*command, *extra, app], cwd=ROOT, env=ws.server_env())
    try:
        # The master loads the app before it listens (preload_app): on a busy machine that has taken
        # over 10 s, and a benchmark or process test then met "connection refused". Wait up to 60 s,
        # and stop at once if gunicorn exits.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", ws.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        # Under --reuse-port each worker listens on a socket of its own, made when it boots: until the
        # last one has, the kernel hands every new connection to those already there.
        while time.monotonic() < deadline and server.poll() is None and not all_listening(server.pid, ws.port, args.workers):
            time.sleep(0.1)
        yield server
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to gunicorn's master, which passes it to its workers once. A worker still starting in
    that instant (forked, its own handlers not yet set) takes the signal with the master's handler it
    inherited and never sees it: it would serve on until the master's graceful timeout (30 s) killed
    it, on a loaded machine now and then (tests/test_security_processes.py met it in CI). So after
    10 s the workers still there are told again, themselves."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):  # the master ended meanwhile
            for child in pathlib.Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(child), signal.SIGTERM)
        server.wait(timeout=40)


def _socket_inodes(pid: int | str) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):  # a process that exited meanwhile
        for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _tcp_states(port: int) -> dict[str, str]:
    """inode → TCP state (01 established, 0A listening) of this machine's sockets whose local port is `port`."""
    states = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in pathlib.Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    states[fields[9]] = fields[3]
    return states


def _workers(master_pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return pathlib.Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return []


def all_listening(master_pid: int, port: int, workers: int) -> bool:
    """The master listens for its workers (gunicorn's default), or each of `workers` has its own listener."""
    states = _tcp_states(port)

    def listens(pid) -> bool:
        return any(states.get(inode) == "0A" for inode in _socket_inodes(pid))

    return listens(master_pid) or sum(listens(pid) for pid in _workers(master_pid)) >= workers


def connections_by_worker(master_pid: int, port: int) -> list[int]:
    """How many client connections on `port` each gunicorn worker holds now, most first. With keep-alive
    clients a connection stays with the worker that accepted it: wrk's 16 connections, opened at once,
    have all gone to one of two workers about half the time, which then serves the phase alone on one
    core (its GIL) while the other idles. Benchmarks print this beside each phase."""
    states = _tcp_states(port)
    return sorted((sum(states.get(inode) == "01" for inode in _socket_inodes(pid)) for pid in _workers(master_pid)),
                  reverse=True)


def worker_cpu(master_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) each of the master's children (gunicorn's workers) has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for child in pathlib.Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):  # a worker that exited meanwhile
            fields = pathlib.Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            used[child] = (int(fields[11]) + int(fields[12])) / tick
    return used


def server_cpu(master_pid: int) -> float:
    """CPU seconds the master and its workers have used so far: what serving cost, whatever else ran."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = pathlib.Path(f"/proc/{master_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick + sum(worker_cpu(master_pid).values())


SERVICES = {"postgres": "PostgreSQL", "redis-server": "Redis"}


def services_cpu() -> dict[str, float]:
    """CPU seconds the machine's PostgreSQL and Redis processes have used so far (/proc: user + system,
    and what their reaped children used, so a backend that ended meanwhile still counts through its
    postmaster), by service; a service not running is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            text = stat.read_text()
            name = text[text.index("(") + 1:text.rindex(")")]
            service = SERVICES.get(name)
            if service is None:
                continue
            fields = text.rsplit(")", 1)[1].split()
            used[service] = used.get(service, 0.0) + sum(int(f) for f in fields[11:15]) / tick
    return used


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat): two readings
    give the share of the cores anything used meanwhile, the server and whatever else ran."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (total - idle) / tick, total / tick


def pace_ms() -> float:
    """This box's pace: the CPU time, in ms, of a fixed pure-Python workload (dict and string work, as a
    request's), best of five. Printed beside a benchmark's CPU figures, it shows whether the box itself
    was slower during a run. It does not explain every swing: in round 13 the same code's server CPU a
    flow ranged 40-53 ms (once 69) while the pace stayed at 38.5-40.8 ms (bench/README). CPU time, not
    wall time: what else runs on the cores does not lengthen it, a slower host does."""
    def workload() -> int:
        counts: dict[str, int] = {}
        total = 0
        for i in range(200_000):
            key = f"k{i % 1000}"
            counts[key] = counts.get(key, 0) + i
            total += len(key)
        return total

    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        workload()
        best = min(best, time.process_time() - started)
    return best * 1000


def figures_argument(parser: argparse.ArgumentParser) -> None:
    """--json FILE: the figures a benchmark prints, also as JSON, for bench/goals.py."""
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the figures printed here to FILE as JSON (bench/goals.py reads them)")


def write_figures(path: str | None, figures: dict) -> None:
    """Write `figures` (what the benchmark printed) to `path`, if one was given."""
    if path:
        pathlib.Path(path).write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")


def get(port: int, path: str, headers: dict) -> tuple[int, bytes]:
    """One request on its own connection: (status, body), to check the endpoint before measuring it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client(port: int, path: str, headers: dict, deadline: float, queue, method: str = "GET",
            body: bytes | None = None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    done = failed = size = 0
    latencies = array.array("d")  # seconds, one per request: cheap to append, cheap to send back
    clock = time.perf_counter
    while time.monotonic() < deadline:
        started = clock()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        latencies.append(clock() - started)
        if response.status != 200:
            failed += 1
        done += 1
        size += len(data)
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    queue.put((done, failed, size, latencies.tobytes()))


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))]


def measure(port: int, path: str, headers: dict, seconds: float, concurrency: int, *, method: str = "GET",
            body: bytes | None = None, background: list[tuple] = ()) -> dict:
    """`concurrency` keep-alive clients requesting `path` for `seconds`: requests, failed, rps, bytes a
    response, and latency p50/p99/max in ms. `background` are more (path, headers, concurrency, method,
    body) client groups running meanwhile (e.g. slow requests holding workers), not counted."""
    queue = multiprocessing.Queue()
    start = time.monotonic()
    deadline = start + seconds
    procs = [multiprocessing.Process(target=_client, args=(port, path, headers, deadline, queue, method, body))
             for _ in range(concurrency)]
    other_queue = multiprocessing.Queue()
    others = [multiprocessing.Process(target=_client, args=(port, b_path, b_headers, deadline, other_queue,
                                                           b_method, b_body))
              for b_path, b_headers, b_concurrency, b_method, b_body in background for _ in range(b_concurrency)]
    for p in procs + others:
        p.start()
    results = [queue.get() for _ in procs]
    other_results = [other_queue.get() for _ in others]
    for p in procs + others:
        p.join()
    elapsed = time.monotonic() - start
    done = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in array.array("d", r[3]))
    figures = {"requests": done, "failed": sum(r[1] for r in results), "rps": done / elapsed,
               "bytes_per_response": sum(r[2] for r in results) // max(done, 1),
               "p50_ms": percentile(latencies, 0.50) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
               "max_ms": (latencies[-1] * 1000) if latencies else 0.0}
    if others:
        figures["background_rps"] = sum(r[0] for r in other_results) / elapsed
    return figures


def compare(ws: Workspace, args: argparse.Namespace, path: str, headers: dict) -> list[tuple[dict, dict]]:
    """Warm both paths, then measure the bare route and `path` alternately: --rounds (bare, endpoint) pairs."""
    measure(ws.port, BARE_PATH, {}, 1.0, args.concurrency)
    measure(ws.port, path, headers, 1.0, args.concurrency)
    return [(measure(ws.port, BARE_PATH, {}, args.seconds, args.concurrency),
             measure(ws.port, path, headers, args.seconds, args.concurrency))
            for _ in range(max(args.rounds, 1))]


def report(ws: Workspace, args: argparse.Namespace, rounds: list[tuple[dict, dict]], *, short: str, label: str,
           setting: str = "") -> int:
    """Print the run's figures; the number of failed requests.

    `short` names the endpoint in the round lines and the ratio ("poll"), `label` in its own line
    ("④ status poll (waiting)"); `setting` adds to the first line what the endpoint was given.
    """
    bare_rps = statistics.median(b["rps"] for b, _ in rounds)
    rps = statistics.median(e["rps"] for _, e in rounds)
    ratio = statistics.median(e["rps"] / b["rps"] for b, e in rounds)
    failed = sum(b["failed"] + e["failed"] for b, e in rounds)
    bare_label, ratio_label = f"bare route {BARE_PATH}", f"ratio {short}/bare"
    width = max(len(bare_label), len(label), len(ratio_label)) + 1
    run = [f"gunicorn gthread {args.workers}x{args.threads}", f"{args.concurrency} keep-alive clients",
           f"{len(rounds)} round{'s' * (len(rounds) != 1)} of {args.seconds:g} s per phase", ws.engine]
    if setting:
        run.append(setting)
    print(", ".join(run))
    for i, (b, e) in enumerate(rounds, 1):
        print(f"  round {i}: bare {b['rps']:8.1f} req/s   {short} {e['rps']:8.1f} req/s   "
              f"ratio {e['rps'] / b['rps']:.3f}")
    print(f"{bare_label:{width}}: {bare_rps:8.1f} req/s (median; {sum(b['requests'] for b, _ in rounds):,} requests)")
    print(f"{label:{width}}: {rps:8.1f} req/s (median; {sum(e['requests'] for _, e in rounds):,} requests, "
          f"{rounds[0][1]['bytes_per_response']:,} bytes a response)")
    print(f"{ratio_label:{width}}: {ratio:.3f} (median of the rounds' ratios); {failed} failed requests")
    return failed
