"""The account API's log rows on SQLite: appended to a file before the answer, moved into
operation_log in batches.

Why: every account API call logs a row (SPEC §6). Committed one call at a time, even grouped
(oplog._GroupCommit), the row was a third of `/accounts`' cost under load: both workers' writers
queue on SQLite's one write lock, and each commit writes the row and four index entries to the WAL
(bench/README "Round 20"). Here a call appends one JSON line to its process's file (one `write()`,
O_APPEND) and answers; a drain moves every line written since the last one into operation_log in
one transaction.

Durability is SQLite's own under `synchronous=NORMAL` (webapp/db.py): the line is in the kernel
before the client has the answer, so it survives the process (a kill -9 included), not the machine,
as a commit to the WAL without fsync does. PostgreSQL keeps committing each row in the call
(oplog.record_committed): its commit survives the machine, and it has no single write lock.

Exactly once: a file's drained length is kept in operation_log_spool and moves in the transaction
that inserts its rows, under SQLite's write lock, so two drainers (threads or processes) never
insert a line twice and a drain that fails inserts none. Only whole lines are drained.

Who drains: each writing process's drainer thread, DRAIN_SECONDS after a line woke it (its own file
and any finished one), off the request threads, so that no call waits for a drain; every reader of
the log, first (oplog.drain: the staff console, `flask log show`, the customer's list of apps); the
mail worker on each round. A file whose process has gone (its shared flock released) is drained by
whoever comes next, then deleted. A full drain then sweeps what a process killed in the middle of
its spool work left behind (Spool._sweep).

Files: `<database>-oplog/<pid>-<ns since 1970>-<random>.jsonl`, beside the database, on the same
disk. A process starts a new file past ROTATE_BYTES; the old one is drained and deleted like a dead
process's. If the file cannot be written (disk full, directory gone), the call commits its row as
PostgreSQL's do: no row is ever acknowledged unkept.
"""
from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
import time
import weakref
from pathlib import Path

import orjson
from sqlalchemy import BigInteger, Column, String, Table, bindparam, delete, exc, select, update
from sqlmodel import SQLModel

from . import db

log = logging.getLogger(__name__)

DRAIN_SECONDS = 0.1
ROTATE_BYTES = 4 << 20
NEW_FILE_SECONDS = 60  # a `.new` file this old and unlocked was left by a process that died making it
SUFFIX = ".jsonl"

spool_table = Table(
    "operation_log_spool", SQLModel.metadata,
    Column("name", String(80), primary_key=True),
    Column("drained", BigInteger, nullable=False),
)


def directory_for(engine) -> Path | None:
    """The spool's directory for `engine`'s database: a SQLite file's, none in memory or elsewhere."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + "-oplog")


class Spool:
    """One database's spool in this process: the file this process appends to, and the drains."""

    def __init__(self, engine, directory: Path, log_table: Table, columns: tuple[str, ...]) -> None:
        self.engine, self.directory, self._columns = engine, directory, columns
        # A line holds each column as SQLite stores it (`at`: its UTC text, by the column's own bind
        # processor on this dialect), so the drain hands each line's values to the DB-API as they
        # are: one executemany a batch, no SQLAlchemy work a row. (SQLite's json_each and
        # json_extract reading the lines in SQL cost twice as much a row: bench/README round 22.)
        self._stored_at = log_table.c.at.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        self._insert_sql = (f"INSERT INTO {log_table.name} ({', '.join(columns)}) "
                            f"VALUES ({', '.join('?' * len(columns))})")
        self._file_lock = threading.Lock()  # opening and rotating this process's file
        self._draining = threading.Lock()  # one drain at a time in this process
        self._fd: int | None = None
        self._pid: int | None = None
        self._size = 0
        self._known: dict[str, int] = {}  # file → the length this process's last drain of it reached
        self._written = threading.Event()  # set by append: wakes this process's drainer
        self._drainer_pid: int | None = None

    # --- writing --------------------------------------------------------------------------------

    def append(self, values: dict) -> None:
        """Write one row's line; raises OSError if it could not be written whole. This process's
        drainer thread moves it into the table within about DRAIN_SECONDS."""
        line = self.line(values)
        with self._file_lock:
            fd = self._current_fd()
            if self._drainer_pid != self._pid:
                self._start_drainer()
            written = os.write(fd, line)
            self._size += written
            if written != len(line) or self._size >= ROTATE_BYTES:
                # Done with this file: the next line opens a new one. Its lock goes with the
                # descriptor, so a drain takes what is left and deletes it, as a dead process's.
                self._fd = None
                os.close(fd)
            if written != len(line):  # a short write (disk full): the torn line ends the file, undrained
                raise OSError(f"short write to the log spool: {written} of {len(line)} bytes")
        if not self._written.is_set():  # set: the drainer has yet to clear it, so its drain reads this line
            self._written.set()

    def line(self, values: dict) -> bytes:
        """The line of a row (the values oplog._row gives)."""
        row = {k: values.get(k) for k in self._columns}
        row["at"] = self._stored_at(row["at"])
        return orjson.dumps(row) + b"\n"

    def _start_drainer(self) -> None:
        """This process's drainer: a daemon thread, started by the first append after a fork (never
        by making the app: tests/test_preload.py), that holds the spool only weakly."""
        self._drainer_pid = self._pid
        threading.Thread(target=_drainer, args=(weakref.ref(self), self._written), name="log-spool-drainer",
                         daemon=True).start()

    def _current_fd(self) -> int:
        if self._fd is not None and self._pid != os.getpid():  # inherited through fork: the parent's file
            os.close(self._fd)
            self._fd = None
        if self._fd is None:
            self._open()
        return self._fd

    def _own_prefix(self) -> str:
        return f"{self._pid}-" if self._pid == os.getpid() else "\0"  # nothing before this process wrote

    def _open(self) -> None:
        self.directory.mkdir(mode=0o700, exist_ok=True)  # its files hold what the log's rows hold
        # Named by its process, then when it began: a process's files are drained in order.
        path = self.directory / f"{os.getpid()}-{time.time_ns()}-{secrets.token_hex(8)}{SUFFIX}"
        # Made under another name and given its own once locked: a drain that found it between its
        # creation and its lock took it for a dead process's empty file and deleted it, and the
        # lines written to it next were lost. Should this process die in between, the empty `.new`
        # file it leaves is deleted by a later drain's sweep.
        making = path.with_name(path.name + ".new")
        fd = os.open(making, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # ours while this process lives: no drainer deletes it
            os.rename(making, path)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._pid, self._size = fd, os.getpid(), 0

    # --- draining -------------------------------------------------------------------------------

    def drain(self) -> int:
        """Move every whole line of every file into operation_log, then clear what dead processes
        left (_sweep); the rows moved."""
        with self._draining:
            moved = self._drain_all()
            self._sweep()
            return moved

    def _drain_all(self, own_only: bool = False) -> int:
        try:
            paths = sorted(self.directory.glob("*" + SUFFIX))
        except OSError:
            return 0
        return sum(self._drain_file(path, own_only) for path in paths)

    def drain_own(self) -> int:
        """The drainer's round: this process's own file and every finished one, not another live
        writer's (its own drainer takes it: the two processes' rounds need not wait on each other)."""
        with self._draining:
            return self._drain_all(own_only=True)

    def _drain_file(self, path: Path, own_only: bool = False) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # another process drained and deleted it meanwhile
            return 0
        try:
            # The writer's shared lock stops this; got, the writer is gone and nothing more will come.
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                finished = True
            except BlockingIOError:
                finished = False
            if not finished and own_only and not path.name.startswith(self._own_prefix()):
                return 0  # another live writer's: its own drainer takes it
            if not finished and self._known.get(path.name) == os.fstat(fd).st_size:
                return 0  # a live writer's file, drained to its end by this process: no transaction
            moved = self._move(fd, path, finished)
            if finished and moved:  # now delete it, in a transaction that has nothing to lose
                self._move(fd, path, finished)
            return moved
        finally:
            os.close(fd)

    def _move(self, fd: int, path: Path, finished: bool) -> int:
        """One transaction: the file's whole lines not yet drained into operation_log, and its drained
        length moved past them; or, for a finished file with nothing left, the file deleted."""
        with self.engine.begin() as conn:
            # The first statement writes, so the transaction holds the write lock from here on: what
            # it reads next is what it moves, and no other drainer is between its reads and commit.
            conn.execute(_ADD_FILE.on(conn), {"name": path.name})
            try:
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    return 0
            except FileNotFoundError:  # deleted by a drainer that committed before this one began
                conn.execute(_FORGET, {"file": path.name})  # the row this transaction just added
                return 0
            start = conn.execute(_DRAINED, {"file": path.name}).scalar_one()
            data = os.pread(fd, max(0, os.fstat(fd).st_size - start), start)
            end = data.rfind(b"\n") + 1
            if end == 0:
                if finished:
                    if data:
                        log.error("log spool %s ends in %d bytes of a torn line, not kept", path.name, len(data))
                    # Unlinked inside the transaction, before its row goes: should the commit fail,
                    # the row outlives the file (a sweep deletes it), never the file its row (drained
                    # again).
                    path.unlink()
                    conn.execute(_FORGET, {"file": path.name})
                    self._known.pop(path.name, None)
                return 0
            rows = self._rows(path.name, data[:end])
            if rows:
                conn.exec_driver_sql(self._insert_sql, rows)
            if conn.execute(_MOVE, {"file": path.name, "start": start, "to": start + end}).rowcount != 1:
                raise RuntimeError(f"log spool {path.name}: drained length moved under a drain")
        self._known[path.name] = start + end  # committed: the length this process knows is drained
        return len(rows)

    def _sweep(self) -> None:
        """Clear what a process killed in the middle of its spool work left, which no drain reads:
        - a length row whose file is gone: the file was deleted in a drain's transaction that never
          committed (its process killed between the two). A file is only ever deleted, never made
          again under its name, so the row is kept for nothing;
        - a `.new` file not locked and older than NEW_FILE_SECONDS: its process died between making
          it and naming it (_open), before a line was written to it.
        Nothing to do while the directory has never been made (no process has written a line)."""
        if not self.directory.is_dir():
            return
        try:
            with self.engine.connect() as conn:
                names = conn.execute(_NAMES).scalars().all()
            gone = [name for name in names if not (self.directory / name).exists()]
            if gone:
                with self.engine.begin() as conn:
                    conn.execute(_FORGET, [{"file": name} for name in gone])
                for name in gone:
                    self._known.pop(name, None)
            for path in self.directory.glob("*" + SUFFIX + ".new"):
                if time.time() - path.stat().st_mtime > NEW_FILE_SECONDS and _unlocked(path):
                    path.unlink()
        except (OSError, exc.SQLAlchemyError):  # what is left stays for the next sweep
            log.warning("log spool sweep failed", exc_info=True)

    def _rows(self, name: str, data: bytes) -> list[tuple]:
        """The values, in the columns' order, of the lines that are rows: each a JSON object with its
        `at` and only values SQLite stores as they are (only a short write's torn line is not, and
        append raised for it, so it was never acknowledged). A line that is not is skipped, never
        left to fail every drain of its file."""
        rows, columns = [], self._columns
        for number, line in enumerate(data.splitlines(), 1):
            try:
                values = orjson.loads(line)
                row = tuple(map(values.get, columns))
                # The row's types as one set, in C: a generator a value was a third of a drain's CPU.
                kinds = set(map(type, row))
                if type(values["at"]) is str and kinds <= _STORED_AS_IS and (
                        int not in kinds or all(_INT_MIN <= v <= _INT_MAX for v in row if type(v) is int)):
                    rows.append(row)
                    continue
            except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
                pass
            if line:
                log.error("log spool %s: line %d is not a row, skipped", name, number)
        return rows


_STORED_AS_IS = {str, int, float, type(None)}  # the DB-API's own; what a line holds (Spool.line)
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1  # SQLite's integers

_ADD_FILE = db.PerDialect(lambda dialect_insert: dialect_insert(spool_table).values(drained=0)
                          .on_conflict_do_nothing(index_elements=["name"]))
_DRAINED = select(spool_table.c.drained).where(spool_table.c.name == bindparam("file"))
_MOVE = (update(spool_table).where(spool_table.c.name == bindparam("file"), spool_table.c.drained == bindparam("start"))
         .values(drained=bindparam("to")))
_FORGET = delete(spool_table).where(spool_table.c.name == bindparam("file"))
_NAMES = select(spool_table.c.name)


def _unlocked(path: Path) -> bool:
    """No process holds `path`'s lock (its writer is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _drainer(spool_ref, written: threading.Event) -> None:
    """Wait for a line, let DRAIN_SECONDS of them gather, drain; end when the spool is gone."""
    while True:
        if not written.wait(timeout=5):
            if spool_ref() is None:
                return
            continue
        time.sleep(DRAIN_SECONDS)
        written.clear()
        spool = spool_ref()
        if spool is None:
            return
        try:
            spool.drain_own()
        except Exception:  # the lines stay in the file: the next round, or any reader, takes them
            log.exception("log spool drain failed")
        del spool
