"""Server log: one JSON object per line, with the request's correlation id; never a credential.

Each line has `time` (UTC), `level`, `logger`, `message`, `request_id` (the request's
`x-fapi-interaction-id` when it sent a UUID, else a new one: the API answers with the same id) and
`correlation_id`: `flow-<id>` when the line belongs to a customer's flow, so every request of one
flow greps together with its operation-log rows (`log show` prints the same flow_id), else the
request id. The operation log's rows are written here too, as INFO lines of `renkei.events`.

Callers never pass a PIN, token or full phone number (oplog.py's rule); as a second line of
defence this formatter masks what looks like a Japanese phone number (`09011113333` →
`090****3333`) and the credential after `Bearer`, and the database engine hides statement
parameters in its errors (webapp/db.py).

`create_app()` installs it on the root logger for every process that is not a test (the web
workers, `flask mail send-pending`, the CLI); gunicorn's own error log uses the same formatter
(webapp/accesslog.py), which also points the root logger at gunicorn's error log. The level is
gunicorn's `--log-level` (default info) under gunicorn, else INFO; `FLASK_LOG_LEVEL` overrides both.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import uuid

import orjson
from flask import Flask, g, has_request_context, request

REQUEST_ID = "renkei.request_id"  # WSGI environ key
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A Japanese phone number, national (0 + 9–10 digits, hyphens allowed) or E.164 (+81…).
_PHONE = re.compile(r"(?<![\w+])(\+81|0)(\d{1,4})-?(\d{1,4})-?(\d{4})(?![\w-])")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
# What either of the two needs somewhere in a text (_PHONE a "0" or "+81", _BEARER the word): most of
# a line's texts (a union, a screen, an event) have neither, and one search rules both out.
_MAYBE_MASKED = re.compile(r"[0+]|(?i:bearer)")
# LogRecord attributes that are not extra fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def request_id(environ: dict) -> str:
    """The id of this request: the client's `x-fapi-interaction-id` if it is a UUID, else a new UUID."""
    rid = environ.get(REQUEST_ID)
    if rid is None:
        sent = environ.get("HTTP_X_FAPI_INTERACTION_ID", "")
        rid = environ[REQUEST_ID] = sent if _UUID.fullmatch(sent) else str(uuid.uuid4())
    return rid


def mask(text: str) -> str:
    """`text` with phone-number-shaped digits and bearer credentials masked."""
    if _MAYBE_MASKED.search(text) is None:
        return text

    def phone(m: re.Match) -> str:
        digits = m.group(1) + m.group(2) + m.group(3) + m.group(4)
        if not 10 <= len(digits.lstrip("+")) <= 12:
            return m.group(0)
        return digits[:3] + "****" + m.group(4)

    return _BEARER.sub(r"\1 [redacted]", _PHONE.sub(phone, text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        flow_id = getattr(record, "flow_id", None)
        if has_request_context():
            line["request_id"] = request_id(request.environ)
            if flow_id is None and g.get("flow") is not None:
                flow_id = g.flow.id
            line["correlation_id"] = f"flow-{flow_id}" if flow_id is not None else line["request_id"]
        elif flow_id is not None:
            line["correlation_id"] = f"flow-{flow_id}"
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        try:  # orjson: the same JSON for a line's texts, numbers and nulls, compact, in a tenth of the time
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # what orjson refuses (an int beyond 64 bits): json.dumps writes anything
            return json.dumps(line, ensure_ascii=False, default=str)


def json_handler(stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._renkei = True  # ours: replaced, never stacked, when configured again
    return handler


def configure_root(level: str | int = "INFO", handlers: list[logging.Handler] | None = None) -> None:
    """The root logger writes JSON lines (to stderr unless `handlers`); idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_renkei", False):
            root.removeHandler(handler)
    for handler in handlers or [json_handler()]:
        handler._renkei = True
        root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask) -> None:
    if app.testing:
        return  # pytest owns the root logger (caplog); tests attach JsonFormatter themselves
    root = logging.getLogger()
    level = str(app.config["LOG_LEVEL"]).upper() if app.config.get("LOG_LEVEL") else None
    if not any(getattr(h, "_renkei", False) for h in root.handlers):
        configure_root(level or "INFO")
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin loaded
    elif level:  # under gunicorn the master set the root up already, at gunicorn's --log-level
        root.setLevel(level)
    from flask.logging import default_handler

    app.logger.removeHandler(default_handler)  # app.logger propagates to the root's JSON handler
