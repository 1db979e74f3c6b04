"""gunicorn makes the app once, in the master, and forks the workers from it (gunicorn.conf.py:
preload_app, gc.freeze before each fork; issue 13: each worker's PSS ~10-25 MB lower).

That is safe only while making the app opens no connection and starts no thread: a database or Redis
socket opened in the master would be shared by every worker (two processes talking on one socket), a
thread would not exist in them. The workers' own requests are tested through the real server
(tests/test_faults.py, test_security_processes.py, test_ops_processes.py run gunicorn with this
configuration, bench/harness.py)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import conftest

ROOT = pathlib.Path(__file__).resolve().parent.parent

MAKE_APP = textwrap.dedent("""\
    import json, socket, sys, threading
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    opened = []
    event.listen(Engine, "connect", lambda *args: opened.append("database"))
    real_connect = socket.socket.connect

    def connect(self, address):
        opened.append(f"socket {address}")
        return real_connect(self, address)

    socket.socket.connect = connect
    from webapp import create_app

    create_app({"SECRET_KEY": "s" * 32, "DATABASE_URL": sys.argv[1], "REDIS_URL": sys.argv[2] or None,
                "BASE_URL": "https://renkei.test", "SANDBOX": False, "TELEPHONY_AUTH_TOKEN": "t" * 20})
    print(json.dumps({"opened": opened, "threads": [t.name for t in threading.enumerate()]}))
""")


def test_making_the_app_opens_no_connection_and_starts_no_thread(database_url):
    result = subprocess.run([sys.executable, "-c", MAKE_APP, database_url, conftest.REDIS_URL or ""],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    made = json.loads(result.stdout.strip().splitlines()[-1])
    assert made == {"opened": [], "threads": ["MainThread"]}


def test_gunicorn_preloads_the_app_and_freezes_it_before_each_fork(tmp_path):
    script = textwrap.dedent("""\
        import gc, json, runpy
        conf = runpy.run_path("gunicorn.conf.py")
        conf["pre_fork"](None, None)
        print(json.dumps({"preload_app": conf["preload_app"], "frozen": gc.get_freeze_count()}))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}  # else the file makes a temporary one
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    conf = json.loads(result.stdout.strip().splitlines()[-1])
    assert conf["preload_app"] is True
    assert conf["frozen"] > 10_000  # the interpreter's and the config's objects: none left for a worker's collector
