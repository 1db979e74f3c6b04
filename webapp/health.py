"""Health for load balancers and orchestrators.

`/healthz` (webapp/pages.py) is bare: the process answers, nothing else is asked, so it stays
cheap enough for a check every few seconds and never fails because a dependency is down (a
restart would not help). `/readyz` asks what a request needs: the database (`SELECT 1`) and Redis
when `REDIS_URL` is set (PING); 200 `{"database": "ok", "redis": "ok" | "not configured"}`, or 503
naming what failed, so a load balancer stops sending customers to a process that cannot serve them.
Neither is counted by the load shedding; the answer never carries a URL or a password.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify
from sqlalchemy import text

log = logging.getLogger("renkei.health")
TIMEOUT_SECONDS = 2


def _database() -> str:
    from . import db

    try:
        with db.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as e:  # any failure means not ready; say which kind, never the URL
        log.warning("readyz: database unreachable (%s)", type(e).__name__)
        return f"unreachable ({type(e).__name__})"


def redis_url(app: Flask) -> str | None:
    url = str(app.config.get("RATELIMIT_STORAGE_URI") or "")
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


def _redis() -> str:
    url = redis_url(current_app)
    if url is None:
        return "not configured"
    try:
        client = current_app.extensions.get("readyz_redis")
        if client is None:
            import redis

            client = current_app.extensions["readyz_redis"] = redis.Redis.from_url(
                url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS)
        client.ping()
        return "ok"
    except Exception as e:
        log.warning("readyz: redis unreachable (%s)", type(e).__name__)
        return f"unreachable ({type(e).__name__})"


def readyz():
    checks = {"database": _database(), "redis": _redis()}
    ready = all(value in ("ok", "not configured") for value in checks.values())
    return jsonify(checks), 200 if ready else 503


def init_app(app: Flask) -> None:
    app.add_url_rule("/readyz", "readyz", readyz)
