"""⑥ SOA206 情報連携認可: 許可する grants in one transaction and returns a code; 拒否する tells the client no."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re

import pytest
from sqlmodel import Session, select

from conftest import DEMO, FlowActions, text_of
from sql_support import recording
from test_oauth_support import REDIRECT_URI, allow, at_consent, at_pin, authorized, exchange, latest_flow, query
from webapp import clock, db, lockout, messages
from webapp.corebanking import AccountKey
from webapp.mail.models import MailOutbox
from webapp.oauth.models import AuthorizationCode, Consent, OAuthClient

OPERATOR = "アイ・ティ・リアライズ株式会社"


def rows(app, model):
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(model)))


@pytest.mark.parametrize("tenant, continues", [("amami", "続けることになります。"), ("maruhachi", "続けることとなります。")])
def test_consent_screen_shows_operator_scope_period_and_notes(app, client, customers, tenant, continues):
    html = text_of(at_consent(FlowActions(app, client, tenant)))
    assert "API連携認証（情報連携認可）" in html and "画面ID : SOA206" in html
    assert f"{OPERATOR}が以下の許可を求めています。" in html
    assert "口座情報・明細情報へのアクセス" in html
    assert "お客様の口座の資産情報へのアクセスを許可します。" in html
    assert "認可期間" in html and "30日" in html
    assert "ご注意" in html
    assert "次に進む前に、Webサイトを信頼できるかどうかをお客様自身の判断で確認してください。" in html
    assert f"「許可する」ボタンをクリックすることによって、お客様は{OPERATOR}の利用規約のもと利用を{continues}" in html
    assert "お客様の入力された暗証番号等の認証情報はAPI連携先には開示されません。また、API連携先との間の通信は暗号化されています。" in html
    assert "本アプリケーションへのアクセスは、当信用組合へ連絡することでも解除することができます。" in html
    assert "XXX事業者" not in html
    assert '<label for="agree"><input type="checkbox" id="agree"' in html
    assert "当信用組合のAPI利用規定を確認し、同意します。</label>" in html
    assert "許可する</button>" in html and "拒否する</button>" in html


def test_consent_period_is_the_unions_configured_days(app, client, customers):
    tenants = app.extensions["tenants"]
    tenants["amami"] = dataclasses.replace(tenants["amami"], consent_days=45)
    actions = FlowActions(app, client, "amami")
    assert "45日" in text_of(at_consent(actions))
    authorized_consent = allow(actions)
    assert authorized_consent.status_code == 303
    consent = rows(app, Consent)[0]
    assert consent.expires_at - consent.granted_at == dt.timedelta(days=45)


def test_consent_screen_is_refused_before_the_pin(amami):
    at_pin(amami)
    response = amami.get("flow/consent")
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/pin")


def test_allow_without_the_box_ticked_is_refused_with_a_message(amami):
    at_consent(amami)
    response = allow(amami, agree=False)
    assert response.status_code == 200
    html = text_of(response)
    assert "API利用規定をご確認のうえ「当信用組合のAPI利用規定を確認し、同意します。」にチェックを入れて下さい。" in html
    assert "<dialog open" in html
    assert rows(amami.app, Consent) == [] and rows(amami.app, AuthorizationCode) == []
    assert latest_flow(amami.app).ended_at is None
    assert allow(amami).status_code == 303  # ticked, it works


def test_allow_returns_to_the_client_with_code_state_and_iss(amami):
    at_consent(amami, state="st-123")
    response = allow(amami)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query(location)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "st-123" and params["iss"] == "https://renkei.test/amami"
    assert len(params["code"]) >= 43


def test_allow_with_htmx_redirects_the_whole_page(amami):
    at_consent(amami)
    response = allow(amami, htmx=True)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith(REDIRECT_URI + "?code=")


def test_allow_stores_consent_for_the_account_for_30_days(amami):
    authorized(amami)
    (consent,) = rows(amami.app, Consent)
    c = DEMO["amami"]
    assert (consent.tenant, consent.branch, consent.account_type, consent.account_number) == \
        ("amami", c["branch"], c["account_type"], c["number"])
    assert consent.client_id == amami.oauth_client["client_id"] and consent.scope == "accounts"
    assert consent.granted_at == clock.now()
    assert consent.expires_at == clock.now() + dt.timedelta(days=30)
    assert consent.revoked_at is None


def test_code_is_stored_hashed_with_its_pkce_challenge_for_60_seconds(amami):
    code = authorized(amami)["code"]
    (row,) = rows(amami.app, AuthorizationCode)
    assert row.code_hash == hashlib.sha256(code.encode()).hexdigest()
    assert code not in (row.code_hash, row.code_challenge)
    assert row.code_challenge_method == "S256"
    assert row.expires_at - row.issued_at == dt.timedelta(seconds=60)
    assert row.redirect_uri == REDIRECT_URI and row.used_at is None


def test_allow_queues_the_completion_mail_with_the_consent(amami):
    authorized(amami)
    (mail,) = rows(amami.app, MailOutbox)
    (consent,) = rows(amami.app, Consent)
    assert mail.recipient == "taro@example.jp"
    assert mail.flow_id == latest_flow(amami.app).id and mail.consent_id == consent.id


def test_nothing_is_granted_when_the_mail_cannot_be_queued(amami, monkeypatch):
    at_consent(amami)

    def broken(*a, **kw):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr("webapp.oauth.consents.queue_completion_mail", broken)
    response = allow(amami)
    assert response.status_code == 500
    assert rows(amami.app, Consent) == [] and rows(amami.app, AuthorizationCode) == []
    assert latest_flow(amami.app).ended_at is None  # all or nothing



def test_allow_validates_the_request_and_writes_the_mail_before_its_first_write(amami, monkeypatch):
    """⑥'s transaction begins with the flow's close, and on SQLite its first write takes the write
    gate: Authlib's validation (which reads the client) and the mail's templates run before it."""
    from webapp.mail import outbox

    at_consent(amami)
    compose = outbox.compose_completion
    composed_after = []
    with recording(amami.app) as seen:
        def noting(**kw):
            composed_after.append(list(seen))
            return compose(**kw)

        monkeypatch.setattr("webapp.oauth.consents.compose_completion", noting)
        response = allow(amami)
    assert response.status_code == 303
    close = next(i for i, sql in enumerate(seen) if sql.startswith("UPDATE flow SET") and "ended_at" in sql)
    client_reads = [i for i, sql in enumerate(seen) if sql.startswith("SELECT") and "FROM oauth_client" in sql]
    assert client_reads and max(client_reads) < close
    [before] = composed_after
    assert not any(sql.startswith(("UPDATE", "INSERT")) for sql in before)
    [mail] = rows(amami.app, MailOutbox)
    [consent] = rows(amami.app, Consent)
    assert mail.consent_id == consent.id and "2026年11月18日" in mail.body

def test_allow_ends_the_flow(amami):
    authorized(amami)
    flow = latest_flow(amami.app)
    assert flow.outcome == "consented" and flow.ended_at is not None
    assert amami.get("flow/consent").status_code == 400
    assert allow(amami).status_code == 400
    assert len(rows(amami.app, Consent)) == 1


def test_parallel_allow_grants_once(amami):
    at_consent(amami)
    app = amami.app
    statuses = amami.post_in_parallel("flow/consent", {"agree": "y"})
    assert statuses.count(303) == 1
    assert len(rows(app, Consent)) == 1 and len(rows(app, AuthorizationCode)) == 1 and len(rows(app, MailOutbox)) == 1


def test_deny_shows_the_cancel_screen_and_tells_the_client_access_denied(amami):
    at_consent(amami, state="deny-state")
    response = amami.post("flow/cancel", {"confirm": "yes"})
    assert response.status_code == 303
    html = text_of(amami.get("flow/cancelled"))
    assert "API連携認証の中止" in html and "API連携認証を中止しました。" in html and "連携元画面へ" in html
    back = re.search(r'href="([^"]+)">連携元画面へ', html).group(1).replace("&amp;", "&")
    assert back.startswith(REDIRECT_URI + "?")
    assert query(back) == {"error": "access_denied", "state": "deny-state", "iss": "https://renkei.test/amami"}
    assert latest_flow(amami.app).outcome == "denied"
    assert rows(amami.app, Consent) == []


def test_consent_is_refused_when_the_account_was_locked_after_the_pin(amami):
    at_consent(amami)
    key = AccountKey("amami", "115", "1", "1100026")
    with amami.app.app_context():
        s = db.session()
        for _ in range(5):
            lockout.reserve_attempt(s, key, 5)
        s.commit()
    html = text_of(allow(amami))
    assert messages.LOCKED in html and messages.LOCKED_REASON in html
    assert rows(amami.app, Consent) == [] and rows(amami.app, AuthorizationCode) == []


def revoke_client(app) -> None:
    with app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient)).one()
        row.revoked_at = clock.now()
        s.add(row)
        s.commit()


def test_client_revoked_during_the_flow_gets_no_code(amami):
    at_consent(amami)
    revoke_client(amami.app)
    response = allow(amami)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert rows(amami.app, Consent) == [] and rows(amami.app, AuthorizationCode) == []
    assert latest_flow(amami.app).outcome == "client_gone"


def test_a_client_revoked_while_allow_is_prepared_cannot_spend_the_code(amami, monkeypatch):
    """⑥ validates the request before its transaction (prepare_consent): a client revoked in
    between still gets its redirect, but the token endpoint refuses the code's exchange."""
    from webapp.flow import consent as consent_view

    prepare = consent_view.prepare_consent

    def then_revoke(*args, **kw):
        prepared = prepare(*args, **kw)
        revoke_client(amami.app)
        return prepared

    at_consent(amami)
    monkeypatch.setattr(consent_view, "prepare_consent", then_revoke)
    response = allow(amami)
    assert response.status_code == 303
    answer = exchange(amami, query(response.headers["Location"])["code"])
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client"
    assert "access_token" not in answer.get_json()

def test_both_unions_complete_with_their_own_issuer(app, client, customers):
    for tenant in ("amami", "maruhachi"):
        params = authorized(FlowActions(app, app.test_client(), tenant))
        assert params["iss"] == f"https://renkei.test/{tenant}"
