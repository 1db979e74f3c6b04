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
