"""Benchmark: connections lost while gunicorn reloads its workers (HUP), by how the workers listen.

    python bench/bench_reload.py [--seconds 16] [--reloads 6] [--connections 32]

wrk opens a new connection for every request (`Connection: close`) to `/healthz` while the master is
sent HUP every --seconds / (--reloads + 1) seconds: each HUP starts new workers and stops the old
ones. Three ways, each a server of its own:
- one listening socket shared by the workers (gunicorn's default);
- a socket per worker (SO_REUSEPORT) with `net.ipv4.tcp_migrate_req=0`: a stopping worker's socket
  is closed with connections the kernel queued on it;
- the same with `net.ipv4.tcp_migrate_req=1`: Linux moves those to another worker's socket.

A socket per worker is gunicorn's `--reuse-port`.
Printed: requests answered and wrk's socket errors (a reset connection is a read error) for each.
Changing the setting needs root; without it, only the ways the host's setting allows are run.
The setting is put back as it was.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import time

import harness

SETTING = "/proc/sys/net/ipv4/tcp_migrate_req"
WAYS = (("one shared socket", "0", None), ("a socket per worker, no migration", "1", "0"),
        ("a socket per worker, tcp_migrate_req=1", "1", "1"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=16)
    parser.add_argument("--reloads", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    args.database_url, args.worker_class = None, "gthread"

    with open(SETTING, encoding="ascii") as f:
        original = f.read().strip()
    print(f"# gunicorn gthread {args.workers}x{args.threads}, wrk -c{args.connections} `Connection: close` to /healthz, "
          f"{args.reloads} HUP reloads in {args.seconds:g} s; the host's tcp_migrate_req: {original}")
    print("| workers listen on | requests | wrk's socket errors |\n|---|---|---|")
    try:
        for label, reuse, migrate in WAYS:
            if migrate is not None and migrate != original and not _set(migrate):
                print(f"| {label} | (not run: cannot set tcp_migrate_req without root) | |")
                continue
            requests, errors = _run(args, reuse)
            print(f"| {label} | {requests:,} | {errors} |")
    finally:
        _set(original)
    return 0


def _set(value: str) -> bool:
    try:
        with open(SETTING, "w", encoding="ascii") as f:
            f.write(value)
        return True
    except OSError:
        return False


def _run(args: argparse.Namespace, reuse: str) -> tuple[int, str]:
    with harness.workspace(args) as ws:
        from webapp import create_app, db

        db.create_all(create_app(ws.app_config()))
        with harness.serve(ws, args, "--graceful-timeout", "5", *(["--reuse-port"] if reuse == "1" else [])) as server:
            wrk = subprocess.Popen(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds:g}s", "-H",
                                    "Connection: close", f"{ws.origin}{harness.BARE_PATH}"],
                                   stdout=subprocess.PIPE, text=True)
            pause = args.seconds / (args.reloads + 1)
            for _ in range(args.reloads):
                time.sleep(pause)
                os.kill(server.pid, signal.SIGHUP)
            out = wrk.communicate()[0]
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    return requests, errors.group(1) if errors else "none"


if __name__ == "__main__":
    raise SystemExit(main())
