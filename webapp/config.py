"""Configuration: defaults here, overrides from the environment (`FLASK_*`, `DATABASE_URL`, `REDIS_URL`)."""
from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from flask import Flask

DEV_SECRET = "dev-insecure-secret-change-me"


class Defaults:
    SECRET_KEY = DEV_SECRET
    BASE_URL = "http://127.0.0.1:5000"
    SANDBOX = False
    TELEPHONY_AUTH_TOKEN = "dev-telephony-token"
    PHONE_AUTH_WINDOW_SECONDS = 120
    FLOW_IDLE_SECONDS = 15 * 60
    FLOW_MAX_SECONDS = 60 * 60
    WTF_CSRF_TIME_LIMIT = None  # the flow's own timeouts bound a form's life
    SESSION_COOKIE_NAME = "renkei"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_DEFAULT_SENDER = "noreply@webcenter.anser.or.jp"
    MAIL_SUPPRESS_SEND = False
    # Rate limits live in Redis when REDIS_URL is set (shared by every process and host), else in
    # this process's memory. RATELIMIT_STORAGE_URI, when given, wins over both.
    REDIS_URL = None
    # A Redis that has not answered within this is taken as gone (limits fall back to memory).
    REDIS_TIMEOUT_SECONDS = 0.5
    RATELIMIT_HEADERS_ENABLED = True
    # Identity-check budgets (②, ⑤), kept in the database (webapp/budgets.py): every check per
    # address; failed checks per fintech app and per union, so a botnet of addresses is slowed too.
    IDENTITY_CHECKS_PER_IP = "30 per 10 minutes"
    IDENTITY_FAILURES_PER_CLIENT = "200 per 10 minutes"
    IDENTITY_FAILURES_PER_UNION = "500 per 10 minutes"
    # Every identity check is answered this long after it started, whatever its outcome, so the
    # answer's timing does not tell which accounts exist (above the slowest outcome's own time).
    IDENTITY_CHECK_SECONDS = 0.1
    # Load shedding (webapp/shedding.py): each address, and each app at the token endpoint, is
    # refused past its own limit before it counts toward the whole service's ceiling; beyond the
    # ceiling customers get the 混雑 message.
    REQUESTS_PER_IP = "20 per second; 600 per minute"
    TOKEN_REQUESTS_PER_CLIENT = "20 per second; 600 per minute"
    GLOBAL_REQUEST_LIMIT = "300 per second"
    TENANTS_DIR = None  # default: the package's tenants/ folder
    # Where static/'s hashed and compressed copies are written at start-up (default build/static).
    STATIC_BUILD_DIR = None
    # HTML and JSON above this size are compressed (Flask-Compress: zstd, br or gzip, as accepted).
    COMPRESS_MIN_SIZE = 500
    # Every answer is compressed as it is made, so each encoding gets a level for that, not for a
    # file compressed once (Flask-Compress's defaults: gzip 6, brotli 4, zstd 3). The 500-row
    # transactions page (86 KB of JSON): gzip 1 113 µs and 6.1 KB where 6 took 510 µs for 5.5 KB;
    # brotli 2 137 µs and 3.6 KB where 4 took 230 µs for 3.1 KB; zstd 1 61 µs and 2.9 KB where 3
    # took 71 µs for 3.4 KB. A 4.5 KB page: zstd 1 2.29 KB, 3 2.23 KB (bench/README, round 27).
    # Chrome and Firefox ask for zstd, Safari for br, most API clients for gzip.
    COMPRESS_LEVEL = 1
    COMPRESS_DEFLATE_LEVEL = 1
    COMPRESS_BR_LEVEL = 2
    COMPRESS_ZSTD_LEVEL = 1


def load(app: Flask, test_config: dict | None) -> None:
    app.config.from_object(Defaults)
    app.config["DATABASE_URL"] = os.environ.get(
        "DATABASE_URL", "sqlite:///" + os.path.join(app.instance_path, "renkei.sqlite3")
    )
    if os.environ.get("REDIS_URL"):
        app.config["REDIS_URL"] = os.environ["REDIS_URL"]
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    _rate_limit_storage(app)
    app.config["BASE_URL"] = str(app.config["BASE_URL"]).rstrip("/")
    app.config["PHONE_AUTH_WINDOW_SECONDS"] = int(app.config["PHONE_AUTH_WINDOW_SECONDS"])
    if app.config["BASE_URL"].startswith("http://") and not app.config.get("TESTING"):
        # Plain-http origins are development ones: a Secure cookie would never come back.
        app.config["SESSION_COOKIE_SECURE"] = False
    if app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_NAME"] == Defaults.SESSION_COOKIE_NAME:
        # __Host-: the browser keeps it only if Secure, Path=/ and host-only (ASVS 3.3.x)
        app.config["SESSION_COOKIE_NAME"] = "__Host-" + Defaults.SESSION_COOKIE_NAME
    _check_limits(app)
    _refuse_unsafe_production(app)


def _rate_limit_storage(app: Flask) -> None:
    """Rate limits in Redis when REDIS_URL is set, else in memory; a Redis outage never fails a request.

    When Redis stops answering (within REDIS_TIMEOUT_SECONDS, no retries), each process goes on
    limiting in its own memory (Flask-Limiter's in-memory fallback, logged as a warning by
    `extensions.Limiter`) and goes back to Redis once it answers again: limits then hold per process
    instead of across hosts for a while, which beats refusing or failing every customer.
    """
    uri = app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if uri.startswith("memory://"):
        return
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # e.g. the headers, after the check went to memory
    if uri.startswith(("redis://", "rediss://", "unix://")):
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = float(app.config["REDIS_TIMEOUT_SECONDS"])
        # redis-py's default retries with back-off would hold each request for seconds while Redis is down.
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {
            "socket_connect_timeout": timeout, "socket_timeout": timeout, "retry": Retry(NoBackoff(), 0)})


BUDGET_SETTINGS = ("IDENTITY_CHECKS_PER_IP", "IDENTITY_FAILURES_PER_CLIENT", "IDENTITY_FAILURES_PER_UNION")
REQUEST_LIMIT_SETTINGS = ("REQUESTS_PER_IP", "TOKEN_REQUESTS_PER_CLIENT", "GLOBAL_REQUEST_LIMIT")


def _check_limits(app: Flask) -> None:
    """A limit that cannot be read stops the start, not a customer's request later. A budget
    (webapp/budgets.py) is one limit; a request limit may be several (`20 per second; 600 per minute`)."""
    from limits import parse, parse_many

    for name in BUDGET_SETTINGS + REQUEST_LIMIT_SETTINGS:
        try:
            (parse if name in BUDGET_SETTINGS else parse_many)(str(app.config[name]))
        except ValueError:
            raise RuntimeError(f"FLASK_{name}={app.config[name]!r} is not a limit such as '30 per 10 minutes'") from None
    if not app.config.get("RATELIMIT_ENABLED", True):
        # Flask-Limiter's kill switch leaves it without a storage, and the invalid-token check and
        # load shedding count there: every API call and screen would answer 500.
        raise RuntimeError(f"FLASK_RATELIMIT_ENABLED={app.config['RATELIMIT_ENABLED']!r} is not supported: the "
                           "invalid-token check, load shedding and the API's per-app limit need the rate limiter. "
                           "Raise the limits instead (README, Security).")


def _refuse_unsafe_production(app: Flask) -> None:
    """Production (not debug, not testing, not sandbox) refuses to start with a default secret, and
    sandbox mode refuses a public https origin: it passes ④ without a phone (/call/demo) and takes
    development secrets, so it is for demos and tests on a developer's machine only."""
    if app.config["SANDBOX"] and not app.testing and _public_https(app.config["BASE_URL"]):
        raise RuntimeError(
            f"FLASK_SANDBOX=true with the public origin FLASK_BASE_URL={app.config['BASE_URL']}: refusing to start. "
            "Sandbox mode lets anyone pass the phone step without a call (/call/demo) and accepts development "
            "secrets; it is for demos on this machine (http://127.0.0.1 or https://localhost). "
            "Unset FLASK_SANDBOX in production.")
    if app.debug or app.testing or app.config["SANDBOX"]:
        return
    secret = app.config.get("SECRET_KEY")
    if not secret or secret == DEV_SECRET or len(str(secret)) < 32:
        raise RuntimeError("FLASK_SECRET_KEY is missing, default or shorter than 32 characters: refusing to start")
    if app.config.get("TELEPHONY_AUTH_TOKEN") in (None, "", Defaults.TELEPHONY_AUTH_TOKEN):
        raise RuntimeError("FLASK_TELEPHONY_AUTH_TOKEN is missing or default: refusing to start")


def _public_https(origin: str) -> bool:
    """An https origin whose host is not this machine (loopback or `localhost`)."""
    parts = urlsplit(origin)
    if parts.scheme != "https":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
