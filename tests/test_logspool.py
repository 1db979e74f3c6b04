"""The account API's log rows on SQLite go through a spool file (webapp/logspool.py): each is in the
file before its answer, in operation_log once drained, never twice, and none is lost to a process
that dies, a drain that races another, a file rotated, a torn line or a full disk."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func
from sqlmodel import select

from webapp import clock, db, logspool, oplog
from webapp.oplog import OperationLog

from conftest import text_of
from staff_support import app_config, staff  # noqa: F401  (fixtures: fast hashing, amami's operator signed in)
from test_api_support import api  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def _spool(app) -> logspool.Spool:
    with app.app_context():
        spool = oplog._spool()
    if spool is None:
        pytest.skip("the spool is SQLite's: PostgreSQL commits each row in its call")
    return spool


def _details(app) -> list[str]:
    """operation_log's details as they stand, without draining."""
    with app.app_context(), db.engine().connect() as conn:
        return list(conn.execute(select(OperationLog.detail).order_by(OperationLog.id)).scalars())


def _lines(spool: logspool.Spool) -> list[bytes]:
    return [line for path in sorted(spool.directory.glob("*.jsonl")) for line in path.read_bytes().splitlines()]


def _row(app, detail: str) -> dict:
    with app.app_context():
        return oplog._row(tenant="amami", screen="API", event="accounts", result="ok", detail=detail)


def test_a_call_is_in_the_spool_before_its_answer_and_in_the_log_once_drained(api, monkeypatch):
    monkeypatch.setattr(logspool, "DRAIN_SECONDS", 3600)  # no drain by the calls themselves
    sent = str(uuid.uuid4())
    assert api.get("accounts", headers={"x-fapi-interaction-id": sent, "User-Agent": "アプリ/2.0"}).status_code == 200
    spool = _spool(api.app)
    assert [line for line in _lines(spool) if sent.encode() in line]
    assert not any(sent in (d or "") for d in _details(api.app))  # not in the table yet: the spool took it

    with api.app.app_context():
        oplog.drain()
        oplog.drain()  # a second drain finds nothing more
        row, = db.session().exec(select(OperationLog).where(OperationLog.detail.contains(sent))).all()
    assert (row.tenant, row.screen, row.event, row.result) == ("amami", "API", "accounts", "ok")
    assert (row.branch, row.account_number, row.user_agent) == ("115", "1100026", "アプリ/2.0")
    assert row.client_id and row.ip == "127.0.0.1"
    assert abs(clock.as_utc(row.at) - clock.now()) < dt.timedelta(minutes=1)


def test_the_writing_process_drains_its_own_file_a_moment_later_off_the_request_thread(api, monkeypatch):
    from test_faults import wait_for

    _spool(api.app)
    monkeypatch.setattr(logspool, "DRAIN_SECONDS", 0.05)
    for _ in range(3):
        sent = str(uuid.uuid4())
        api.get("accounts", headers={"x-fapi-interaction-id": sent})
        assert wait_for(lambda: any(sent in (d or "") for d in _details(api.app)), seconds=10)
        assert sum(sent in (d or "") for d in _details(api.app)) == 1
    drainers = [t for t in threading.enumerate() if t.name == "log-spool-drainer"]
    assert drainers and threading.current_thread() not in drainers


@pytest.mark.parametrize("page", ["log", "accounts/115/1/1100026"])
def test_the_staff_console_shows_a_call_answered_a_moment_before(api, staff, monkeypatch, page):
    """Staff read the log through pages that drain first: a call answered before the page shows,
    however long before the next drain was due."""
    monkeypatch.setattr(logspool, "DRAIN_SECONDS", 3600)
    sent = str(uuid.uuid4())
    api.get("accounts", headers={"x-fapi-interaction-id": sent})
    assert sent in text_of(staff.get(page))


def test_log_show_shows_a_call_answered_a_moment_before(api, monkeypatch):
    monkeypatch.setattr(logspool, "DRAIN_SECONDS", 3600)
    sent = str(uuid.uuid4())
    api.get("accounts", headers={"x-fapi-interaction-id": sent})
    result = api.app.test_cli_runner().invoke(args=["log", "show", "--tenant", "amami", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert sent in result.output


def test_the_mail_worker_drains_on_each_round(api, monkeypatch):
    """With no call and no reader to drain, the mail worker's round (each minute) moves the rows."""
    monkeypatch.setattr(logspool, "DRAIN_SECONDS", 3600)
    _spool(api.app)
    sent = str(uuid.uuid4())
    api.get("accounts", headers={"x-fapi-interaction-id": sent})
    assert not any(sent in (d or "") for d in _details(api.app))
    result = api.app.test_cli_runner().invoke(args=["mail", "send-pending"])
    assert result.exit_code == 0, result.output
    assert sum(sent in (d or "") for d in _details(api.app)) == 1


def test_a_spool_that_cannot_be_written_leaves_the_row_committed_in_the_call(api, monkeypatch, caplog):
    spool = _spool(api.app)

    def disk_full(self, values):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logspool.Spool, "append", disk_full)
    sent = str(uuid.uuid4())
    assert api.get("accounts", headers={"x-fapi-interaction-id": sent}).status_code == 200
    assert sum(sent in (d or "") for d in _details(api.app)) == 1
    assert not any(sent.encode() in line for line in _lines(spool))
    assert "log spool not written" in caplog.text


def test_a_short_write_raises_and_its_torn_line_is_never_drained(app, monkeypatch, caplog):
    spool = _spool(app)
    spool.append(_row(app, "before"))
    real_write = os.write

    def half(fd, data):
        return real_write(fd, data[:len(data) // 2])

    with monkeypatch.context() as patched:
        patched.setattr(logspool.os, "write", half)
        with pytest.raises(OSError, match="short write"):
            spool.append(_row(app, "torn"))
    spool.append(_row(app, "after"))  # in a new file: the torn line ended the old one
    assert len(list(spool.directory.glob("*.jsonl"))) == 2
    assert spool.drain() == 2
    assert _details(app) == ["before", "after"]
    assert "torn line, not kept" in caplog.text
    assert len(list(spool.directory.glob("*.jsonl"))) == 1  # the old one deleted, the live one kept


def test_files_done_with_are_drained_then_deleted_and_the_live_one_kept(app, monkeypatch):
    spool = _spool(app)
    monkeypatch.setattr(logspool, "ROTATE_BYTES", 1)  # a new file after every line
    for n in range(5):
        spool.append(_row(app, f"r{n}"))
    assert len(list(spool.directory.glob("*.jsonl"))) == 5
    assert spool.drain() == 5
    assert _details(app) == [f"r{n}" for n in range(5)]
    assert list(spool.directory.glob("*.jsonl")) == []
    with app.app_context(), db.engine().connect() as conn:
        assert conn.execute(select(logspool.spool_table.c.name)).scalars().all() == []
    monkeypatch.setattr(logspool, "ROTATE_BYTES", 1 << 20)
    spool.append(_row(app, "r5"))
    assert spool.drain() == 1 and len(_details(app)) == 6
    live, = spool.directory.glob("*.jsonl")  # this process's own, still open: kept
    spool.append(_row(app, "r6"))
    assert spool.drain() == 1 and list(spool.directory.glob("*.jsonl")) == [live]
    with app.app_context(), db.engine().connect() as conn:
        assert conn.execute(select(logspool.spool_table.c.drained)).scalars().all() == [live.stat().st_size]


def test_a_drain_between_a_files_creation_and_its_lock_does_not_take_it(app, monkeypatch):
    """Another process's drain running in the instant after this process made its new file and
    before it locked it: the file was taken for a dead writer's empty one and deleted, and the
    lines written to it next were lost (the process test below lost a file's worth 1 run in 2)."""
    import fcntl

    spool = _spool(app)
    other = logspool.Spool(spool.engine, spool.directory, OperationLog.__table__, oplog._SPOOLED)
    real_flock = fcntl.flock

    def drain_first(fd, operation):
        if operation == fcntl.LOCK_SH:
            other.drain()
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", drain_first)
    spool.append(_row(app, "first"))
    spool.append(_row(app, "second"))
    monkeypatch.undo()
    assert spool.drain() == 2 and _details(app) == ["first", "second"]


class _Killed(BaseException):
    """A process's end in the middle of its work, as no `except Exception` catches it."""


def _spool_names(app) -> list[str]:
    with app.app_context(), db.engine().connect() as conn:
        return conn.execute(select(logspool.spool_table.c.name)).scalars().all()


def test_a_length_row_left_by_a_deletion_that_never_committed_is_swept(app, monkeypatch):
    """A process killed after a drain deleted a finished file and before its transaction committed
    (CI: the process test below, 1 run in many) leaves the file's length row with no file: the next
    full drain deletes the row, and leaves the live file's."""
    spool = _spool(app)
    monkeypatch.setattr(logspool, "ROTATE_BYTES", 1)  # each line ends its file: finished, drained, deleted
    spool.append(_row(app, "done"))
    finished, = spool.directory.glob("*.jsonl")
    real_unlink = Path.unlink

    def killed_after_the_unlink(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        raise _Killed  # the transaction rolls back, as a killed process's does

    monkeypatch.setattr(Path, "unlink", killed_after_the_unlink)
    with pytest.raises(_Killed):
        spool.drain()
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert not finished.exists() and _spool_names(app) == [finished.name]  # the row outlived its file
    assert _details(app) == ["done"]

    monkeypatch.setattr(logspool, "ROTATE_BYTES", 1 << 20)
    spool.append(_row(app, "live"))
    live, = spool.directory.glob("*.jsonl")
    assert spool.drain() == 1
    assert _spool_names(app) == [live.name] and _details(app) == ["done", "live"]


def test_an_unnamed_file_left_by_a_process_that_died_making_it_is_swept(app):
    """A process that died between making its file and naming it leaves an empty `.new` file: once
    it is older than a minute and nobody holds its lock, a full drain deletes it. A younger one, or
    one whose maker holds it, is another process at work and stays."""
    import fcntl

    spool = _spool(app)
    spool.directory.mkdir(exist_ok=True)
    old_dead, young, held = (spool.directory / f"{n}-1-ab.jsonl.new" for n in (99997, 99998, 99999))
    for path in (old_dead, young, held):
        path.touch()
    minute_ago = dt.datetime.now().timestamp() - logspool.NEW_FILE_SECONDS - 5
    for path in (old_dead, held):
        os.utime(path, (minute_ago, minute_ago))
    holder = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_SH)
        spool.drain()
        assert sorted(p.name for p in spool.directory.iterdir()) == [young.name, held.name]
    finally:
        os.close(holder)
    spool.drain()
    assert sorted(p.name for p in spool.directory.iterdir()) == [young.name]


def test_a_dead_writers_file_with_a_torn_tail_keeps_its_whole_lines(app, caplog):
    spool = _spool(app)
    spool.directory.mkdir(exist_ok=True)
    dead = spool.directory / "99999-deadbeef.jsonl"
    lines = b"".join(spool.line(_row(app, d)) for d in ("d1", "d2"))
    dead.write_bytes(lines + b'{"at":"2026-11-')  # the machine stopped mid-line
    assert spool.drain() == 2
    assert _details(app) == ["d1", "d2"]
    assert not dead.exists()
    assert "torn line, not kept" in caplog.text


_WRITER = """
import os, signal, sys
from webapp import clock, db, logspool, oplog
logspool.DRAIN_SECONDS = 0  # the drainer thread drains again as soon as a line woke it
logspool.ROTATE_BYTES = 4096  # a new file every dozen lines: many finished files for the drainers to race on
engine = db.make_engine(sys.argv[1])
spool = logspool.Spool(engine, logspool.directory_for(engine), oplog.OperationLog.__table__, oplog._SPOOLED)
name, count, ending = sys.argv[2], int(sys.argv[3]), sys.argv[4]
for n in range(count):
    spool.append(dict(at=clock.now(), tenant="amami", screen="API", event="accounts", result="ok",
                      detail=f"{name}-{n}"))
    if ending == "killed" and n == count // 2 - 1:
        os.kill(os.getpid(), signal.SIGKILL)  # half its lines written, the rest never
print("done", flush=True)
os._exit(0)  # no last drain: what is left in its file waits for another process
"""

_DRAINER = """
import os, sys, time
from webapp import db, logspool, oplog
engine = db.make_engine(sys.argv[1])
spool = logspool.Spool(engine, logspool.directory_for(engine), oplog.OperationLog.__table__, oplog._SPOOLED)
while not os.path.exists(sys.argv[2]):
    spool.drain()
spool.drain()
"""


def test_processes_writing_draining_and_dying_log_every_line_once(app, database_url, tmp_path):
    """Three writer processes (one killed half-way, one ending without a last drain) and two drainer
    processes on one database: every line written is in operation_log exactly once, and every file
    of a dead process is deleted with its length row."""
    spool = _spool(app)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    stop = tmp_path / "stop"
    count = 300
    drainers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_DRAINER), database_url, str(stop)],
                                 env=env, cwd=ROOT) for _ in range(2)]
    writers = {name: subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), database_url, name, str(count),
                                       ending], env=env, cwd=ROOT, stdout=subprocess.PIPE)
               for name, ending in (("w0", "exit"), ("w1", "killed"), ("w2", "exit"))}
    for name, writer in writers.items():
        out, _ = writer.communicate(timeout=120)
        if name == "w1":
            assert writer.returncode == -signal.SIGKILL
        else:
            assert (writer.returncode, out.strip()) == (0, b"done")
    stop.touch()
    for drainer in drainers:
        assert drainer.wait(timeout=120) == 0
    spool.drain()

    details = _details(app)
    expected = [f"w0-{n}" for n in range(count)] + [f"w1-{n}" for n in range(count // 2)] + \
               [f"w2-{n}" for n in range(count)]
    missing = sorted(set(expected) - set(details), key=lambda d: (d[:2], int(d[3:])))
    extra = len(details) - len(set(details))
    assert (missing, extra) == ([], 0), (missing, extra)
    assert len(details) == len(expected) and sorted(details) == sorted(expected)
    assert list(spool.directory.glob("*.jsonl")) == []
    with app.app_context(), db.engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(logspool.spool_table)).scalar() == 0


def test_a_line_that_is_not_a_row_is_skipped_and_never_stops_its_files_drain(app, caplog):
    """Only append writes the spool, so this is a file damaged on disk: every line that SQLite could
    not store as it is (a list or object, an integer past 64 bits, no `at`) is logged and skipped,
    and the rows around it are drained; no drain of the file fails on it again and again."""
    spool = _spool(app)
    spool.directory.mkdir(exist_ok=True)
    damaged = spool.directory / "99996-1-cd.jsonl"
    good = [spool.line(_row(app, d)) for d in ("g1", "g2", "g3")]
    values = orjson.loads(good[0])
    bad = [orjson.dumps(changed) + b"\n" for changed in ({**values, "detail": ["a", "list"]},
                                                          {**values, "flow_id": 1 << 63},
                                                          {**values, "detail": {"an": "object"}},
                                                          {k: v for k, v in values.items() if k != "at"})]
    bad += [b'["a", "list"]\n', b'"text"\n', b"{not json\n"]
    damaged.write_bytes(good[0] + b"".join(bad[:4]) + good[1] + b"".join(bad[4:]) + good[2])
    assert spool.drain() == 3
    assert _details(app) == ["g1", "g2", "g3"] and not damaged.exists()
    assert caplog.text.count("is not a row, skipped") == len(bad)


def test_a_drained_row_is_stored_as_sqlalchemy_stores_it(app):
    """The drain inserts each line's values as the DB-API binds them: compared, column by column as
    SQLite keeps them, with the same rows inserted through SQLAlchemy."""
    from sqlalchemy import insert

    spool = _spool(app)
    awkward = ['"quoted" \\ back', "tab\there\nnew\r", "ｶﾅ 漢字 🏦 \u2028", "\x01\x1f", "", None]
    with app.test_request_context("/amami/api/v1/accounts", headers={"User-Agent": "アプリ/1.0 \"x\""}):
        rows = []
        for n, text in enumerate(awkward):
            clock.set_now(dt.datetime(2026, 11, 18, 1, 2, 3, 456789 if n % 2 else 0, tzinfo=clock.JST))
            rows.append(oplog._row(tenant="amami", screen="API", event="accounts", result="ok", detail=text,
                                   client_id=text, branch="115", account_type="1", account_number="1100026"))
        rows[0]["flow_id"] = 2**40
        clock.set_now(None)
        for row in rows:
            spool.append(row)
        assert spool.drain() == len(rows)
        with db.engine().begin() as conn:
            conn.execute(insert(OperationLog), rows)
        with db.engine().connect() as conn:
            stored = conn.exec_driver_sql("SELECT * FROM operation_log ORDER BY id").all()
    drained, reference = [tuple(r)[1:] for r in stored[:len(rows)]], [tuple(r)[1:] for r in stored[len(rows):]]
    assert drained == reference
    assert stored[0].at == "2026-11-17 16:02:03.000000" and stored[1].at == "2026-11-17 16:02:03.456789"
    assert stored[0].flow_id == 2**40 and stored[5].detail is None and stored[4].detail == ""


def test_every_call_a_real_server_answered_is_logged_once_though_its_workers_are_killed(app):
    """gunicorn with two workers (as the Procfile), clients calling all along: one worker SIGKILLed
    (the master starts another), then the whole server. Every call that got its answer is in the log
    once after a drain, and the dead workers' files are gone."""
    import argparse

    import requests

    sys.path.insert(0, str(ROOT / "bench"))
    import harness
    from bench_transactions import seed
    from test_faults import children, kill_server, wait_for

    _spool(app)  # SQLite runs only
    args = argparse.Namespace(database_url=None, workers=2, threads=4)
    answered, stop = [], threading.Event()

    def call_all_along(origin, token):
        with requests.Session() as web:
            while not stop.is_set():
                sent = str(uuid.uuid4())
                try:
                    response = web.get(f"{origin}/amami/api/v1/accounts", timeout=5, headers={
                        "Authorization": f"Bearer {token}", "x-fapi-interaction-id": sent})
                except requests.RequestException:
                    continue  # the worker died under it: no answer, nothing promised
                if response.status_code == 200:
                    answered.append(sent)

    with harness.workspace(args, API_RATE_LIMIT="1000000 per minute") as ws:
        clock.set_now(None)
        token, _ = seed(ws.app_config(TESTING=True))
        with harness.serve(ws, args) as server:
            callers = [threading.Thread(target=call_all_along, args=(ws.origin, token)) for _ in range(4)]
            for caller in callers:
                caller.start()
            assert wait_for(lambda: len(answered) >= 300, seconds=60)
            workers = children(server.pid)
            os.kill(workers[0], signal.SIGKILL)
            assert wait_for(lambda: len(set(children(server.pid)) - set(workers)) == 1, seconds=60)
            counted = len(answered)
            assert wait_for(lambda: len(answered) >= counted + 300, seconds=60)
            kill_server(server)
            stop.set()
            for caller in callers:
                caller.join(30)

        from webapp import create_app

        after = create_app(ws.app_config(TESTING=True))
        with after.app_context():
            oplog.drain()
            with db.engine().connect() as conn:
                details = conn.execute(select(OperationLog.detail).where(OperationLog.screen == "API")).scalars().all()
            left = list(logspool.directory_for(db.engine()).glob("*.jsonl"))
        after.extensions["db_engine"].dispose()
    logged = [d.split("interaction=")[1].split()[0] for d in details]
    assert len(logged) == len(set(logged))  # none twice
    assert set(answered) <= set(logged)  # every answer's row kept
    assert left == []
