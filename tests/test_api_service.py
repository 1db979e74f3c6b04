"""Service-wide rules of the account API: interaction ids, the operation log, rate limits,
maintenance windows, core banking outages, and JSON errors for every status."""
from __future__ import annotations

import datetime as dt
import re
import threading
import uuid

import pytest
from sqlmodel import Session, select

from webapp import clock, db, oplog
from webapp.corebanking import CoreUnavailable
from webapp.oplog import OperationLog

from test_api_support import ApiActions, api  # noqa: F401

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def api_log(app) -> list[OperationLog]:
    """The API's rows in the log, as a reader of it sees them: spooled rows drained first."""
    with app.app_context(), Session(db.engine()) as s:
        oplog.drain()
        return list(s.exec(select(OperationLog).where(OperationLog.screen == "API").order_by(OperationLog.id)))


def assert_json_error(response, status: int, code: str):
    assert response.status_code == status
    assert response.content_type == "application/json"
    assert response.get_json() == {"errorCode": code, "errorMessage": response.get_json()["errorMessage"]}
    assert response.get_json()["errorMessage"]


def test_client_interaction_id_is_echoed(api):
    sent = str(uuid.uuid4())
    response = api.get("accounts", headers={"x-fapi-interaction-id": sent})
    assert response.headers["x-fapi-interaction-id"] == sent


@pytest.mark.parametrize("sent", [None, "not-a-uuid", "x" * 500, "12345678-1234-1234-1234-1234567890ab; drop table"])
def test_missing_or_malformed_interaction_id_is_replaced_by_a_new_uuid(api, sent):
    headers = {"x-fapi-interaction-id": sent} if sent is not None else {}
    response = api.get("accounts", headers=headers)
    assert UUID_RE.fullmatch(response.headers["x-fapi-interaction-id"])


@pytest.mark.parametrize("path,kw", [("accounts", {"token": None}), ("accounts/balances", {"accountId": "A" * 22}),
                                     ("nowhere", {}), ("openapi.json", {})])
def test_every_api_response_carries_an_interaction_id(api, path, kw):
    response = api.get(path, **kw)
    assert UUID_RE.fullmatch(response.headers["x-fapi-interaction-id"])


def test_every_call_is_logged_with_client_account_endpoint_status_and_interaction_id(api):
    sent = str(uuid.uuid4())
    api.get("accounts", headers={"x-fapi-interaction-id": sent})
    api.get("accounts/balances", accountId="A" * 22)
    api.get("accounts", token="forged-token")
    ok, not_found, refused = api_log(api.app)
    assert (ok.tenant, ok.client_id, ok.branch, ok.account_type, ok.account_number, ok.event, ok.result) == \
        ("amami", api.grant["client_id"], "115", "1", "1100026", "accounts", "ok")
    assert ok.detail == f"status=200 interaction={sent}"
    assert (not_found.event, not_found.result) == ("balances", "fail") and "status=404" in not_found.detail
    assert (refused.result, refused.client_id) == ("refused", None)
    assert "status=401" in refused.detail and "reason=unknown" in refused.detail


def test_parallel_calls_are_each_logged_once_before_their_answer(api):
    """Calls that arrive together share the log's commits (webapp/oplog.py _GroupCommit), yet every
    one is in the log, once, by the time its client has the answer."""
    calls = 24
    barrier = threading.Barrier(calls)
    logged_by_then: list[int] = []
    sent = [str(uuid.uuid4()) for _ in range(calls)]

    def call(interaction_id):
        client = api.app.test_client()
        barrier.wait()
        response = client.get(f"/{api.tenant}/api/v1/accounts", headers={
            "Authorization": f"Bearer {api.token}", "x-fapi-interaction-id": interaction_id})
        assert response.status_code == 200
        logged_by_then.append(sum(interaction_id in (r.detail or "") for r in api_log(api.app)))

    threads = [threading.Thread(target=call, args=(i,)) for i in sent]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert logged_by_then == [1] * calls
    details = [r.detail for r in api_log(api.app)]
    assert sorted(details) == sorted(f"status=200 interaction={i}" for i in sent)


def test_the_token_never_reaches_the_log(api):
    api.get("accounts")
    api.get("accounts", token=None, access_token=api.token)
    with api.app.app_context():
        spool = oplog._spool()
        if spool is not None:  # SQLite: the rows' lines, before they are drained
            lines = b"".join(path.read_bytes() for path in spool.directory.glob("*.jsonl"))
            assert lines.count(b"\n") == 2 and api.token.encode() not in lines
    rows = api_log(api.app)
    assert len(rows) == 2
    for row in rows:
        assert api.token not in repr(row.model_dump())


def test_rate_limit_per_client_gets_429_with_retry_after(app, client, customers):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    busy = ApiActions(app, client, "amami")
    calm = ApiActions(app, client, "amami")
    for _ in range(3):
        assert busy.get("accounts").status_code == 200
    response = busy.get("accounts")
    assert_json_error(response, 429, "too_many_requests")
    assert int(response.headers["Retry-After"]) >= 1
    assert calm.get("accounts").status_code == 200  # another app has its own allowance
    assert api_log(app)[-2].result == "refused"


def test_maintenance_window_gets_503_with_retry_after_until_it_ends(api):
    clock.set_now(dt.datetime(2026, 11, 18, 4, 2, tzinfo=clock.JST))  # amami: daily 04:00–04:05
    response = api.get("accounts")
    assert_json_error(response, 503, "maintenance")
    assert response.headers["Retry-After"] == "180"
    assert api.get("openapi.json").status_code == 200  # the document stays readable
    clock.set_now(dt.datetime(2026, 11, 18, 4, 5, tzinfo=clock.JST))
    assert api.get("accounts").status_code == 200


class _FailingCore:
    def __init__(self, error: Exception):
        self.error = error

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise self.error
        return fail


def test_core_banking_unavailable_gets_503(api):
    api.app.extensions["core_banking"] = _FailingCore(CoreUnavailable("timeout"))
    assert_json_error(api.get("accounts"), 503, "service_unavailable")
    assert api_log(api.app)[-1].result == "error"


def test_unexpected_failure_gets_json_500_without_details(api):
    api.app.extensions["core_banking"] = _FailingCore(RuntimeError("secret internals"))
    response = api.get("accounts")
    assert_json_error(response, 500, "server_error")
    assert "secret internals" not in response.get_data(as_text=True)


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_get_json_405_with_allow(api, method):
    response = getattr(api.client, method)("/amami/api/v1/accounts", headers={"Authorization": f"Bearer {api.token}"})
    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_unknown_api_path_and_unknown_union_get_json_404(api):
    assert_json_error(api.get("accounts/nothing"), 404, "not_found")
    response = api.client.get("/nosuch/api/v1/accounts", headers={"Authorization": f"Bearer {api.token}"})
    assert_json_error(response, 404, "not_found")


def test_an_address_guessing_tokens_is_refused_after_its_failure_budget(app, api):
    app.config["API_AUTH_FAILURES_PER_IP"] = "3 per minute"
    for _ in range(3):
        assert api.get("accounts", token="guessed-token-value").status_code == 401
    response = api.get("accounts", token="guessed-token-value")
    assert_json_error(response, 429, "too_many_requests")
    assert api.get("accounts").status_code == 429  # even a real token, from that address, waits
