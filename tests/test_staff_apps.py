"""連携アプリ (admin only): register as `flask clients add` does (secret shown once), disable (tokens
stop at once, a new authorization request gets the error page)."""
from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from webapp import db
from webapp.oauth.models import OAuthClient
from webapp.oplog import OperationLog

from conftest import text_of
from staff_support import FAST_HASHING, signed_in
from test_oauth_support import refresh, tokens


@pytest.fixture
def app_config():
    return dict(FAST_HASHING)


@pytest.fixture
def admin(app):
    return signed_in(app, app.test_client(), "amami", role="admin")


def register(admin, **override):
    admin.get("apps")
    data = {"name": "家計簿アプリ", "operator": "株式会社テスト", "redirect_uris": "https://kakeibo.example/cb",
            "reason": "契約締結"}
    data.update(override)
    return admin.post("apps", data)


def test_an_operator_may_not_see_apps(app):
    operator = signed_in(app, app.test_client(), "amami", role="operator")
    assert operator.get("apps").status_code == 403
    assert "連携アプリ" not in text_of(operator.get(""))


def test_register_shows_the_secret_once_and_the_client_works(app, admin):
    response = register(admin)
    assert response.status_code == 200
    page = text_of(response)
    client_id = re.search(r'<code id="client-id">([^<]+)</code>', page).group(1)
    secret = re.search(r'<code id="client-secret">([^<]+)</code>', page).group(1)
    assert secret not in text_of(admin.get("apps"))  # never again
    with app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).one()
        assert row.tenant == "amami" and row.redirect_uris == ["https://kakeibo.example/cb"]
        assert secret not in row.client_secret_hash
        logged = s.exec(select(OperationLog).where(OperationLog.event == "client_registered")).one()
        assert logged.staff_id is not None and logged.client_id == client_id and logged.detail == "契約締結"
    authorize = app.test_client().get("/amami/oauth/authorize", query_string={
        "response_type": "code", "client_id": client_id, "redirect_uri": "https://kakeibo.example/cb",
        "scope": "accounts", "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})
    assert authorize.status_code == 303


def test_register_refuses_a_plain_http_or_fragment_uri(app, admin):
    app.config["SANDBOX"] = False
    for uri in ("http://kakeibo.example/cb", "https://kakeibo.example/cb#x", "kakeibo"):
        response = register(admin, redirect_uris=uri)
        assert response.status_code == 400 and "戻り先URIは" in text_of(response)
    with app.app_context(), Session(db.engine()) as s:
        assert s.exec(select(OAuthClient)).all() == []


def test_disabled_app_tokens_stop_and_new_requests_get_the_error_page(app, admin, amami):
    body = tokens(amami)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.get("/amami/api/v1/accounts", headers=headers).status_code == 200
    admin.get("apps")
    client_id = amami.oauth_client["client_id"]
    response = admin.post(f"apps/{client_id}/disable", {"reason": "契約終了"})
    assert response.status_code == 303
    assert api.get("/amami/api/v1/accounts", headers=headers).status_code == 401
    assert refresh(amami, body["refresh_token"]).status_code in (400, 401)
    start = app.test_client().get("/amami/oauth/authorize", query_string=amami.authorize_params())
    assert start.status_code == 400 and "連携元アプリを確認できませんでした" in text_of(start)
    assert "停止中" in text_of(admin.get("apps"))


def test_disable_is_refused_for_the_other_unions_app(app, admin, maruhachi):
    admin.get("apps")
    client_id = maruhachi.oauth_client["client_id"]
    assert admin.post(f"apps/{client_id}/disable", {"reason": "x"}).status_code == 404
    with app.app_context(), Session(db.engine()) as s:
        assert s.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).one().revoked_at is None
