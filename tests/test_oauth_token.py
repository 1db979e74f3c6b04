"""The token endpoint: codes (single use, 60 s, PKCE S256), access tokens (≤10 min), refresh tokens
(rotated, replay revokes the family, never past the consent's 30 days), client authentication."""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session, select

from conftest import DEMO, FlowActions, add_account, register_client
from test_oauth_support import (REDIRECT_URI, VERIFIER, authorized, exchange, introspect, later, refresh,
                                token_request, tokens)
from webapp import db
from webapp.oauth.models import Token


def token_rows(app):
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(Token).order_by(Token.id)))


def error_of(response) -> str:
    return response.get_json()["error"]


def test_code_exchanges_for_bearer_tokens_with_client_secret_basic(amami):
    response = exchange(amami, authorized(amami)["code"], auth="basic")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "accounts"
    assert body["expires_in"] == 600
    assert len(body["access_token"]) >= 43 and len(body["refresh_token"]) >= 43
    assert response.headers["Cache-Control"] == "no-store"


def test_code_exchanges_with_client_secret_post(amami):
    response = exchange(amami, authorized(amami)["code"], auth="post")
    assert response.status_code == 200 and response.get_json()["access_token"]


def test_token_endpoint_needs_client_authentication(amami):
    code = authorized(amami)["code"]
    response = exchange(amami, code, auth="none")
    assert response.status_code in (400, 401) and error_of(response) == "invalid_client"
    assert exchange(amami, code).status_code == 200  # the code was not spent by the refusal


def test_wrong_client_secret_is_refused(amami):
    code = authorized(amami)["code"]
    creds = dict(amami.oauth_client, client_secret="wrong" * 8)
    response = exchange(amami, code, creds=creds)
    assert response.status_code == 401 and error_of(response) == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("endpoint", ["token", "revoke", "introspect"])
@pytest.mark.parametrize("credentials", ["//46/w==",  # b"\xff\xfe:\xff": base64 of bytes that are not UTF-8
                                         "Y2xpZW50OnPpY3JldA==",  # b"client:s\xe9cret": Latin-1, not UTF-8
                                         "\u00e9t\u00e9"])  # not ASCII, so not base64 at all
def test_non_utf8_basic_auth_gets_invalid_client(amami, endpoint, credentials):
    response = amami.client.post(f"/amami/oauth/{endpoint}", data={"grant_type": "authorization_code", "token": "x"},
                                 headers={"Authorization": "Basic " + credentials})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')


@pytest.mark.parametrize("endpoint", ["token", "revoke", "introspect"])
@pytest.mark.parametrize("header", ["Basic ", "Basic \x0b"])  # a scheme and nothing after it
def test_blank_basic_auth_gets_invalid_client(amami, endpoint, header):
    response = amami.client.post(f"/amami/oauth/{endpoint}", data={"grant_type": "authorization_code", "token": "x"},
                                 headers={"Authorization": header})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_token_endpoint_takes_no_csrf_token(amami):
    # a fintech server has no CSRF token; client authentication is what protects the endpoint
    response = exchange(amami, authorized(amami)["code"])
    assert response.status_code == 200


def test_wrong_pkce_verifier_is_refused(amami):
    code = authorized(amami)["code"]
    response = exchange(amami, code, verifier="x" * 43)
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


def test_missing_pkce_verifier_is_refused(amami):
    code = authorized(amami)["code"]
    response = token_request(amami, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert response.status_code == 400 and error_of(response) == "invalid_request"


def test_code_is_bound_to_its_redirect_uri(amami):
    code = authorized(amami)["code"]
    response = token_request(amami, {"grant_type": "authorization_code", "code": code,
                                     "redirect_uri": REDIRECT_URI + "/", "code_verifier": VERIFIER})
    assert error_of(response) == "invalid_grant"


def test_code_is_bound_to_its_client(app, client, customers):
    actions = FlowActions(app, client, "amami")
    code = authorized(actions)["code"]
    other = register_client(app, "amami")
    assert error_of(exchange(actions, code, creds=other)) == "invalid_grant"


def test_code_cannot_be_used_at_the_other_union(app, client, customers):
    actions = FlowActions(app, client, "amami")
    code = authorized(actions)["code"]
    response = exchange(actions, code, tenant="maruhachi")
    assert response.status_code == 401 and error_of(response) == "invalid_client"


def test_code_still_works_at_59_seconds(amami):
    code = authorized(amami)["code"]
    later(seconds=59)
    assert exchange(amami, code).status_code == 200


def test_code_expires_after_60_seconds(amami):
    code = authorized(amami)["code"]
    later(seconds=61)
    response = exchange(amami, code)
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


def test_code_is_single_use_and_a_replay_revokes_its_tokens(amami):
    code = authorized(amami)["code"]
    first = exchange(amami, code).get_json()
    assert introspect(amami, first["access_token"])["active"] is True
    replay = exchange(amami, code)
    assert replay.status_code == 400 and error_of(replay) == "invalid_grant"
    assert introspect(amami, first["access_token"])["active"] is False
    assert error_of(refresh(amami, first["refresh_token"])) == "invalid_grant"


def _parallel_exchanges(app, n=8):
    actions = FlowActions(app, app.test_client(), "amami")
    code = authorized(actions)["code"]
    barrier = threading.Barrier(n)

    def attempt(_):
        c = app.test_client()
        barrier.wait()
        actions_copy = FlowActions.__new__(FlowActions)
        actions_copy.__dict__.update(actions.__dict__, client=c)
        return exchange(actions_copy, code).status_code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def test_parallel_exchanges_of_one_code_issue_at_most_once_on_sqlite(app, customers):
    statuses = _parallel_exchanges(app)
    assert statuses.count(200) == 1
    live = [t for t in token_rows(app) if t.revoked_at is None]
    assert len(live) <= 1


@pytest.mark.postgres
def test_parallel_exchanges_of_one_code_issue_at_most_once_on_postgres(pg_app):
    for tenant, c in DEMO.items():
        add_account(pg_app, tenant, **c)
    statuses = _parallel_exchanges(pg_app)
    assert statuses.count(200) == 1
    live = [t for t in token_rows(pg_app) if t.revoked_at is None]
    assert len(live) <= 1


def test_tokens_are_stored_only_hashed(amami):
    body = tokens(amami)
    (row,) = token_rows(amami.app)
    assert row.access_token_hash == hashlib.sha256(body["access_token"].encode()).hexdigest()
    assert row.refresh_token_hash == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    values = [str(v) for v in row.model_dump().values()]
    assert body["access_token"] not in values and body["refresh_token"] not in values


def test_access_token_lives_at_most_10_minutes(amami):
    body = tokens(amami)
    later(seconds=599)
    assert introspect(amami, body["access_token"])["active"] is True
    later(seconds=601)
    assert introspect(amami, body["access_token"])["active"] is False


def test_refresh_rotates_and_the_old_refresh_token_is_dead(amami):
    first = tokens(amami)
    later(seconds=300)
    second = refresh(amami, first["refresh_token"])
    assert second.status_code == 200
    body = second.get_json()
    assert body["refresh_token"] != first["refresh_token"] and body["access_token"] != first["access_token"]
    assert body["expires_in"] == 600 and body["scope"] == "accounts"
    assert introspect(amami, first["refresh_token"])["active"] is False
    assert refresh(amami, body["refresh_token"]).status_code == 200  # the new one works, once


def test_replayed_refresh_token_revokes_the_family(amami):
    first = tokens(amami)
    second = refresh(amami, first["refresh_token"]).get_json()
    replay = refresh(amami, first["refresh_token"])
    assert replay.status_code == 400 and error_of(replay) == "invalid_grant"
    assert introspect(amami, second["access_token"])["active"] is False
    assert error_of(refresh(amami, second["refresh_token"])) == "invalid_grant"
    assert all(t.revoked_at is not None for t in token_rows(amami.app))


def test_refresh_past_the_consent_expiry_is_refused(amami):
    first = tokens(amami)
    later(days=29)
    second = refresh(amami, first["refresh_token"]).get_json()
    later(days=30, seconds=1)
    response = refresh(amami, second["refresh_token"])
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


def test_no_token_outlives_the_consent(amami):
    first = tokens(amami)
    later(days=30, seconds=-100)
    body = refresh(amami, first["refresh_token"]).get_json()
    assert body["expires_in"] <= 100
    later(days=30)
    assert introspect(amami, body["access_token"])["active"] is False
    assert introspect(amami, body["refresh_token"])["active"] is False


def test_refresh_token_of_another_client_is_refused(app, client, customers):
    actions = FlowActions(app, client, "amami")
    first = tokens(actions)
    other = register_client(app, "amami")
    assert error_of(refresh(actions, first["refresh_token"], creds=other)) == "invalid_grant"
    assert refresh(actions, first["refresh_token"]).status_code == 200


def test_refresh_cannot_widen_the_scope(amami):
    first = tokens(amami)
    response = token_request(amami, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                     "scope": "accounts payments"})
    assert error_of(response) == "invalid_scope"


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit", ""])
def test_other_grant_types_are_refused(amami, grant_type):
    response = token_request(amami, {"grant_type": grant_type, "username": "x", "password": "y"})
    assert response.status_code == 400 and error_of(response) == "unsupported_grant_type"


def test_odd_input_at_the_token_endpoint_never_makes_a_500(amami):
    for data in ({"grant_type": "authorization_code", "code": "\"\\\x7f日本"},
                 {"grant_type": "refresh_token", "refresh_token": "x" * 5000},
                 {"grant_type": "authorization_code"}):
        assert token_request(amami, data).status_code in (400, 401)


def _parallel_refreshes(app, n=8):
    actions = FlowActions(app, app.test_client(), "amami")
    code = authorized(actions)["code"]
    refresh_token = exchange(actions, code).get_json()["refresh_token"]
    barrier = threading.Barrier(n)

    def attempt(_):
        copy = FlowActions.__new__(FlowActions)
        copy.__dict__.update(actions.__dict__, client=app.test_client())
        barrier.wait()
        return refresh(copy, refresh_token).status_code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def _assert_one_use_then_family_dead(app, statuses):
    """At most one use wins; the parallel others are replays, which revoke the whole family."""
    assert statuses.count(200) <= 1
    assert all(s in (200, 400) for s in statuses)
    if statuses.count(400):
        assert all(t.revoked_at is not None for t in token_rows(app))


def test_parallel_uses_of_one_refresh_token_rotate_at_most_once_on_sqlite(app, customers):
    _assert_one_use_then_family_dead(app, _parallel_refreshes(app))


@pytest.mark.postgres
def test_parallel_uses_of_one_refresh_token_rotate_at_most_once_on_postgres(pg_app):
    for tenant, c in DEMO.items():
        add_account(pg_app, tenant, **c)
    _assert_one_use_then_family_dead(pg_app, _parallel_refreshes(pg_app))
