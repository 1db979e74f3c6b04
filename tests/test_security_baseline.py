"""Security baseline: CSRF on every POST, cookies, headers, secrets, no stack traces."""
import pytest

from conftest import TEST_SECRET, make_app, text_of
from webapp import create_app, messages


def test_post_without_csrf_token_is_refused(amami):
    amami.start()
    response = amami.client.post("/amami/flow/account", data={"branch": "115", "account_type": "1",
                                                               "account_number": "1100026"})
    assert response.status_code == 400
    page = text_of(response)
    assert messages.FORM_EXPIRED in page and "Bad Request" not in page and "CSRF" not in page
    assert "奄美信用組合" in page  # the union's own page, not Werkzeug's English one
    assert amami.get("flow/account").status_code == 200  # still on ①


@pytest.mark.parametrize("path", ["flow/account", "my/links/start", "flow/cancel"])
def test_an_htmx_press_with_a_stale_token_reloads_the_screen(amami, path):
    """htmx drops a 400 (base.html's responseHandling): without HX-Refresh the customer's press would
    do nothing visible; the reload brings a fresh token or the flow's own notice."""
    amami.start()
    response = amami.client.post(f"/amami/{path}", data={"csrf_token": "stale"}, headers={"HX-Request": "true"})
    assert response.status_code == 400 and response.headers["HX-Refresh"] == "true"
    assert messages.FORM_EXPIRED in text_of(response)


def test_flow_pages_carry_security_headers(amami):
    response = amami.start()
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"  # see test_csrf_https.py
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    over_https = amami.client.get("/amami/faq", base_url="https://renkei.test")
    assert "max-age=31536000" in over_https.headers["Strict-Transport-Security"]


def test_pages_have_no_inline_script(amami):
    html = text_of(amami.start())
    import re
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " on" + "click=" not in html


def test_session_cookie_is_secure_httponly_samesite(amami):
    response = amami.client.get("/amami/oauth/authorize", query_string=amami.authorize_params())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-renkei=")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Domain=" not in cookie


def test_production_refuses_default_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    with pytest.raises(RuntimeError, match="FLASK_SECRET_KEY"):
        create_app()


def test_production_refuses_short_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("FLASK_SECRET_KEY", "short")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    with pytest.raises(RuntimeError, match="FLASK_SECRET_KEY"):
        create_app()


@pytest.mark.parametrize("value", ["false", "0"])
def test_the_rate_limiter_cannot_be_switched_off(monkeypatch, tmp_path, value):
    """Flask-Limiter's kill switch would leave the invalid-token check and load shedding without a
    storage (every API call a 500): the start is refused, with what to do instead."""
    monkeypatch.setenv("FLASK_RATELIMIT_ENABLED", value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    with pytest.raises(RuntimeError, match="FLASK_RATELIMIT_ENABLED=.* is not supported"):
        create_app()


def test_production_starts_with_real_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("FLASK_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("FLASK_TELEPHONY_AUTH_TOKEN", "a-real-provider-token")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    app = create_app()
    assert app.config["SECRET_KEY"] == TEST_SECRET and not app.config["SANDBOX"]


def test_unexpected_error_shows_manual_message_and_incident_id_never_a_trace(amami, monkeypatch, caplog):
    amami.start()
    import webapp.flow.account as account_module

    def boom(*a, **k):
        raise ZeroDivisionError("secret internals")

    monkeypatch.setattr(account_module, "finish_step", boom)
    response = amami.account()
    html = text_of(response)
    assert response.status_code == 500
    assert "調整のため連絡ができなくなりました。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。" in html
    assert "Traceback" not in html and "secret internals" not in html
    incident = html.split("お問い合わせ番号：")[1][:12]
    assert any(incident in r.getMessage() for r in caplog.records)


def test_core_banking_down_shows_unavailable_message(amami, monkeypatch):
    from webapp.corebanking import CoreUnavailable
    amami.start(), amami.account()
    core = amami.app.extensions["core_banking"]

    def down(*a, **k):
        raise CoreUnavailable("timeout")

    monkeypatch.setattr(core, "check_identity", down)
    response = amami.customer()
    assert response.status_code == 503
    assert "ご指定のサービスはただ今お取扱できません。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。" in text_of(response)


def test_core_banking_down_does_not_count_toward_the_lock(amami, monkeypatch):
    from webapp.corebanking import CoreUnavailable
    from webapp import db, lockout
    from webapp.corebanking import AccountKey
    amami.start(), amami.account()
    core = amami.app.extensions["core_banking"]
    monkeypatch.setattr(core, "check_identity", lambda *a, **k: (_ for _ in ()).throw(CoreUnavailable()))
    for _ in range(6):
        amami.customer()
    with amami.app.app_context():
        assert not lockout.is_locked(db.session(), AccountKey("amami", "115", "1", "1100026"), 5)


@pytest.fixture
def app_config():
    return {"GLOBAL_REQUEST_LIMIT": "1000 per second", "IDENTITY_CHECKS_PER_IP": "3 per 10 minutes"}


def test_identity_checks_are_throttled_per_ip_with_busy_message(amami):
    amami.start(), amami.account()
    for _ in range(3):
        assert amami.customer(birth_year="1999").status_code == 200
    response = amami.customer(birth_year="1999")
    assert response.status_code == 429
    assert "ただ今受付が混雑しておりますので、しばらくしてからご利用下さい。" in text_of(response)


def test_overload_sheds_load_with_busy_message(database_url, customers):
    app = make_app(database_url, GLOBAL_REQUEST_LIMIT="3 per minute")
    clients = [app.test_client() for _ in range(4)]
    responses = [c.get("/amami/faq", environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}) for i, c in enumerate(clients)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert "ただ今受付が混雑しておりますので、しばらくしてからご利用下さい。" in text_of(responses[3])


def test_customer_and_pin_screens_share_one_per_ip_budget(amami):
    from test_oauth_support import pin, set_step
    amami.start(), amami.account()
    assert amami.customer(birth_year="1999").status_code == 200  # 1
    assert amami.customer().status_code == 303  # 2
    set_step(amami.app, "pin")
    amami.get("flow/pin")
    assert pin(amami, "0000").status_code == 200  # 3
    response = pin(amami, "1234")
    assert response.status_code == 429
    assert "ただ今受付が混雑しておりますので" in text_of(response)
