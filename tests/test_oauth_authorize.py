"""The authorization endpoint: the whole request is validated before screen ① appears.

Unknown client or redirect URI → an error page, never a redirect; every other error goes back to
the registered redirect URI with `state` and `iss` (RFC 6749 §4.1.2.1, RFC 9207).
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session, select

from conftest import FlowActions, register_client, text_of
from test_oauth_support import CHALLENGE, REDIRECT_URI, allow, at_consent, authorized, query
from webapp import clock, db, messages
from webapp.flow.models import Flow
from webapp.oauth.models import OAuthClient

ISS = "https://renkei.test/amami"


def authorize(actions, **params):
    merged = actions.authorize_params(code_challenge=CHALLENGE)
    merged.update(params)
    return actions.client.get(f"/{actions.tenant}/oauth/authorize",
                              query_string={k: v for k, v in merged.items() if v is not None})


def flows(app):
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(Flow)))


def assert_error_page(response, app):
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "お手数ですが、ご利用のアプリの提供事業者へお問い合わせください。" in text_of(response)
    assert flows(app) == []


def assert_error_redirect(response, error: str, state: str | None = "xyz"):
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query(location)
    assert params["error"] == error
    assert params.get("state") == state
    assert params["iss"] == ISS
    assert "code" not in params
    return params


def test_valid_request_starts_the_flow_at_screen_one(amami):
    response = authorize(amami)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/amami/flow/account")
    (flow,) = flows(amami.app)
    assert flow.client_id == amami.oauth_client["client_id"] and flow.redirect_uri == REDIRECT_URI
    assert flow.oauth_request == {"response_type": "code", "client_id": amami.oauth_client["client_id"],
                                  "redirect_uri": REDIRECT_URI, "scope": "accounts", "state": "xyz",
                                  "code_challenge": CHALLENGE, "code_challenge_method": "S256"}


def test_unknown_client_gets_an_error_page_not_a_redirect(amami):
    assert_error_page(authorize(amami, client_id="no-such-client"), amami.app)
    assert_error_page(authorize(amami, client_id=None), amami.app)


def test_client_of_the_other_union_is_unknown_here(app, client, customers):
    theirs = register_client(app, "maruhachi")
    actions = FlowActions(app, client, "amami")
    assert_error_page(authorize(actions, client_id=theirs["client_id"]), app)


def test_revoked_client_is_unknown(amami):
    with amami.app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient)).one()
        row.revoked_at = clock.now()
        s.add(row)
        s.commit()
    assert_error_page(authorize(amami), amami.app)


@pytest.mark.parametrize("redirect_uri", [
    "https://app.example/cb/",  # extra slash
    "https://app.example/cb?x=1",  # added query
    "https://evil.example/cb",  # different host
    "https://app.example.evil.example/cb",
    "http://app.example/cb",  # other scheme
    "https://APP.example/cb",  # case
    "https://app.example/cb#frag",
    "https://app.example:443/cb",  # explicit port
    None,  # missing
    "",
    'https://app.example/cb"><script>',
])
def test_redirect_uri_must_match_exactly_or_get_an_error_page(amami, redirect_uri):
    assert_error_page(authorize(amami, redirect_uri=redirect_uri), amami.app)


def test_duplicate_redirect_uri_gets_an_error_page(amami):
    url = f"/amami/oauth/authorize?client_id={amami.oauth_client['client_id']}&redirect_uri={REDIRECT_URI}" \
          f"&redirect_uri=https://evil.example/cb&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256"
    assert_error_page(amami.client.get(url), amami.app)


def test_missing_pkce_is_refused_back_to_the_client(amami):
    params = assert_error_redirect(authorize(amami, code_challenge=None, code_challenge_method=None), "invalid_request")
    assert "PKCE" in params["error_description"]
    assert flows(amami.app) == []


def test_plain_pkce_is_refused(amami):
    assert_error_redirect(authorize(amami, code_challenge_method="plain"), "invalid_request")
    assert flows(amami.app) == []


def test_pkce_without_a_method_is_refused_since_it_means_plain(amami):
    assert_error_redirect(authorize(amami, code_challenge_method=None), "invalid_request")


def test_malformed_code_challenge_is_refused(amami):
    assert_error_redirect(authorize(amami, code_challenge="short"), "invalid_request")


@pytest.mark.parametrize("response_type", ["token", "code token", "id_token", "", None, 'co"de'])
def test_only_response_type_code_is_accepted(amami, response_type):
    assert_error_redirect(authorize(amami, response_type=response_type), "unsupported_response_type")
    assert flows(amami.app) == []


def test_unknown_scope_is_refused(amami):
    assert_error_redirect(authorize(amami, scope="accounts payments"), "invalid_scope")


def test_missing_scope_means_accounts(amami):
    assert authorize(amami, scope=None).status_code == 303
    assert flows(amami.app)[0].oauth_request["scope"] == "accounts"


def test_error_without_state_carries_iss_only(amami):
    assert_error_redirect(authorize(amami, state=None, code_challenge=None), "invalid_request", state=None)


def test_every_authorization_response_carries_state_and_iss(app, client, customers):
    # success
    assert query(at_code(FlowActions(app, app.test_client(), "amami"), "s-ok"))["state"] == "s-ok"
    # refused request
    actions = FlowActions(app, app.test_client(), "amami")
    assert_error_redirect(authorize(actions, state="s-bad", code_challenge_method="plain"), "invalid_request", "s-bad")
    # 拒否する
    actions = FlowActions(app, app.test_client(), "amami")
    at_consent(actions, state="s-deny")
    actions.post("flow/cancel", {"confirm": "yes"})
    html = text_of(actions.get("flow/cancelled"))
    back = re.search(r'href="([^"]+)">連携元画面へ', html).group(1).replace("&amp;", "&")
    assert query(back) == {"error": "access_denied", "state": "s-deny", "iss": ISS}


def at_code(actions, state):
    at_consent(actions, state=state)
    response = allow(actions)
    params = query(response.headers["Location"])
    assert params["iss"] == ISS and "code" in params
    return response.headers["Location"]


def test_state_is_echoed_exactly(amami):
    state = "a b&c=d/é\"<>"
    params = authorized(amami, state=state)
    assert params["state"] == state


@pytest.mark.parametrize("field", ["state", "scope", "code_challenge", "response_type", "client_id", "redirect_uri"])
def test_odd_characters_in_any_parameter_never_make_a_500(amami, field):
    response = authorize(amami, **{field: '"\\\x7f日本語\'<>'})
    assert response.status_code in (303, 400)


@pytest.mark.postgres
@pytest.mark.parametrize("client_id", ["\x00", "demo-amami\x00", "a" * 65, "日本"])
def test_nul_in_client_id_gets_the_unknown_client_page_not_500_on_postgres(amami_on_postgres, client_id):
    # PostgreSQL refuses NUL in text even in a WHERE: an id we never issue must not reach the database
    assert_error_page(authorize(amami_on_postgres, client_id=client_id), amami_on_postgres.app)


@pytest.mark.postgres
def test_nul_in_client_id_at_the_token_endpoint_gets_invalid_client_not_500_on_postgres(amami_on_postgres):
    response = amami_on_postgres.client.post("/amami/oauth/token", data={
        "grant_type": "authorization_code", "code": "x", "client_id": "\x00", "client_secret": "x"})
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_authorize_in_a_maintenance_window_shows_the_notice(amami):
    clock.set_now(dt.datetime(2026, 11, 18, 4, 2, tzinfo=clock.JST))  # amami: daily 04:00–04:05
    response = authorize(amami)
    assert response.status_code == 503
    assert messages.MAINTENANCE in text_of(response)
    assert flows(amami.app) == []
