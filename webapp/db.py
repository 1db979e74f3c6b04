"""Database engine and the per-request session.

One engine per app (pooled connections), one SQLModel session per request, closed at teardown.
SQLite gets WAL and a busy timeout so parallel writers queue instead of failing. A SQLite transaction
takes the write lock (BEGIN IMMEDIATE) from its first write on, and a read-only one none at all, so
readers (every screen GET, the ④ poll) never queue behind writers or each other. Writers queue on a
lock of their own (_WriteGate) before SQLite's: a thread lock within a process, then flock(2) on a
file beside the database between processes (the web's workers, the mail and webhook workers). A
waiting writer wakes the moment the previous transaction ends, where SQLite's busy handler would
sleep up to 100 ms between tries and lose the lock, again and again, to the next writer of the
process that just let it go. synchronous=NORMAL (WAL): a commit is not
fsynced on its own; it cannot corrupt the database, but the last commits before a power cut (not a
crashed process) may be lost, and PostgreSQL is the production engine.
"""
from __future__ import annotations

import collections
import datetime as dt
import fcntl
import logging
import os
import select
import threading
import time
import weakref

from flask import Flask, current_app, g
from sqlalchemy import DateTime, TypeDecorator, event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel, create_engine


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and gives them back aware, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


_SQLITE_TXN = "renkei_sqlite_txn"  # pending | deferred | immediate, while a transaction is open
_SQLITE_GATE = "renkei_sqlite_gate"  # set while this connection holds its engine's _WriteGate
_SQLITE_READS = ("SELECT", "WITH", "PRAGMA", "EXPLAIN")


def _sqlite_writes(statement: str, context) -> bool:
    """Whether `statement` writes, or reads to write (FOR UPDATE: SQLite's SQL has no such clause,
    so the compiled statement tells; only the write lock gives it its meaning there)."""
    if not statement.lstrip()[:7].upper().startswith(_SQLITE_READS):
        return True
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


class _WriteGate:
    """One SQLite write transaction at a time: in this process, the others queued on a thread lock;
    between processes, on the database's _FileLock, taken by the thread that holds the thread lock.

    Held from BEGIN IMMEDIATE to the end of the COMMIT or ROLLBACK. A thread that already holds it
    (a second connection of the same thread) or waited `timeout` for it goes on to SQLite's own
    lock, which answers as it did without the gate."""

    def __init__(self, timeout: float, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._timeout = timeout
        self._file = _FileLock(path) if path else None

    def enter(self, info: dict) -> None:
        if info.get(_SQLITE_GATE) or self._owner == threading.get_ident():
            return
        deadline = time.monotonic() + self._timeout
        if not self._lock.acquire(timeout=self._timeout):
            return
        if self._file is not None and not self._file.acquire(deadline - time.monotonic()):
            self._lock.release()
            return
        self._owner = threading.get_ident()
        info[_SQLITE_GATE] = True

    def leave(self, info: dict | None) -> None:
        if info is not None and info.pop(_SQLITE_GATE, None):
            if self._file is not None:
                self._file.release()
            self._owner = None
            self._lock.release()


class _FileLock:
    """flock(2) on `path`, the processes' half of _WriteGate: one holder at a time among every
    process that writes the database, a waiter woken by the kernel when the holder lets go, and
    a dead process's hold dropped by the kernel with its descriptors.

    Only the thread holding its _WriteGate's thread lock calls acquire and release, so one thread a
    process waits here. flock itself cannot time out: a wait that can fail the holder's timeout
    runs on this process's locker thread, which gives the lock to whoever wants it when it comes,
    or lets it go again if nobody does any more. The descriptor is this process's own (opened at its
    first write): a child forked with its parent's would share its open file, which flock takes
    for one holder."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pid: int | None = None
        self._fd: int | None = None

    def _open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the parent's: it would keep the parent's hold alive past its exit
        self._pid, self._fd = os.getpid(), None
        self._cond = threading.Condition(threading.Lock())
        self._held = self._wanted = self._locking = False
        self._locker: threading.Thread | None = None
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:  # writers then queue on SQLite's own lock only, as before
            logging.getLogger(__name__).warning("no write gate between processes: %s", error)

    def acquire(self, timeout: float) -> bool:
        if self._pid != os.getpid():
            self._open()
        if self._fd is None:
            return True
        with self._cond:
            if not self._locking:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    self._held = True
                    return True
            self._wanted = True
            if self._locker is None:
                self._locker = threading.Thread(target=self._lock_when_wanted, name="sqlite-write-gate",
                                                daemon=True)
                self._locker.start()
            self._cond.notify_all()
            held = self._cond.wait_for(lambda: self._held, max(0.0, timeout))
            self._wanted = False
            return held

    def release(self) -> None:
        if self._fd is None:
            return
        with self._cond:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock_when_wanted(self) -> None:
        cond, fd = self._cond, self._fd
        while True:
            with cond:
                cond.wait_for(lambda: self._wanted and not self._held)
                self._locking = True
            fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel wakes this when the holder lets go
            with cond:
                self._locking = False
                if self._wanted:
                    self._held = True
                    cond.notify_all()
                else:  # the waiter gave up meanwhile
                    fcntl.flock(fd, fcntl.LOCK_UN)


def _gate_transaction_ends(engine: Engine, gate: _WriteGate) -> None:
    """Open the gate once the COMMIT or ROLLBACK itself is done (the engine's commit and rollback
    events come before it), also for the pool's rollback of a connection given back mid-transaction."""
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def info(dbapi_connection) -> dict | None:
        try:
            return dbapi_connection.info
        except NotImplementedError:  # the dialect's own first connection, outside the pool
            return None

    def do_commit(dbapi_connection):
        try:
            commit(dbapi_connection)
        finally:
            gate.leave(info(dbapi_connection))

    def do_rollback(dbapi_connection):
        try:
            rollback(dbapi_connection)
        finally:
            gate.leave(info(dbapi_connection))

    dialect.do_commit, dialect.do_rollback = do_commit, do_rollback

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _connection_gone(_dbapi_connection, record, *_exception):
        if record is not None:
            gate.leave(record.info)


_WRITE_GATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a SQLite engine → its _WriteGate


def _gate_file(database: str | None) -> str | None:
    """The file beside a SQLite database that its writers' processes queue on; none in memory."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + "-writers.lock"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        gate = _WRITE_GATES[engine] = _WriteGate(timeout=30, path=_gate_file(engine.url.database))
        _gate_transaction_ends(engine, gate)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below decide
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_later(conn):
            # The BEGIN itself waits for the transaction's first statement (below), which decides its kind.
            conn.info[_SQLITE_TXN] = "pending"

        @event.listens_for(engine, "before_cursor_execute")
        def _sqlite_begin(conn, cursor, statement, parameters, context, executemany):
            state = conn.info.get(_SQLITE_TXN)
            if state is None or state == "immediate" or not conn.in_transaction():
                return
            write = _sqlite_writes(statement, context)
            if state == "pending":
                # A transaction that starts by reading takes no lock (WAL: readers never wait); one
                # that starts by writing takes the write lock up front (IMMEDIATE: no deadlock).
                if write:
                    gate.enter(conn.info)
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                conn.info[_SQLITE_TXN] = "immediate" if write else "deferred"
            elif write:
                # The first write after reads: end the read-only part (it changed nothing) and take
                # the write lock, rather than upgrade in place, which under WAL fails at once
                # (SQLITE_BUSY_SNAPSHOT) when another writer committed meanwhile. What was read
                # before may have changed since, as under PostgreSQL's READ COMMITTED, where the
                # same code runs: every check-then-write is an atomic UPDATE or a unique index.
                cursor.execute("COMMIT")
                gate.enter(conn.info)
                cursor.execute("BEGIN IMMEDIATE")
                conn.info[_SQLITE_TXN] = "immediate"

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _sqlite_end(conn):
            conn.info.pop(_SQLITE_TXN, None)

        return engine
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "renkei_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, for a connection that sat in the pool PING_AFTER_IDLE_SECONDS or
    longer, or whose socket has something to read (an idle connection's has nothing, unless the
    server ended it: its last message, or the socket's end): a `SELECT 1` before it is handed out,
    and when that fails the pool's connections are replaced, as pre_ping does. A connection given
    back a moment ago with nothing waiting on its socket (every checkout under load: one or two a
    request) is handed out as it is: pre_ping's round trip, two autocommit switches and ~100
    function calls saved a checkout. What only a ping would find then (a connection lost without a
    word within that second, on a network that dropped it silently) fails its first statement:
    SQLAlchemy sees the disconnect and replaces the pool's connections, and that request is answered
    503 like any other while the database is away (tests/test_pg_reads.py, tests/test_faults.py)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle_from_now(dbapi_connection, record):
        if dbapi_connection is not None:
            record.info[_IDLE_SINCE] = time.monotonic()
            if dbapi_connection.autocommit:  # a request's plain() connection: the next user's writes are in a transaction
                try:
                    dbapi_connection.autocommit = False
                except Exception:  # a broken connection: its next checkout pings it
                    record.info[_IDLE_SINCE] = float("-inf")

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        since = record.info.get(_IDLE_SINCE)  # none for a connection made for this checkout
        if since is None or (time.monotonic() - since < PING_AFTER_IDLE_SECONDS
                             and not _readable(dbapi_connection)):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as e:
            raise exc.InvalidatePoolError(f"the pool's ping failed: {e}") from e


def _readable(dbapi_connection) -> bool:
    """Whether the connection's socket has something to read now (no wait)."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:  # a closed connection has no socket: ping, and let that decide
        return True


def init_app(app: Flask) -> None:
    app.extensions["db_engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app._get_current_object().extensions["db_engine"]  # no proxy lookup: called often


def _held() -> dict:
    """What the request holds in `g` (its session and read connections), as a dict: one look through
    Flask's proxy for all of them, not one per name and access (every request passes here)."""
    return vars(g._get_current_object())


def session() -> Session:
    """The request's session (created on first use)."""
    held = _held()
    s = held.get("db_session")
    if s is None:
        end_reads()  # what follows reads through the session, and sees what it writes
        s = held["db_session"] = Session(engine(), expire_on_commit=False)
    return s


def end_reads() -> None:
    """End what the request read (it wrote nothing): the plain connection is let go (PostgreSQL's back
    to the pool; SQLite's, in autocommit with no snapshot open, stays the thread's: _ThreadReads), the
    session's transaction is rolled back; on SQLite no snapshot is left open across what follows."""
    held = _held()
    conn = held.pop("db_plain", None)
    if conn is not None:
        conn.close()
    s = held.get("db_session")
    if s is not None:
        s.rollback()


def _close_session(_exc=None) -> None:
    held = _held()
    for name in ("db_plain", "db_session"):
        kept = held.pop(name, None)
        if kept is not None:
            kept.close()


def first_read(stmt, parameters: dict):
    """The first row of the prebuilt SELECT `stmt` (None for none), for a request that only reads (a
    screen GET, the ④ poll): its values and their names as a Core read gives them. See plain_rows."""
    rows = plain_rows(stmt, parameters, first=True)
    return rows[0] if rows else None


def plain_rows(stmt, parameters: dict, first: bool = False, make=None) -> list:
    """The rows of the prebuilt SELECT `stmt` (only the first with `first`), for a request that has
    not begun writing: its values and their names as a Core read gives them, or, with `make`, each
    row made by `make` from its values in order (a NamedTuple's `_make`: the account API's
    transactions, 500 a page, not made twice).

    The statement, compiled once, runs on the request's plain DB-API connection (`plain`), in
    autocommit (no BEGIN, no ROLLBACK, no snapshot kept between reads, which is what each statement
    sees under PostgreSQL's READ COMMITTED too), each value through its type's own bind or result
    processor, the ones SQLAlchemy's execution uses. SQLAlchemy's connection, transaction and
    execution steps were ~250 function calls a read on SQLite and ~300 on PostgreSQL, where psycopg's
    cursor description (a column object made for every column, every statement) is not read here
    either (bench/profile_flow.py). Once the request has a session, on its connection instead."""
    s = _held().get("db_session")
    if s is not None:
        result = s.connection().execute(stmt, parameters)
        rows = ([] if (row := result.first()) is None else [row]) if first else result.all()
        return rows if make is None else list(map(make, rows))
    eng = engine()
    sql, names, binds, results, own_make, named = _plain_select(eng, stmt)
    make = make or own_make
    values = [parameters[n] if process is None else process(parameters[n]) for n, process in zip(names, binds)]
    raw = plain()
    cursor = raw.cursor()
    try:
        cursor.execute(sql, dict(zip(named, values)) if named else values)
        found = cursor.fetchone() if first else cursor.fetchall()
    except eng.dialect.loaded_dbapi.Error as e:
        raise _as_sqlalchemy_error(eng, raw, cursor, sql, e) from e
    finally:
        cursor.close()
    if first:
        found = [] if found is None else [found]
    if results is None:  # no column needs converting (psycopg's dates, ints and text)
        return list(map(make, found))
    return [make([value if process is None else process(value) for value, process in zip(row, results)])
            for row in found]


def _as_sqlalchemy_error(eng: Engine, raw, cursor, sql: str, error: Exception) -> exc.DBAPIError:
    """A DB-API error of a plain read as SQLAlchemy's own execution would raise it (the errors.py
    handlers answer 503 for a database away), and, for a connection the server ended, what
    SQLAlchemy does then too: that connection is dropped and the pool's others are replaced on their
    next checkout (they are likely gone the same way)."""
    gone = eng.dialect.is_disconnect(error, raw.dbapi_connection, cursor)
    if gone and isinstance(raw, _KeptReads):
        raw.discard()  # the thread's next read makes a new one
        _held().pop("db_plain", None)
    elif gone:
        eng.pool._invalidate(raw, error)  # what Connection._handle_dbapi_exception does on a disconnect
        _held().pop("db_plain", None)
    elif _held().get("db_plain") is not raw:
        raw.close()  # not kept for the request yet: back to the pool
    return exc.DBAPIError.instance(sql, None, error, eng.dialect.loaded_dbapi.Error, hide_parameters=True,
                                   connection_invalidated=gone, dialect=eng.dialect)


def plain():
    """The request's plain DB-API connection, in autocommit, for reads outside its session
    (plain_rows: the screens' and the account API's reads; SQLite's maintenance windows, ④ poll and
    transactions page). A request that only reads then builds no ORM session, no transaction.

    In autocommit each read is a statement of its own, which is what it is inside a READ COMMITTED
    transaction too (each statement sees what was committed before it began), without the BEGIN
    before the first and the ROLLBACK after the last: two of a poll's or an API call's round trips to
    PostgreSQL. Nothing writes on it. PostgreSQL's is checked out of the pool on first use and given
    back when the request's session opens and at teardown: one checkout a request instead of one a
    read (~60 function calls each); it goes back out of autocommit (the pool's checkin,
    _ping_when_idle). SQLite's is the thread's own, kept from request to request (_ThreadReads)."""
    held = _held()
    raw = held.get("db_plain")
    if raw is None:
        eng = engine()
        if eng.dialect.name == "sqlite":
            raw = held["db_plain"] = _ThreadReads.of(eng)
            return raw
        try:
            raw = eng.raw_connection()
        except eng.dialect.loaded_dbapi.Error as e:  # the database refusing connections: as Engine.connect raises it
            raise exc.DBAPIError.instance(None, None, e, eng.dialect.loaded_dbapi.Error, hide_parameters=True,
                                          dialect=eng.dialect) from e
        try:
            raw.driver_connection.autocommit = True
        except eng.dialect.loaded_dbapi.Error as e:  # a connection broken meanwhile: dropped, as a read's
            raise _as_sqlalchemy_error(eng, raw, None, "", e) from e
        held["db_plain"] = raw
    return raw


def plain_dbapi():
    """The DB-API connection a request that reads by hand reads on (SQLite's transactions page): its
    session's while it has one (its own writes, its transaction), else its plain connection (plain)."""
    s = _held().get("db_session")
    return s.connection().connection.driver_connection if s is not None else plain()


class _ThreadReads(threading.local):
    """SQLite: each thread's plain read connection, one per engine, kept from one request to the next.

    A SQLite connection in autocommit that only reads holds no lock and no snapshot between its
    statements (WAL), so nothing is gained by giving it back after each request, and the pool's
    checkout and checkin (its queue, its events, the rollback on return) were a twentieth of a ④
    poll (bench/README.md, round 16). The connection is the pool's own, made by its `connect` event
    (WAL, busy timeout, foreign keys) and then detached from it: it counts in no pool size. A
    disposed engine (a new pool) gets a new one; the old one closes with its thread's entry or at
    once when it is replaced. A connection that fails as closed is dropped (_as_sqlalchemy_error).
    Only its own thread uses it: gthread workers keep their threads, each holds one connection."""

    def __init__(self) -> None:
        self.kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine → _KeptReads

    @classmethod
    def of(cls, eng: Engine) -> "_KeptReads":
        kept = _THREAD_READS.kept.get(eng)
        if kept is None or kept.pool is not eng.pool:
            if kept is not None:
                kept.discard()
            try:
                fairy = eng.raw_connection()
            except eng.dialect.loaded_dbapi.Error as e:  # as Engine.connect raises it
                raise exc.DBAPIError.instance(None, None, e, eng.dialect.loaded_dbapi.Error, hide_parameters=True,
                                              dialect=eng.dialect) from e
            fairy.detach()
            kept = _THREAD_READS.kept[eng] = _KeptReads(eng, fairy.dbapi_connection)
        return kept


class _KeptReads:
    """A thread's kept SQLite read connection, as `plain` hands it out: `cursor()` as a pooled one,
    and `close()` (the request's end) keeps it for the thread's next request."""

    __slots__ = ("engine", "pool", "dbapi_connection", "remembered", "__weakref__")

    def __init__(self, eng: Engine, dbapi_connection) -> None:
        self.engine, self.pool, self.dbapi_connection = weakref.ref(eng), eng.pool, dbapi_connection
        self.remembered: dict = {}  # what a caller read on it, for as long as it knows it holds

    def cursor(self):
        return self.dbapi_connection.cursor()

    def close(self) -> None:
        """Kept: the request is over, the thread's next one reads on it too."""

    def discard(self) -> None:
        eng = self.engine()
        if eng is not None and _THREAD_READS.kept.get(eng) is self:
            del _THREAD_READS.kept[eng]
        try:
            self.dbapi_connection.close()
        except Exception:  # already unusable: nothing more to free
            pass


_THREAD_READS = _ThreadReads()


def _plain_select(eng: Engine, stmt) -> tuple:
    """(SQL, parameter names in order, their bind processors, each column's result processor (None when
    no column has one), the row maker, and for a named paramstyle (psycopg's) the names the SQL uses,
    else None), made once per statement and dialect: the processors are the ones SQLAlchemy's own
    execution uses."""
    dialect = eng.dialect
    plain = _PLAIN_SELECTS.get((stmt, dialect.name))
    if plain is None:
        compiled = stmt.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
        binds = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
        named = None if compiled.positional else tuple(compiled.escaped_bind_names.get(n, n) for n in names)
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in stmt.selected_columns)
        results = None if all(process is None for process in results) else results
        row = collections.namedtuple("PlainRow", [c.key for c in stmt.selected_columns], rename=True)
        plain = _PLAIN_SELECTS[(stmt, dialect.name)] = (compiled.string, names, binds, results, row._make, named)
    return plain


_PLAIN_SELECTS: dict = {}


def column_keys(model) -> tuple[str, ...]:
    """The model's column attributes, in the mapper's order (what `detached` takes values for)."""
    return tuple(prop.key for prop in model.__mapper__.column_attrs)


def columns(model, keys: tuple[str, ...]) -> list:
    """The mapped columns of `keys`, for a Core SELECT whose rows `detached` makes into objects."""
    return [model.__mapper__.c[k] for k in keys]


def detached(model, keys: tuple[str, ...], values) -> object:
    """An instance of `model` holding `values` (of the columns `keys`) as its loaded state, detached
    (outside any session), made the way the ORM's loader makes one: a prebuilt Core SELECT's row
    made into an object, without the ORM's execution and identity-map work for that read."""
    obj = model.__mapper__.class_manager.new_instance()
    obj.__dict__.update(zip(keys, values))
    make_transient_to_detached(obj)
    return obj


def create_all(app: Flask) -> None:
    """Create every table straight from the models (tests); production uses the migrations.

    Every table is known by then: create_app imports the registry (webapp/models.py)."""

    SQLModel.metadata.create_all(app.extensions["db_engine"])


def insert_committed(engine: Engine, stmt, rows: list[dict]) -> None:
    """INSERT `rows` (the same keys each) in a transaction of its own, committed when this returns.

    On SQLite the statement as SQLAlchemy compiles it, with its columns' own bind processors, runs
    on a pooled DB-API connection as a SQLAlchemy write transaction would: the engine's _WriteGate,
    BEGIN IMMEDIATE, the rows, COMMIT. SQLAlchemy's connection, transaction and execution steps
    were ~280 function calls (~0.15 ms) of each account API call, whose log row this writes
    (oplog.record_committed). tests/test_api_pipeline.py compares the stored rows with SQLAlchemy's."""
    gate = _WRITE_GATES.get(engine)
    keys = tuple(rows[0])
    if gate is None or any(tuple(row) != keys for row in rows):
        with engine.begin() as conn:
            conn.execute(stmt, rows)
        return
    sql, names, processors = _plain_insert(engine, stmt, keys)
    raw = engine.raw_connection()  # from the pool; back to it (rolled back if left open) on close
    try:
        gate.enter(raw.info)
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, [[value if process is None else process(value)
                                      for value, process in zip((row[n] for n in names), processors)]
                                     for row in rows])
            cursor.execute("COMMIT")
        finally:
            gate.leave(raw.info)
    finally:
        raw.close()


def _plain_insert(engine: Engine, stmt, keys: tuple) -> tuple:
    """(SQL, the row keys in parameter order, each one's bind processor or None), made once."""
    cache_key = (engine.dialect.name, stmt, keys)
    plain = _PLAIN_INSERTS.get(cache_key)
    if plain is None:
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(keys))
        names = compiled.positiontup
        # The dialect's own processor, as SQLAlchemy's execution uses: a TypeDecorator's generic one
        # leaves SQLite's DATETIME formatting to sqlite3, which drops a zero microsecond part.
        processors = tuple(compiled.binds[n].type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
                           for n in names)
        plain = _PLAIN_INSERTS[cache_key] = (compiled.string, names, processors)
    return plain


_PLAIN_INSERTS: dict[tuple, tuple] = {}


def insert_or_ignore(s: Session, table, values: dict, conflict_columns: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike; True when the row was inserted.

    The statement is built once per (engine, table, columns) and run on the session's connection with
    `values` as its parameters: no statement construction, no ORM execution step on each call."""
    return inserted_or_none(s, table, values, conflict_columns, tuple(conflict_columns)) is not None


def inserted_or_none(s: Session, table, values: dict, conflict_columns: list[str], returning: tuple[str, ...]):
    """insert_or_ignore giving the inserted row's `returning` columns (RETURNING), None when a row
    with the same `conflict_columns` was already there: what the database made (an id) without a
    read after the commit."""
    connection = s.connection()
    name = connection.dialect.name
    key = (name, table.name, tuple(values), tuple(conflict_columns), returning)
    stmt = _INSERT_OR_IGNORE.get(key)
    if stmt is None:
        stmt = _INSERT_OR_IGNORE[key] = _insert_or_ignore(name, table, conflict_columns, returning)
    # RETURNING, not rowcount: with implicit RETURNING, PostgreSQL drivers report rowcount -1.
    return connection.execute(stmt, values).first()


_INSERT_OR_IGNORE: dict[tuple, object] = {}


def _dialect_insert(dialect: str):
    """The dialect's own `insert` (the one with ON CONFLICT)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two engines are supported
        raise RuntimeError(f"unsupported database {dialect}")
    return insert


def _insert_or_ignore(dialect: str, table, conflict_columns: list[str], returning: tuple[str, ...]):
    return (_dialect_insert(dialect)(table).on_conflict_do_nothing(index_elements=conflict_columns)
            .returning(*(table.c[c] for c in returning)))


class PerDialect:
    """A statement built once per database dialect, by `build(insert)` given the dialect's own
    `insert` (an upsert's ON CONFLICT … DO UPDATE is written with it, on SQLite and PostgreSQL alike)."""

    def __init__(self, build) -> None:
        self._build = build
        self._built: dict[str, object] = {}

    def on(self, connection):
        return self.for_dialect(connection.dialect.name)

    def for_dialect(self, name: str):
        stmt = self._built.get(name)
        if stmt is None:
            stmt = self._built[name] = self._build(_dialect_insert(name))
        return stmt


class Precompiled(PerDialect):
    """A PerDialect statement that SQLAlchemy does not cache (an INSERT of several VALUES rows is
    compiled again on every execution: ~700 function calls for three rows), compiled here once per
    dialect and run as its SQL on the caller's connection, in its transaction (`execute`), or on a
    connection of its own in autocommit (`by_itself`).

    `values` bind the statement's named parameters; the values the statement itself holds (a literal
    `1`) come from the compilation. Only for parameters of plain types (str, int): no bind processor runs."""

    def __init__(self, build) -> None:
        super().__init__(build)
        self._compiled: dict[str, tuple] = {}

    def execute(self, connection: Connection, values: dict):
        return connection.exec_driver_sql(*self.driver_sql(connection.dialect, values))

    def driver_sql(self, dialect, values: dict) -> tuple:
        """(the SQL, its parameters as the DB-API takes them) for `values`."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            done = self.for_dialect(dialect.name).compile(dialect=dialect)
            held = {name: bind.effective_value for name, bind in done.binds.items() if not bind.required}
            compiled = self._compiled[dialect.name] = (done.string, done.positiontup, held)
        sql, positions, held = compiled
        params = {**held, **values}
        return sql, tuple(params[n] for n in positions) if positions else params


def by_itself(eng: Engine, statement: Precompiled, rows: list[dict]) -> list:
    """PostgreSQL: run `statement` for each of `rows` (one, or an executemany of several) on a pooled
    DB-API connection in autocommit, outside any transaction the request has open: each statement a
    transaction of its own, whose row locks last only while PostgreSQL runs it (budgets.py says what
    for). The rows it returns (RETURNING) for one, [] for several. The connection goes back to the pool
    at once, out of autocommit (_ping_when_idle's checkin). A DB-API error is raised as SQLAlchemy's
    (errors.py's 503), a connection the server ended dropped from the pool: as plain_rows does."""
    sql, _ = statement.driver_sql(eng.dialect, rows[0])
    params = [statement.driver_sql(eng.dialect, row)[1] for row in rows]
    try:
        raw = eng.raw_connection()
    except eng.dialect.loaded_dbapi.Error as e:  # the database refusing connections: as Engine.connect raises it
        raise exc.DBAPIError.instance(None, None, e, eng.dialect.loaded_dbapi.Error, hide_parameters=True,
                                      dialect=eng.dialect) from e
    cursor = None
    try:
        raw.driver_connection.autocommit = True
        cursor = raw.cursor()
        if len(params) == 1:
            cursor.execute(sql, params[0])
            found = cursor.fetchall() if cursor.description else []
        else:
            cursor.executemany(sql, params)
            found = []
    except eng.dialect.loaded_dbapi.Error as e:
        raise _as_sqlalchemy_error(eng, raw, cursor, sql, e) from e  # which gives the connection back or drops it
    finally:
        if cursor is not None:
            cursor.close()
    raw.close()
    return found
