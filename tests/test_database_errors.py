"""The database away is a clear 503 ("try again later") wherever it shows, never a 500.

The SQLite fast paths (round 4 and 5 of issue 13: the poll's read, the maintenance windows' read,
the API's page read and its log's group commit) run on DB-API cursors and raise sqlite3's own
OperationalError, not SQLAlchemy's; and the API's log row is committed in a response hook, where
Flask hands the error handlers an InternalServerError wrapping it.
"""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from webapp import logspool, messages, oplog
from webapp.flow import call

from conftest import text_of
from test_api_service import assert_json_error
from test_api_support import api  # noqa: F401
from test_callauth_support import poll, to_call_screen


def raising(error: Exception):
    def fail(*_args, **_kwargs):
        raise error
    return fail


def sqlite_only(app):
    if app.extensions["db_engine"].dialect.name != "sqlite":
        pytest.skip("the DB-API paths are SQLite's")


def test_the_poll_on_a_locked_sqlite_database_says_unavailable(amami, monkeypatch):
    sqlite_only(amami.app)
    to_call_screen(amami)
    monkeypatch.setattr(call, "_sqlite_peek", raising(sqlite3.OperationalError("database is locked")))
    response = poll(amami)
    assert response.status_code == 503 and messages.UNAVAILABLE in text_of(response)


@pytest.mark.parametrize("error", [sa_exc.OperationalError("INSERT", {}, Exception("server closed")),
                                   sqlite3.OperationalError("database is locked")], ids=["sqlalchemy", "sqlite3"])
def test_the_api_log_not_written_is_a_503_not_a_500(api, monkeypatch, error):  # noqa: F811
    if isinstance(error, sqlite3.OperationalError):
        sqlite_only(api.app)
    api.app.config["PROPAGATE_EXCEPTIONS"] = False  # as served: a hook's error goes to the handlers
    monkeypatch.setattr(oplog._GroupCommit, "_commit", staticmethod(raising(error)))  # the log row's commit
    # On SQLite the row goes to the spool file first (webapp/logspool.py): the disk full there too.
    monkeypatch.setattr(logspool.Spool, "append", raising(OSError(28, "No space left on device")))
    assert_json_error(api.get("accounts"), 503, "service_unavailable")
