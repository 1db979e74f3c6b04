"""Service-wide conditions (SPEC §3 "any screen"): maintenance, load shedding, system error,
dependency unavailable. Customers see the manual's message, never a stack trace; a system error
gets an incident id that is logged with the traceback so staff can find it.

The database out of reach (refusing connections, restarting, a pool that cannot hand out a
connection in time) is a dependency unavailable like core banking: 503 with No.4, not a 500. The
request's transaction never committed, so nothing of it was written; the customer tries again.
"""
from __future__ import annotations

import logging
import secrets

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from . import messages
from .corebanking import CoreUnavailable
from .render import is_htmx, render_page

log = logging.getLogger("renkei.errors")


def wants_json() -> bool:
    return "/api/" in request.path or "/oauth/" in request.path and request.method == "POST" \
        or request.path.startswith("/telephony/")


def render_notice(message: str, status: int, *, detail: str | None = None, incident: str | None = None,
                  resumes: str | None = None, leave: str | None = None, return_url: str | None = None):
    """A full page (or, for htmx, the notice partial) carrying one service-wide message.

    An htmx GET is a poll re-fetching its own element (④'s status area): it gets that element back
    with the message and the same poll, so it shows why and goes on by itself when service returns
    (base.html has htmx swap 429 and 5xx answers).

    `resumes`: when service comes back (maintenance). The way back to the app (連携元画面へ) is either
    `leave`, a URL to POST to that ends the customer's flow first, or `return_url`, a link to the
    client's redirect URI when there is no flow yet."""
    context = dict(message=message, detail=detail, incident=incident, resumes=resumes, leave=leave,
                   return_url=return_url)
    partial = None
    if request.method == "GET" and request.headers.get("HX-Target"):
        partial = "partials/notice_polling.html"
        context.update(element_id=request.headers["HX-Target"], poll_url=request.full_path.rstrip("?"))
    return render_page("notice.html", status, partial=partial, **context)


def _json_error(code: str, message: str, status: int):
    return jsonify(errorCode=code, errorMessage=message), status


def _json_http_error(e: HTTPException):
    """An HTTP error (400, 405, …) as JSON, keeping its headers (Allow on 405)."""
    response, status = _json_error(e.name.lower().replace(" ", "_").replace("'", ""), e.description or e.name, e.code)
    for name, value in e.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


def init_app(app: Flask) -> None:
    @app.errorhandler(429)
    def too_many(e):
        if wants_json():
            response = _json_error("too_many_requests", messages.TOO_MANY_REQUESTS, 429)
        else:
            response = render_notice(messages.BUSY, 429)
        return response

    @app.errorhandler(CoreUnavailable)
    def core_unavailable(e):
        log.warning("core banking unavailable: %s", type(e).__name__)
        if wants_json():
            return _json_error("service_unavailable", messages.UNAVAILABLE, 503)
        return render_notice(messages.UNAVAILABLE, 503)

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(sa_exc.TimeoutError)
    def database_unavailable(e):
        incident = secrets.token_hex(6)
        reason = " ".join(str(getattr(e, "orig", None) or e).split())[:200]
        log.error("incident %s: database unavailable on %s %s: %s: %s", incident, request.method, request.path,
                  type(getattr(e, "orig", None) or e).__name__, reason)
        if wants_json():
            return _json_error("service_unavailable", messages.UNAVAILABLE, 503)
        return render_notice(messages.UNAVAILABLE, 503, incident=incident)

    database_errors = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
    if app.extensions["db_engine"].dialect.name == "sqlite":
        # The SQLite fast paths (the poll's and the maintenance windows' reads, the API's page read and
        # its log's group commit: db.insert_committed) run on DB-API cursors, so a locked or unreadable
        # database raises sqlite3's own error there, not SQLAlchemy's: the same clear 503.
        import sqlite3

        app.register_error_handler(sqlite3.OperationalError, database_unavailable)
        database_errors += (sqlite3.OperationalError,)

    @app.errorhandler(CSRFError)
    def form_expired(e):
        """A POST without a valid CSRF token (the session ended, a stale tab, another site): refused
        and nothing done. An htmx press reloads the screen (a fresh token, or the flow's own notice
        when the session is gone), since htmx would otherwise drop the 400 and nothing would happen."""
        log.warning("form refused on %s %s: %s", request.method, request.path, e.description)
        if wants_json():
            return _json_http_error(e)
        response = render_notice(messages.FORM_EXPIRED, 400)
        if is_htmx():
            response.headers["HX-Refresh"] = "true"
        return response

    @app.errorhandler(404)
    def not_found(e):
        if wants_json():
            return _json_error("not_found", messages.RESOURCE_NOT_FOUND, 404)
        return render_notice(messages.PAGE_NOT_FOUND, 404)

    @app.errorhandler(Exception)
    def unexpected(e):
        if isinstance(e, HTTPException) and e.code < 500:
            return _json_http_error(e) if wants_json() else e
        # Raised by a response hook (the API's log row is committed in one), the error reaches here
        # wrapped by Flask in an InternalServerError: the database away is still a 503, not a 500.
        if isinstance(getattr(e, "original_exception", None), database_errors):
            return database_unavailable(e.original_exception)
        incident = secrets.token_hex(6)
        log.error("incident %s: %s %s", incident, request.method, request.path, exc_info=e)
        if wants_json():
            return _json_error("server_error", messages.SYSTEM_ERROR + f"（{incident}）", 500)
        return render_notice(messages.SYSTEM_ERROR, 500, incident=incident)
