"""The SQL a piece of code sends: for tests that pin down how many statements (or writes) a request
costs. Each statement as sent, whitespace collapsed, in order."""
from __future__ import annotations

from sqlalchemy import event


def statements_during(app, call):
    """(what `call()` returned, the statements the app's engine ran meanwhile)."""
    seen = []
    engine = app.extensions["db_engine"]
    listener = lambda _conn, _cursor, statement, *_rest: seen.append(" ".join(statement.split()))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return result, seen


def writes_during(app, call) -> list[str]:
    """The first word of each statement `call()` ran that is neither a read nor transaction control."""
    _result, seen = statements_during(app, call)
    quiet = ("SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")
    return [word for word in (s.split()[0].upper() for s in seen) if word not in quiet]
