"""Staff console sign-in (CONTRACT §9): setup link, password + TOTP, failure lock, timeouts,
one union's staff refused (403) on every staff URL of the other, CSRF on every staff POST."""
from __future__ import annotations

import datetime as dt
import json
import re

import pyotp
import pytest
from sqlmodel import Session, select

from webapp import clock, db, messages
from webapp.oplog import OperationLog
from webapp.staff.models import StaffAccount

from conftest import text_of
from staff_support import FAST_HASHING, PASSWORD, Staff, add_staff, next_step, signed_in


@pytest.fixture
def app_config():
    return dict(FAST_HASHING)


def _rows(app, model, *where):
    with app.app_context():
        with Session(db.engine()) as s:
            return list(s.exec(select(model).where(*where)))


# --- creating staff -------------------------------------------------------------------------------

def test_staff_add_prints_a_one_time_setup_url(app):
    result = app.test_cli_runner().invoke(args=["staff", "add", "--tenant", "amami", "--email", "a@example.jp",
                                                "--role", "operator"])
    assert result.exit_code == 0, result.output
    url = json.loads(result.output)["setup_url"]
    assert re.fullmatch(r"https://renkei\.test/amami/staff/setup/[A-Za-z0-9_-]{43}", url)


def test_staff_add_refuses_an_unknown_union_a_bad_role_and_a_second_account(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["staff", "add", "--tenant", "nowhere", "--email", "a@example.jp",
                               "--role", "operator"]).exit_code != 0
    assert runner.invoke(args=["staff", "add", "--tenant", "amami", "--email", "a@example.jp",
                               "--role", "boss"]).exit_code != 0
    add_staff(app, "amami", "a@example.jp")
    assert runner.invoke(args=["staff", "add", "--tenant", "amami", "--email", "a@example.jp",
                               "--role", "admin"]).exit_code != 0


def test_setup_page_shows_the_base32_secret_as_text_beside_a_qr_code(app, client):
    path = add_staff(app, "amami", "a@example.jp")
    page = text_of(client.get(path))
    assert "<svg" in page and "認証アプリ登録用QRコード" in page
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    assert len(secret) == 32
    stored = _rows(app, StaffAccount)[0].totp_secret
    assert stored == secret
    assert "奄美信用組合" in page  # the union's brand


def test_setup_link_works_once(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    again = client.get(staff.setup_path)
    assert again.status_code == 404
    assert "このリンクは無効です" in text_of(again)


def test_setup_link_expires_after_24_hours(app, client):
    staff = Staff(app, client, "amami")
    clock.set_now(clock.now() + dt.timedelta(hours=24, seconds=1))
    assert client.get(staff.setup_path).status_code == 404


def test_setup_link_of_one_union_does_not_open_under_the_other(app, client):
    staff = Staff(app, client, "amami")
    assert client.get(staff.setup_path.replace("/amami/", "/maruhachi/")).status_code == 404


def test_setup_with_a_wrong_code_sets_no_password(app, client):
    staff = Staff(app, client, "amami")
    page = client.get(staff.setup_path)
    staff._remember(page)
    response = client.post(staff.setup_path, data={"csrf_token": staff.csrf, "password": PASSWORD,
                                                   "password_confirm": PASSWORD, "code": "000000"})
    assert response.status_code == 200
    assert "確認コードが正しくありません" in text_of(response)
    assert _rows(app, StaffAccount)[0].password_hash is None


def test_setup_refuses_a_short_password(app, client):
    staff = Staff(app, client, "amami")
    page = client.get(staff.setup_path)
    staff._remember(page)
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', text_of(page)).group(1).replace(" ", "")
    response = client.post(staff.setup_path, data={"csrf_token": staff.csrf, "password": "short",
                                                   "password_confirm": "short",
                                                   "code": pyotp.TOTP(secret).at(clock.now())})
    assert "12文字以上で入力してください。" in text_of(response)
    assert _rows(app, StaffAccount)[0].password_hash is None


def test_password_is_stored_as_argon2(app, client):
    Staff(app, client, "amami").set_up()
    stored = _rows(app, StaffAccount)[0].password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# --- signing in -----------------------------------------------------------------------------------

def test_password_then_code_opens_the_console(app, client):
    staff = signed_in(app, client, "amami")
    home = staff.get("")
    assert home.status_code == 200
    assert "本日の状況" in text_of(home) and staff.email in text_of(home)
    logins = _rows(app, OperationLog, OperationLog.event == "staff_login", OperationLog.result == "ok")
    assert len(logins) == 1 and logins[0].staff_id == _rows(app, StaffAccount)[0].id


def test_password_alone_does_not_open_the_console(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    assert staff.enter_password().headers["Location"].endswith("/amami/staff/login/code")
    for path in ("", "accounts", "maintenance"):
        response = staff.get(path)
        assert response.status_code == 302 and "/amami/staff/login" in response.headers["Location"]


def test_console_without_login_goes_to_the_login_page(client, app):
    response = client.get("/amami/staff/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/amami/staff/login")


def test_wrong_password_is_refused(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    response = staff.enter_password("not the password at all")
    assert response.status_code == 200
    assert "メールアドレスまたはパスワードが正しくありません。" in text_of(response)


def test_unknown_email_gets_the_same_answer(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    staff.email = "nobody@example.jp"
    assert "メールアドレスまたはパスワードが正しくありません。" in text_of(staff.enter_password())


def test_wrong_code_is_refused(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    staff.enter_password()
    right = pyotp.TOTP(staff.secret).at(clock.now() + dt.timedelta(seconds=30))
    wrong = f"{(int(right) + 1) % 1000000:06d}"
    response = staff.enter_code(wrong)
    assert response.status_code == 200 and "確認コードが正しくありません" in text_of(response)
    assert staff.get("").status_code == 302


def test_a_code_is_accepted_once(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    staff.log_in()
    used = pyotp.TOTP(staff.secret).at(clock.now())
    other = app.test_client()
    second = Staff.__new__(Staff)
    second.__dict__.update(staff.__dict__, client=other, csrf=None)
    second.enter_password()
    response = second.enter_code(used)
    assert "確認コードが正しくありません" in text_of(response)


def test_five_failures_lock_the_staff_login_even_for_the_right_password(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    for _ in range(5):
        assert "正しくありません" in text_of(staff.enter_password("wrong password 123"))
    response = staff.enter_password()
    assert response.status_code == 200
    assert "一時的にロックされています" in text_of(response)
    clock.set_now(clock.now() + dt.timedelta(minutes=31))
    staff.log_in()


def test_wrong_codes_count_toward_the_same_lock(app, client):
    staff = Staff(app, client, "amami")
    staff.set_up()
    for _ in range(4):
        staff.enter_password("wrong password 123")
    assert staff.enter_password().status_code == 303  # the right password gives its place back
    response = staff.enter_code("000000" if pyotp.TOTP(staff.secret).at(clock.now()) != "000000" else "111111")
    assert "確認コードが正しくありません" in text_of(response)
    response = staff.enter_password()
    assert "一時的にロックされています" in text_of(response)


def test_login_is_rate_limited_per_address(app, client):
    app.config["STAFF_LOGIN_RATE_LIMIT"] = "3 per minute"
    staff = Staff(app, client, "amami")
    staff.set_up()
    staff.get("login")
    answers = [staff.post("login", {"email": "x@example.jp", "password": "x" * 12}) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers.get("X-RateLimit-Remaining") for r in answers] == ["2", "1", "0", "0"]
    # Retry-After only where a client is asked to wait: not on the form shown again
    assert [("Retry-After" in r.headers) for r in answers] == [False, False, False, True]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60


def test_session_ends_after_15_minutes_idle(app, client):
    staff = signed_in(app, client, "amami")
    clock.set_now(clock.now() + dt.timedelta(minutes=14))
    assert staff.get("").status_code == 200
    clock.set_now(clock.now() + dt.timedelta(minutes=15, seconds=1))
    response = staff.get("")
    assert response.status_code == 302 and response.headers["Location"].endswith("/amami/staff/login?reason=timeout")
    assert "一定時間操作がなかったか" in text_of(client.get(response.headers["Location"]))
    assert staff.get("").status_code == 302  # the session row is ended, not only the cookie


def test_session_ends_after_8_hours_even_when_busy(app, client):
    staff = signed_in(app, client, "amami")
    signed_in_at = clock.now()
    while clock.now() + dt.timedelta(minutes=10) < signed_in_at + dt.timedelta(hours=8):
        clock.set_now(clock.now() + dt.timedelta(minutes=10))
        assert staff.get("").status_code == 200
    clock.set_now(signed_in_at + dt.timedelta(hours=8, seconds=1))
    response = staff.get("")
    assert response.status_code == 302 and "reason=timeout" in response.headers["Location"]


def test_logout_ends_the_session(app, client):
    staff = signed_in(app, client, "amami")
    cookie = client.get_cookie("__Host-renkei-staff")
    assert staff.post("logout").status_code == 303
    other = app.test_client()
    other.set_cookie("__Host-renkei-staff", cookie.value)
    assert other.get("/amami/staff/").status_code == 302


def test_staff_session_is_its_own_cookie_not_the_customer_session(app, client, amami):
    amami.start()  # a customer flow in the same browser
    flow_cookie_before = client.get_cookie("__Host-renkei").value
    staff = signed_in(app, client, "amami")
    cookie = client.get_cookie("__Host-renkei-staff")
    assert cookie is not None and cookie.http_only and cookie.secure and cookie.same_site == "Strict"
    with app.test_request_context():
        serializer = app.session_interface.get_signing_serializer(app)
        data = serializer.loads(client.get_cookie("__Host-renkei").value)
    assert set(data) <= {"flows", "csrf_token"}  # nothing of the staff login in the customer's session
    assert serializer.loads(flow_cookie_before)["flows"] == data["flows"]
    assert amami.get("flow/account").status_code == 200  # the customer's flow goes on
    staff.post("logout")
    assert amami.get("flow/account").status_code == 200


# --- one union's staff, the other union's URLs ----------------------------------------------------

def _url_for_rule(rule, tenant: str) -> str:
    values = {"tenant": tenant, "branch": "201", "account_type": "1", "number": "0012345", "consent_id": 1,
              "window_id": 1, "token": "x" * 43, "client_id": "x"}
    return rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]


def staff_rules(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("staff.")]
    assert len(rules) >= 8
    return rules


def test_every_staff_url_of_the_other_union_is_403(app, client):
    signed_in(app, client, "amami", role="admin")
    amami_page = client.get("/amami/staff/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', text_of(amami_page)).group(1)
    seen = []
    for rule in staff_rules(app):
        url = _url_for_rule(rule, "maruhachi")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"csrf_token": csrf, "reason": "テスト"}
                                   if method == "POST" else None)
            assert response.status_code == 403, (method, url, response.status_code)
            seen.append((method, url))
    assert any(m == "POST" for m, _ in seen) and any(m == "GET" for m, _ in seen)


def test_every_staff_post_needs_the_csrf_token(app, client):
    signed_in(app, client, "amami", role="admin")
    before = len(_rows(app, OperationLog))
    for rule in staff_rules(app):
        if "POST" not in rule.methods:
            continue
        response = client.post(_url_for_rule(rule, "amami"), data={"reason": "テスト", "code": "123456"})
        assert response.status_code == 400, (rule.rule, response.status_code)
        assert messages.FORM_EXPIRED in text_of(response), rule.rule
    assert len(_rows(app, OperationLog)) == before  # nothing done, nothing logged
    assert client.get("/amami/staff/").status_code == 200  # still signed in: logout needed the token too


def test_parallel_wrong_passwords_get_no_more_than_five_checks(app, client, monkeypatch):
    """The failure count is reserved in SQL before the password is checked: 20 parallel sign-ins
    with wrong passwords, on their own connections, reach the password check at most 5 times."""
    from concurrent.futures import ThreadPoolExecutor

    from webapp.staff import auth

    app.config["STAFF_LOGIN_RATE_LIMIT"] = "1000 per minute"  # the address limit has its own test
    staff = Staff(app, client, "amami")
    staff.set_up()
    checked = []
    real = auth.password_matches
    monkeypatch.setattr(auth, "password_matches", lambda stored, pw: checked.append(1) or real(stored, pw))

    def attempt(_):
        browser = app.test_client()
        page = browser.get("/amami/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', text_of(page)).group(1)
        return browser.post("/amami/staff/login", data={"csrf_token": token, "email": staff.email,
                                                         "password": "wrong password 123"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert statuses == [200] * 20
    assert len(checked) == 5
    assert "一時的にロックされています" in text_of(staff.enter_password())
