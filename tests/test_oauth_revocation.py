"""Revocation (RFC 7009) and introspection (RFC 7662): client-authenticated, each client its own tokens only."""
from __future__ import annotations

import json

from conftest import DEMO, FlowActions, register_client
from test_oauth_support import endpoint, introspect, refresh, tokens
from webapp import clock


def test_introspection_of_a_live_access_token_is_active(amami):
    body = tokens(amami)
    info = introspect(amami, body["access_token"])
    assert info["active"] is True
    assert info["client_id"] == amami.oauth_client["client_id"] and info["scope"] == "accounts"
    assert info["token_type"] == "Bearer" and info["iss"] == "https://renkei.test/amami"
    assert info["exp"] - info["iat"] == 600 and info["iat"] == int(clock.now().timestamp())


def test_introspection_of_a_refresh_token_is_active_until_the_consent_ends(amami):
    info = introspect(amami, tokens(amami)["refresh_token"], hint="refresh_token")
    assert info["active"] is True and info["exp"] - info["iat"] == 30 * 24 * 3600


def test_introspection_of_an_unknown_token_is_inactive(amami):
    assert introspect(amami, "no-such-token") == {"active": False}


def test_introspection_of_another_clients_token_is_inactive(app, client, customers):
    actions = FlowActions(app, client, "amami")
    body = tokens(actions)
    other = register_client(app, "amami")
    assert introspect(actions, body["access_token"], creds=other) == {"active": False}


def test_introspection_needs_client_authentication(amami):
    body = tokens(amami)
    response = endpoint(amami, "introspect", body["access_token"], auth="none")
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"
    wrong = dict(amami.oauth_client, client_secret="wrong")
    assert endpoint(amami, "introspect", body["access_token"], creds=wrong).status_code == 401


def test_introspection_with_client_secret_post(amami):
    assert introspect(amami, tokens(amami)["access_token"], auth="post")["active"] is True


def test_revoking_an_access_token_ends_it(amami):
    body = tokens(amami)
    response = endpoint(amami, "revoke", body["access_token"], hint="access_token")
    assert response.status_code == 200
    assert introspect(amami, body["access_token"])["active"] is False


def test_revoking_a_refresh_token_ends_the_whole_grant(amami):
    first = tokens(amami)
    second = refresh(amami, first["refresh_token"]).get_json()
    assert endpoint(amami, "revoke", second["refresh_token"], auth="post").status_code == 200
    assert introspect(amami, second["access_token"])["active"] is False
    assert introspect(amami, first["access_token"])["active"] is False
    assert refresh(amami, second["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_revoking_an_unknown_token_answers_200(amami):
    assert endpoint(amami, "revoke", "no-such-token").status_code == 200


def test_revocation_needs_client_authentication(amami):
    body = tokens(amami)
    assert endpoint(amami, "revoke", body["access_token"], auth="none").status_code in (400, 401)
    assert introspect(amami, body["access_token"])["active"] is True


def test_a_client_cannot_revoke_another_clients_token(app, client, customers):
    actions = FlowActions(app, client, "amami")
    body = tokens(actions)
    other = register_client(app, "amami")
    assert endpoint(actions, "revoke", body["access_token"], creds=other).status_code == 400
    assert introspect(actions, body["access_token"])["active"] is True


def test_staff_revoking_an_accounts_consent_ends_its_tokens(amami, runner):
    body = tokens(amami)
    c = DEMO["amami"]
    account = ["--tenant", "amami", "--branch", c["branch"], "--type", c["account_type"], "--number", c["number"]]
    listed = runner.invoke(args=["consents", "list", *account])
    assert listed.exit_code == 0 and json.loads(listed.output.splitlines()[0])["revoked_at"] is None
    result = runner.invoke(args=["consents", "revoke", *account])
    assert result.exit_code == 0 and "revoked 1" in result.output
    assert introspect(amami, body["access_token"])["active"] is False
    assert refresh(amami, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert json.loads(runner.invoke(args=["consents", "list", *account]).output.splitlines()[0])["revoked_at"]
