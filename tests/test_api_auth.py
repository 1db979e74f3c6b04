"""Bearer tokens on the account API (RFC 6750): who may read, and what every refusal looks like."""
from __future__ import annotations

import datetime as dt

import pytest

from webapp import clock
from webapp.oauth.models import Consent, OAuthClient, Token

from test_api_support import ApiActions, api, grant_token, update_row  # noqa: F401

REALM = 'realm="https://renkei.test/amami"'


def assert_invalid_token(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer {REALM}, error="invalid_token"'
    assert response.get_json()["errorCode"] == "invalid_token"
    assert set(response.get_json()) == {"errorCode", "errorMessage"}


def test_missing_token_gets_401_with_a_bare_bearer_challenge(api):
    response = api.get("accounts", token=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f"Bearer {REALM}"
    assert response.get_json()["errorCode"] == "unauthorized"


def test_another_auth_scheme_counts_as_no_token(api):
    response = api.get("accounts", token=None, headers={"Authorization": "Basic Y2xpZW50OnNlY3JldA=="})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f"Bearer {REALM}"


def test_valid_token_reads_and_the_scheme_name_is_case_insensitive(api):
    assert api.get("accounts").status_code == 200
    response = api.get("accounts", token=None, headers={"Authorization": f"bearer {api.token}"})
    assert response.status_code == 200


def test_unknown_token_gets_401_invalid_token(api):
    assert_invalid_token(api.get("accounts", token="not-a-token-we-issued"))


def test_expired_access_token_gets_401_invalid_token(api):
    assert api.get("accounts").status_code == 200
    clock.set_now(clock.now() + dt.timedelta(seconds=600))
    assert_invalid_token(api.get("accounts"))


def test_revoked_token_gets_401_invalid_token(api):
    update_row(api.app, Token, api.grant["token_id"], revoked_at=clock.now())
    assert_invalid_token(api.get("accounts"))


def test_revoked_consent_kills_its_live_tokens(api):
    update_row(api.app, Consent, api.grant["consent_id"], revoked_at=clock.now())
    assert_invalid_token(api.get("accounts"))


def test_consent_past_its_30_days_refuses_even_a_fresh_token(api):
    clock.set_now(clock.now() + dt.timedelta(days=30))
    # as if a refresh had just issued a new access token under the old consent
    update_row(api.app, Token, api.grant["token_id"], access_expires_at=clock.now() + dt.timedelta(minutes=10))
    assert_invalid_token(api.get("accounts"))


def test_token_of_another_union_gets_401_invalid_token(app, client, customers):
    maruhachi = ApiActions(app, client, "maruhachi")
    response = client.get("/amami/api/v1/accounts", headers={"Authorization": f"Bearer {maruhachi.token}"})
    assert_invalid_token(response)


def test_consent_recorded_for_another_union_gets_401_even_at_the_tokens_own_client(app, client, customers):
    api = ApiActions(app, client, "amami", consent_tenant="maruhachi")
    assert_invalid_token(api.get("accounts"))


def test_revoked_client_cannot_use_its_tokens(api):
    from sqlmodel import Session, select
    from webapp import db

    with api.app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient).where(OAuthClient.client_id == api.grant["client_id"])).one()
        row.revoked_at = clock.now()
        s.commit()
    assert_invalid_token(api.get("accounts"))


def test_token_whose_client_row_is_gone_or_of_another_union_gets_401(api):
    # The token, its consent and its client are read in one outer join: a missing client row
    # must refuse as a revoked one does, and so must a client registered under another union.
    from sqlmodel import Session, delete, select
    from webapp import db

    with api.app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient).where(OAuthClient.client_id == api.grant["client_id"])).one()
        row.tenant = "maruhachi"
        s.commit()
    assert_invalid_token(api.get("accounts"))
    with api.app.app_context(), Session(db.engine()) as s:
        s.exec(delete(OAuthClient).where(OAuthClient.client_id == api.grant["client_id"]))
        s.commit()
    assert_invalid_token(api.get("accounts"))


def test_consent_of_another_client_refuses_the_token(api):
    update_row(api.app, Consent, api.grant["consent_id"], client_id="someone-else")
    assert_invalid_token(api.get("accounts"))


def test_token_without_accounts_scope_gets_403_insufficient_scope(app, client, customers):
    api = ApiActions(app, client, "amami", scope="openid")
    response = api.get("accounts")
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"] == f'Bearer {REALM}, error="insufficient_scope", scope="accounts"'
    assert response.get_json()["errorCode"] == "insufficient_scope"


def test_token_in_the_query_string_is_refused_with_400(api):
    response = api.get("accounts", token=None, access_token=api.token)
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_token_in_a_form_body_is_refused_with_400_even_on_a_get(api, content_type):
    response = api.client.get("/amami/api/v1/accounts", data={"access_token": api.token}, content_type=content_type)
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_malformed_bearer_header_gets_400_invalid_request(api):
    for header in ("Bearer", "Bearer two words", "Bearer tok\"en", "Bearerabc"):
        response = api.get("accounts", token=None, headers={"Authorization": header})
        assert response.status_code == 400, header
        assert response.get_json()["errorCode"] == "invalid_request"
