"""The OpenAPI document is public, valid OpenAPI 3.1, and true: real responses of every kind
validate against it (openapi-core), and schemathesis fuzzing the live app with a valid token finds
no 5xx and no response that breaks it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_spec_validator import validate

from webapp import clock
from webapp.corebanking import CoreUnavailable

from test_api_support import ApiActions, add_transactions, api, daily_rows, sandbox_account_id, set_account  # noqa: F401

BASE = "https://renkei.test"
# Schema-valid is not always rule-valid: dateFrom must lie inside the union's window, and a
# nextItemKey must be one we issued; both answer 400 with their own errorCode.
FUZZ_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "25"))  # per strategy; raise it for a deeper run
FUZZ_CONFIG = {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404"]}}}
DOC = "/amami/api/v1/openapi.json"


def fetch_document(client) -> dict:
    response = client.get(DOC, base_url=BASE)
    assert response.status_code == 200
    return response.get_json()


def test_document_is_public_valid_openapi_3_1(client):
    document = fetch_document(client)
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "https://renkei.test/amami/api/v1"}]
    assert set(document["paths"]) >= {"/accounts", "/accounts/balances", "/accounts/transactions"}
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        **document["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}


def test_document_is_per_union(client):
    response = client.get("/maruhachi/api/v1/openapi.json", base_url=BASE)
    assert response.get_json()["servers"] == [{"url": "https://renkei.test/maruhachi/api/v1"}]
    assert "丸八信用組合" in response.get_json()["info"]["title"]


def test_each_union_publishes_its_own_account_types(client):
    """Account types come from the union's configuration: 丸八 has 普通預金 only."""
    def account_type(tenant):
        document = client.get(f"/{tenant}/api/v1/openapi.json", base_url=BASE).get_json()
        return document["components"]["schemas"]["Account"]["properties"]["accountTypeCode"]

    assert account_type("amami")["enum"] == ["1", "4"]
    assert account_type("amami")["description"] == "科目: 1 普通預金, 4 貯蓄預金"
    assert account_type("maruhachi")["enum"] == ["1"]
    assert account_type("maruhachi")["description"] == "科目: 1 普通預金"


def test_each_union_publishes_its_configured_consent_days(app, client):
    tenants = app.extensions["tenants"]
    tenants["amami"] = dataclasses.replace(tenants["amami"], consent_days=45)
    tenants["maruhachi"] = dataclasses.replace(tenants["maruhachi"], consent_days=60)

    def description(tenant):
        return client.get(f"/{tenant}/api/v1/openapi.json", base_url=BASE).get_json()["info"]["description"]

    assert "of its consent (45 days)" in description("amami")
    assert "of its consent (60 days)" in description("maruhachi")
    assert "30 days" not in description("amami") + description("maruhachi")


def test_real_responses_of_every_kind_match_the_document(app, client, customers):
    spec = OpenAPI.from_dict(fetch_document(client))
    api = ApiActions(app, client, "amami")
    add_transactions(app, sandbox_account_id(app), daily_rows(dt.date(2026, 8, 18), dt.date(2026, 11, 18), per_day=6))
    auth = {"Authorization": f"Bearer {api.token}", "x-fapi-interaction-id": str(uuid.uuid4())}

    def call(path, headers=auth, **query):
        return client.get(f"/amami/api/v1/{path}", base_url=BASE, headers=headers, query_string=query)

    account_id = call("accounts").get_json()["accounts"][0]["accountId"]
    first = call("accounts/transactions", accountId=account_id).get_json()
    responses = {
        "accounts 200": call("accounts"),
        "balances 200": call("accounts/balances", accountId=account_id),
        "transactions 200 page 1": call("accounts/transactions", accountId=account_id),
        "transactions 200 last page": call("accounts/transactions", accountId=account_id,
                                           nextItemKey=first["nextItemKey"]),
        "400 bad date": call("accounts/transactions", accountId=account_id, dateFrom="2026-02-30"),
        "400 too old": call("accounts/transactions", accountId=account_id, dateFrom="2025-01-01"),
        "400 missing accountId": call("accounts/balances"),
        "401 no token": call("accounts", headers={}),
        "401 bad token": call("accounts", headers={"Authorization": "Bearer nope"}),
        "404 unknown account": call("accounts/balances", accountId="A" * 22),
        "document": call("openapi.json", headers={}),
    }
    set_account(app, "amami", status="moved")
    responses["403 moved"] = call("accounts")
    set_account(app, "amami", status="active")
    clock.set_now(dt.datetime(2026, 11, 18, 4, 1, tzinfo=clock.JST))
    responses["503 maintenance"] = call("accounts")
    clock.set_now(dt.datetime(2026, 11, 18, 14, 0, tzinfo=clock.JST))
    app.config["API_RATE_LIMIT"] = "1 per minute"
    call("accounts")
    responses["429"] = call("accounts")
    app.config["API_RATE_LIMIT"] = "600 per minute"
    app.extensions["core_banking"] = type("Down", (), {"account": lambda self, key: (_ for _ in ()).throw(
        CoreUnavailable())})()
    responses["503 core down"] = call("accounts")

    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {
        "accounts 200": 200, "balances 200": 200, "transactions 200 page 1": 200, "transactions 200 last page": 200,
        "400 bad date": 400, "400 too old": 400, "400 missing accountId": 400, "401 no token": 401,
        "401 bad token": 401, "404 unknown account": 404, "document": 200, "403 moved": 403,
        "503 maintenance": 503, "429": 429, "503 core down": 503}
    for name, response in responses.items():
        spec.validate_response(WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response))


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(app, client, customers, mode):
    api = ApiActions(app, client, "amami", access_seconds=3600)
    add_transactions(app, sandbox_account_id(app), daily_rows(dt.date(2026, 8, 18), dt.date(2026, 11, 18), per_day=6))
    account_id = api.account_id()
    schema = schemathesis.openapi.from_wsgi(DOC, app, config=schemathesis.Config.from_dict(FUZZ_CONFIG))
    # Its WSGI transport sends requests' default Accept-Encoding (gzip, br, zstd) but never decodes
    # the answer, which a real HTTP client does: ask for the body as it is.
    headers = {"Authorization": f"Bearer {api.token}", "Accept-Encoding": "identity"}
    strategies = [schema.as_strategy(generation_mode=mode)]
    if mode is schemathesis.GenerationMode.POSITIVE:  # also with the real accountId, to reach the 200s
        strategies += [schema[path]["GET"].as_strategy(generation_mode=mode, query={"accountId": account_id})
                       for path in ("/accounts/balances", "/accounts/transactions")]

    for strategy in strategies:
        @given(case=strategy)
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(headers=headers)

        run()
