"""The SQL a piece of code sends: for tests that pin down how many statements (or writes) a request
costs, or in which order. Each statement as sent, whitespace collapsed, in order."""
from __future__ import annotations

import contextlib

from sqlalchemy import event


@contextlib.contextmanager
def recording(app):
    """A list that fills with the statements the app's engine runs while the block runs."""
    seen: list[str] = []
    engine = app.extensions["db_engine"]
    listener = lambda _conn, _cursor, statement, *_rest: seen.append(" ".join(statement.split()))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def statements_during(app, call):
    """(what `call()` returned, the statements the app's engine ran meanwhile)."""
    with recording(app) as seen:
        result = call()
    return result, seen


def writes_during(app, call) -> list[str]:
    """The first word of each statement `call()` ran that is neither a read nor transaction control."""
    _result, seen = statements_during(app, call)
    quiet = ("SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")
    return [word for word in (s.split()[0].upper() for s in seen) if word not in quiet]


@contextlib.contextmanager
def sent(app):
    """A list of the statements the app sends while the block runs, as `recording` has them, and on
    PostgreSQL also those run straight on a DB-API connection (db.by_itself, db.plain_rows): each as
    (statement, whether its connection was in autocommit: a transaction of its own). On SQLite the
    list is filled when the block ends."""
    engine = app.extensions["db_engine"]
    if engine.dialect.name != "postgresql":  # every write in a transaction; the list filled when the block ends
        pairs: list[tuple[str, bool]] = []
        with recording(app) as seen:
            yield pairs
        pairs.extend((statement, False) for statement in seen)
        return
    import psycopg

    seen: list[tuple[str, bool]] = []

    class Watching(psycopg.Cursor):
        def execute(self, query, *args, **kwargs):
            if str(query) != "SELECT 1":  # the pool's ping
                seen.append((" ".join(str(query).split()), self.connection.autocommit))
            return super().execute(query, *args, **kwargs)

        def executemany(self, query, params_seq, **kwargs):
            params_seq = list(params_seq)
            seen.extend([(" ".join(str(query).split()), self.connection.autocommit)] * len(params_seq))
            return super().executemany(query, params_seq, **kwargs)

    with cursors_of(engine, Watching):
        yield seen


@contextlib.contextmanager
def cursors_of(engine, factory, on_checkout=None):
    """psycopg: every connection the engine's pool hands out while the block runs makes its cursors
    with `factory` (a psycopg.Cursor subclass that watches what it is given); `on_checkout(dbapi
    connection)` is called at each checkout. Each connection gets its own factory back afterwards."""
    watched = []

    def checkout(dbapi_connection, _record, _proxy):
        if on_checkout is not None:
            on_checkout(dbapi_connection)
        if dbapi_connection.cursor_factory is not factory:
            watched.append((dbapi_connection, dbapi_connection.cursor_factory))
            dbapi_connection.cursor_factory = factory

    event.listen(engine, "checkout", checkout)
    try:
        yield
    finally:
        event.remove(engine, "checkout", checkout)
        for connection, kept in watched:
            connection.cursor_factory = kept
