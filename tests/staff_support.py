"""Staff in tests: create one with the CLI, set them up through the setup page, sign them in.

Codes come from pyotp with the seed the setup page shows; each code moves the test clock to the
next 30 s step first (a code is accepted once, and the clock is frozen)."""
from __future__ import annotations

import pytest

import datetime as dt
import html
import json
import re

import pyotp

from webapp import clock

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
PASSWORD = "correct horse battery staple"
FAST_HASHING = {"STAFF_ARGON2_MEMORY_KIB": 1024}  # argon2 at 1 MiB: the same code path, quicker tests


def add_staff(app, tenant: str, email: str, role: str = "operator") -> str:
    result = app.test_cli_runner().invoke(args=["staff", "add", "--tenant", tenant, "--email", email, "--role", role])
    assert result.exit_code == 0, result.output
    url = json.loads(result.output)["setup_url"]
    return url.removeprefix(app.config["BASE_URL"])


def next_step() -> None:
    clock.set_now(clock.now() + dt.timedelta(seconds=30))


class Staff:
    """What a staff member does, through one test client (one browser)."""

    def __init__(self, app, client, tenant: str, email: str | None = None, role: str = "operator"):
        self.app, self.client, self.tenant = app, client, tenant
        self.email = email or f"{role}@{tenant}.example.jp"
        self.role = role
        self.secret = None
        self.csrf = None
        self.setup_path = add_staff(app, tenant, self.email, role)

    def url(self, path: str) -> str:
        return f"/{self.tenant}/staff/{path}"

    def get(self, path: str, **kw):
        response = self.client.get(self.url(path), **kw)
        self._remember(response)
        return response

    def post(self, path: str, data: dict | None = None, **kw):
        response = self.client.post(self.url(path), data={"csrf_token": self.csrf, **(data or {})}, **kw)
        self._remember(response)
        return response

    def _remember(self, response):
        m = CSRF_RE.search(response.get_data(as_text=True))
        if m:
            self.csrf = m.group(1)

    def code(self) -> str:
        next_step()
        return pyotp.TOTP(self.secret).at(clock.now())

    def set_up(self, password: str = PASSWORD):
        page = self.client.get(self.setup_path)
        assert page.status_code == 200, page.get_data(as_text=True)[:500]
        self._remember(page)
        self.secret = SECRET_RE.search(page.get_data(as_text=True)).group(1).replace(" ", "")
        response = self.client.post(self.setup_path, data={"csrf_token": self.csrf, "password": password,
                                                           "password_confirm": password, "code": self.code()})
        assert response.status_code == 303, html.unescape(response.get_data(as_text=True))[:800]
        return response

    def enter_password(self, password: str = PASSWORD):
        self.get("login")
        return self.post("login", {"email": self.email, "password": password})

    def enter_code(self, code: str | None = None):
        self.get("login/code")
        return self.post("login/code", {"code": code or self.code()})

    def log_in(self):
        response = self.enter_password()
        assert response.status_code == 303, response.get_data(as_text=True)[:800]
        response = self.enter_code()
        assert response.status_code == 303 and response.headers["Location"].endswith(f"/{self.tenant}/staff/"), \
            response.get_data(as_text=True)[:800]
        self.get("")
        return response


def signed_in(app, client, tenant: str, role: str = "operator", email: str | None = None) -> Staff:
    staff = Staff(app, client, tenant, email=email, role=role)
    staff.set_up()
    staff.log_in()
    return staff


@pytest.fixture
def app_config():
    """Staff tests hash passwords with cheap argon2 parameters."""
    return dict(FAST_HASHING)


@pytest.fixture
def staff(app):
    """An operator of 奄美 signed in (password and TOTP) in a browser of their own."""
    return signed_in(app, app.test_client(), "amami")
