"""SQLite's writers queue between processes on a file lock (webapp/db.py `_WriteGate`, `_FileLock`).

gunicorn's workers, the mail and webhook workers each write the same SQLite file. Before, only the
threads of one process queued on a lock of their own; across processes they met SQLite's busy
handler, which sleeps 1, 2, 5 … 100 ms between tries and lost the write lock again and again to the
other process's next writer (the flow benchmark's 0.9–1.9 s tails, bench/README "Round 7"). These
tests use real processes: the claim is about them. The gate is SQLite's alone, so they run once,
in the SQLite pass.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

import conftest
from webapp import db

ROOT = Path(__file__).resolve().parent.parent

# Another process of the product: makes the engine as a worker does, takes its write gate (not a
# transaction: SQLite's own lock stays free, so only the gate can hold a writer back), and answers.
HOLDER = textwrap.dedent("""
    import os, signal, sys
    from webapp import db

    engine = db.make_engine(sys.argv[1])
    gate, info = db._WRITE_GATES[engine], {}
    gate.enter(info)
    print("held" if info else "not held", flush=True)
    for line in sys.stdin:
        if line.strip() == "leave":
            gate.leave(info)
            print("left", flush=True)
        elif line.strip() == "die":
            os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.fixture(autouse=True)
def _sqlite_pass_only():
    if conftest.ENGINES != "sqlite":
        pytest.skip("the write gate is SQLite's: PostgreSQL has row locks")


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'gate.sqlite3'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))
    engine.dispose()
    return url


class Holder:
    """A second process holding the gate of the same database."""

    def __init__(self, url: str):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=ROOT, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.said = self.process.stdout.readline().strip()

    def tell(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def holder(url):
    made = []

    def make() -> Holder:
        made.append(Holder(url))
        return made[-1]

    yield make
    for one in made:
        one.close()


def increment_in_background(url: str) -> tuple[threading.Thread, dict]:
    """A write transaction of this process, on a thread; `done` gets the time it committed."""
    engine = db.make_engine(url)
    done: dict = {}

    def run():
        with engine.begin() as conn:
            conn.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        done["at"] = time.monotonic()
        engine.dispose()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def count(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
    finally:
        engine.dispose()


def test_a_write_waits_while_another_process_holds_the_gate_and_goes_when_it_lets_go(url, holder):
    other = holder()
    assert other.said == "held"
    thread, done = increment_in_background(url)
    thread.join(0.5)
    assert "at" not in done  # SQLite's lock is free: the other process's gate alone holds it back
    assert other.tell("leave") == "left"
    thread.join(10)
    assert "at" in done and count(url) == 1


def test_a_dead_holders_gate_is_dropped_with_its_process(url, holder):
    other = holder()
    assert other.said == "held"
    thread, done = increment_in_background(url)
    thread.join(0.3)
    assert "at" not in done
    other.process.send_signal(signal.SIGKILL)  # a worker killed mid-transaction: the kernel lets go
    thread.join(10)
    assert "at" in done and count(url) == 1


def test_a_writer_that_waited_its_timeout_goes_on_to_sqlites_lock_and_leaves_the_gate_free(url, holder):
    other = holder()
    engine = db.make_engine(url)
    gate = db._WRITE_GATES[engine]
    gate._timeout = 0.3
    info: dict = {}
    started = time.monotonic()
    gate.enter(info)
    assert info == {} and time.monotonic() - started >= 0.3  # not held: SQLite's own lock decides, as before
    with engine.begin() as conn:  # which is free here, so the write goes through
        conn.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
    assert count(url) == 1
    assert other.tell("leave") == "left"
    # this process's locker thread took the lock when it came free, found no one waiting, let it go
    third = holder()
    assert third.said == "held"
    assert third.tell("leave") == "left"
    engine.dispose()


def _take_in_child(lock, answer):
    answer.put(lock.acquire(0.3))


def test_a_forked_child_does_not_share_its_parents_hold(url):
    """gunicorn forks its workers from the master: a child with the parent's descriptor would share
    its open file, which flock takes for the same holder, and walk past the parent's hold."""
    engine = db.make_engine(url)
    lock = db._WRITE_GATES[engine]._file
    assert lock.acquire(1)  # the parent holds it, on a descriptor opened before the fork
    context = multiprocessing.get_context("fork")
    answer = context.Queue()
    child = context.Process(target=_take_in_child, args=(lock, answer))
    child.start()
    try:
        assert answer.get(timeout=30) is False  # the child waited its 0.3 s and did not get it
    finally:
        child.join(30)
        lock.release()
        engine.dispose()


INCREMENTS = textwrap.dedent("""
    import sys
    from sqlalchemy import text
    from webapp import db

    engine = db.make_engine(sys.argv[1])
    for _ in range(int(sys.argv[2])):
        with engine.begin() as conn:
            n = conn.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
            conn.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
""")


def test_writers_of_several_processes_all_commit(url):
    """Four processes, 100 write transactions each (a read, then a write: the gate is taken at the
    first write): none fails with 'database is locked', none is lost."""
    processes = [subprocess.Popen([sys.executable, "-c", INCREMENTS, url, "100"], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
    assert count(url) == 400


def test_an_in_memory_database_has_no_gate_file(tmp_path):
    assert db._gate_file(":memory:") is None and db._gate_file(None) is None
    assert db._gate_file("file:x?mode=memory&uri=true") is None
    assert db._gate_file(str(tmp_path / "a.sqlite3")) == str(tmp_path / "a.sqlite3") + "-writers.lock"


def test_the_gate_file_cannot_be_made_writers_still_queue_on_sqlites_lock(tmp_path, caplog):
    os.chmod(tmp_path, 0o500)  # a directory the app may read but not write: no lock file there
    try:
        gate = db._WriteGate(timeout=1, path=str(tmp_path / "gate.sqlite3-writers.lock"))
        info: dict = {}
        if os.geteuid() == 0:  # root writes anywhere: make the open fail another way
            gate._file._path = str(tmp_path / "missing" / "x.lock")
        gate.enter(info)
        assert info  # this process's thread lock still queues its writers
        gate.leave(info)
        assert "no write gate between processes" in caplog.text
    finally:
        os.chmod(tmp_path, 0o700)
