"""The stack's floor: a Flask app that does, a request, only the database and Redis round trips a
flow's request does in the product, and nothing else (bench/bench_floor.py serves it and drives it).

`GET|POST /step/<counts>/<reads>/<writes>`:
- `counts` rate-limit counts in Redis (the limiter's fixed-window Lua script through redis-py, one
  EVALSHA each);
- `reads` one-row SELECTs by primary key on the pool's DB-API connection in autocommit (as
  `db.plain()` reads on PostgreSQL);
- for each number in `writes` (`-` when none, `2.4` for two transactions), one transaction of that
  many statements (UPDATEs of one row by primary key, the last an INSERT of a log row) with its
  BEGIN and COMMIT: through SQLAlchemy Core, as the product writes (FLASK_FLOOR_WRITES=core, the
  default), through psycopg's connection with the SQL written out (dbapi), or the same in psycopg's
  pipeline mode, a transaction in one round trip (pipeline).

A 2 KB body. No template, form, session cookie, CSRF, OAuth, logging or metrics: what any request of
this stack pays for its round trips through Flask, Werkzeug, SQLAlchemy Core, psycopg and redis-py,
under the Procfile's gunicorn.
"""
from __future__ import annotations

import contextlib
import os
import random

from flask import Flask
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, update

ROWS = 1000
metadata = MetaData()
row = Table("floor_row", metadata, Column("id", Integer, primary_key=True), Column("n", Integer, nullable=False),
            Column("note", String(64), nullable=False))
log = Table("floor_log", metadata, Column("id", Integer, primary_key=True), Column("n", Integer, nullable=False),
            Column("note", String(64), nullable=False))
BODY = b"x" * 2048
READ = "SELECT n, note FROM floor_row WHERE id = %s"
# Built once, as the product's statements are (bench/README round 3): each call only binds its values.
BUMP = update(row).where(row.c.id == bindparam("key")).values(n=row.c.n + 1)
LOG = insert(log).values(n=bindparam("key"), note=bindparam("note"))
# The same two writes as SQL for the DB-API connection (FLASK_FLOOR_WRITES dbapi and pipeline).
BUMP_SQL = "UPDATE floor_row SET n = n + 1 WHERE id = %s"
LOG_SQL = "INSERT INTO floor_log (n, note) VALUES (%s, %s)"
COUNT = """
local current = redis.call("incrby", KEYS[1], 1)
if current == 1 then redis.call("expire", KEYS[1], ARGV[1]) end
return current
"""


def create() -> Flask:
    from webapp.db import make_engine  # the product's engine: its pool, its pings, psycopg's prepared statements

    app = Flask(__name__)
    engine = make_engine(os.environ["DATABASE_URL"])
    writes_by = os.environ.get("FLASK_FLOOR_WRITES", "core")
    if writes_by not in ("core", "dbapi", "pipeline"):
        raise ValueError(f"FLASK_FLOOR_WRITES: core, dbapi or pipeline, not {writes_by!r}")
    limiter_script = None
    if os.environ.get("FLASK_REDIS_URL"):
        import redis

        limiter_script = redis.Redis.from_url(os.environ["FLASK_REDIS_URL"]).register_script(COUNT)

    @app.route("/step/<int:counts>/<int:reads>/<writes>", methods=["GET", "POST"])
    def step(counts: int, reads: int, writes: str):
        for _ in range(counts if limiter_script is not None else 0):
            limiter_script(keys=["floor/" + writes], args=[60])
        key = random.randrange(1, ROWS + 1)
        if reads:  # as db.plain(): the pool's DB-API connection in autocommit, SQL written once
            raw = engine.raw_connection()
            try:
                raw.driver_connection.autocommit = True
                cursor = raw.cursor()
                for _ in range(reads):
                    cursor.execute(READ, (key,))
                    cursor.fetchone()
                cursor.close()
            finally:
                raw.close()
        for statements in ([] if writes == "-" else [int(n) for n in writes.split(".")]):
            if writes_by == "core":  # as the product writes: SQLAlchemy's transaction on a pooled connection
                with engine.begin() as conn:
                    for _ in range(statements - 1):
                        conn.execute(BUMP, {"key": key})
                    conn.execute(LOG, {"key": key, "note": "floor"})
            else:
                raw = engine.raw_connection()
                try:
                    _write(raw.driver_connection, statements, key, writes_by == "pipeline")
                finally:
                    raw.close()
        return BODY, 200, {"Content-Type": "text/plain"}

    return app


def _write(conn, statements: int, key: int, pipelined: bool) -> None:
    """One transaction on psycopg's connection: BEGIN, the statements and COMMIT, each a round trip of
    its own, or (pipelined) all of them sent at once and answered together (psycopg's pipeline mode)."""
    with conn.pipeline() if pipelined else contextlib.nullcontext():
        with conn.cursor() as cursor:
            for _ in range(statements - 1):
                cursor.execute(BUMP_SQL, (key,))
            cursor.execute(LOG_SQL, (key, "floor"))
        conn.commit()


def prepare(url: str) -> None:
    """The floor's two tables, ROWS rows to read and update."""
    from webapp.db import make_engine

    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(row), [{"id": i, "n": 0, "note": "row"} for i in range(1, ROWS + 1)])
    engine.dispose()
