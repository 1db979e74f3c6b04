"""Browser tests: a live server as a real subprocess, Debian's chromium driven by Playwright.

The server is the production one (gunicorn, gthread workers, `webapp:create_app()`) on a free
loopback port, with its own SQLite database, migrated by `flask db upgrade` and filled by
`flask sandbox demo-setup`, exactly as `make demo` does. Each test gets a fresh phone-sized
browser context, once with JavaScript (htmx) and once without, and a fintech app's flow is
started the way an app would: a registered client, then /{tenant}/oauth/authorize with PKCE.

The server runs on the real clock. Its unions' configuration is the shipped one minus the
maintenance calendars, so a run at 04:02 JST does not fail; the calendars are tested in tests/
with a moved clock.

Transports: tests use plain http unless they ask for another `transport` (indirect parametrize):
`https-proxy` is production's shape, TLS ending at a reverse proxy (a real nginx, our own process
on a loopback port) that sets X-Forwarded-For/-Proto/-Host in front of gunicorn on plain http with
FLASK_PROXY_FIX_X_FOR=1; `https-gunicorn` is gunicorn terminating TLS itself. Both use a throw-away
CA and certificate (trustme) made for the session; FLASK_BASE_URL is the https origin, chromium
ignores the unknown CA, and the test's own HTTP clients verify against it (`LiveServer.verify`).
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import pathlib
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect, sync_playwright

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "e2e" / "artifacts"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
             has_touch=True, locale="ja-JP", timezone_id="Asia/Tokyo")
TENANTS = ("amami", "maruhachi")
TRANSPORTS = ("http", "https-proxy", "https-gunicorn")

# --engines: what the live servers keep their data in. `sqlite` (the default, as `make demo`): a
# SQLite file each and in-memory rate limits; `postgres` (the production engines, once in CI): a
# fresh PostgreSQL database each and Redis for the rate limits, under a key prefix of their own.
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ENGINES = "sqlite"


def pytest_addoption(parser):
    parser.addoption("--engines", choices=["sqlite", "postgres"], default=os.environ.get("E2E_ENGINES", "sqlite"),
                     help="the live servers' database and rate-limit storage (default sqlite)")


def pytest_configure(config):
    global ENGINES
    ENGINES = config.getoption("--engines")


def pytest_report_header(config):
    return f"engines: {ENGINES}"


@contextlib.contextmanager
def engine_settings(work: pathlib.Path) -> Iterator[dict]:
    """The environment that puts one live server's data on the run's engines."""
    if ENGINES == "sqlite":
        yield {"DATABASE_URL": f"sqlite:///{work / 'e2e.sqlite3'}"}
        return
    import psycopg

    name = f"renkei_e2e_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, "REDIS_URL": REDIS_URL,
               "FLASK_RATELIMIT_KEY_PREFIX": name}
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
NGINX = os.environ.get("E2E_NGINX", "/usr/sbin/nginx")

expect.set_options(timeout=10_000)


# --- the live server ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ThrowawayTLS:
    """A throw-away CA and a server certificate it issued for 127.0.0.1 and localhost (PEM files)."""
    ca: pathlib.Path
    cert: pathlib.Path  # the certificate chain
    key: pathlib.Path

    @classmethod
    def make(cls, directory: pathlib.Path) -> "ThrowawayTLS":
        import trustme

        ca = trustme.CA(organization_name="Renkei e2e test CA")
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        tls = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
        ca.cert_pem.write_to_path(str(tls.ca))
        leaf.private_key_pem.write_to_path(str(tls.key))
        for i, pem in enumerate(leaf.cert_chain_pems):
            pem.write_to_path(str(tls.cert), append=i > 0)
        return tls

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@dataclasses.dataclass
class LiveServer:
    origin: str
    env: dict
    log: pathlib.Path
    demo_output: str
    transport: str = "http"
    tls: ThrowawayTLS | None = None
    proxy_log: pathlib.Path | None = None  # nginx's, for https-proxy

    @property
    def https(self) -> bool:
        return self.origin.startswith("https://")

    @property
    def verify(self) -> str | bool:
        """`verify=` for requests: the test CA over https."""
        return str(self.tls.ca) if self.https else True

    def flask(self, *args: str) -> str:
        """Run `flask --app webapp ARGS` against the server's database; its stdout."""
        return flask_cli(self.env, *args)


def flask_cli(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tenants_without_maintenance(target: pathlib.Path) -> pathlib.Path:
    """Copies of the unions' TOML files with every [[maintenance]] table taken out."""
    import tomllib

    source = ROOT / "webapp" / "tenants"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.toml"):
        kept, skipping = [], False
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            header = line.strip()
            if header.startswith("["):
                skipping = header == "[[maintenance]]"
            if not skipping:
                kept.append(line)
        text = "".join(kept)
        original, copy = tomllib.loads(path.read_text(encoding="utf-8")), tomllib.loads(text)
        original.pop("maintenance", None)
        assert copy == original, f"{path.name}: stripping the maintenance calendar changed other keys"
        (target / path.name).write_text(text, encoding="utf-8")
    return target


def gunicorn_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("gunicorn").split(".")[:2] if p.isdigit())


def wait_until_up(origin: str, process: subprocess.Popen, log: pathlib.Path, seconds: float = 30,
                  tls: ThrowawayTLS | None = None) -> None:
    deadline = time.monotonic() + seconds
    context = tls.client_context() if origin.startswith("https://") else None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(origin + "/amami/faq", timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {seconds}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running(command: list[str], env: dict, log: pathlib.Path) -> Iterator[subprocess.Popen]:
    """`command` as a subprocess writing to `log`, terminated (then killed) when the block ends."""
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def nginx_config(work: pathlib.Path, listen_port: int, upstream_port: int, tls: ThrowawayTLS) -> pathlib.Path:
    """A TLS-terminating reverse proxy as a load balancer is: everything under work/nginx/."""
    import getpass

    home = work / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    conf = home / "nginx.conf"
    # As root, nginx would run its workers as `nobody`, who cannot enter pytest's 0700 temp dirs.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
worker_processes 1;
pid {home}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log /dev/stdout;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    server {{
        listen 127.0.0.1:{listen_port} ssl;
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_http_version 1.1;
            # The upstream sees Host 127.0.0.1:{upstream_port}: the app must take the public host and
            # scheme from X-Forwarded-Host/-Proto (ProxyFix), as behind most load balancers.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
    }}
}}
""")
    return conf


@contextlib.contextmanager
def serve(work: pathlib.Path, log: pathlib.Path, *, transport: str = "http", tls: ThrowawayTLS | None = None,
          **settings: str) -> Iterator[LiveServer]:
    """A server as `make demo` runs it, on a free loopback port, until the block ends.

    Its database (a SQLite file in `work`, or with --engines=postgres a fresh PostgreSQL database
    and Redis) is migrated and filled with the demo customers; its output
    goes to `log`; `settings` are extra environment variables (e.g. FLASK_PHONE_AUTH_WINDOW_SECONDS).
    `transport` is one of TRANSPORTS (see the module docstring); the https ones need `tls`.
    """
    assert transport in TRANSPORTS, transport
    assert transport == "http" or tls is not None, f"{transport} needs a certificate"
    port = free_port()  # gunicorn's
    public_port = free_port() if transport == "https-proxy" else port
    origin = f"{'http' if transport == 'http' else 'https'}://127.0.0.1:{public_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DATABASE_URL", "REDIS_URL"))}
    engines = contextlib.ExitStack()
    env.update(engines.enter_context(engine_settings(work)))
    env.update({
        "FLASK_SANDBOX": "true",
        "FLASK_BASE_URL": origin,
        "FLASK_SECRET_KEY": secrets.token_urlsafe(32),
        "FLASK_TELEPHONY_AUTH_TOKEN": secrets.token_urlsafe(24),
        "FLASK_TENANTS_DIR": str(tenants_without_maintenance(work / "tenants")),
        # Every test comes from 127.0.0.1: the per-address limits would stop the suite.
        "FLASK_IDENTITY_CHECKS_PER_IP": "10000 per minute",
        "FLASK_REQUESTS_PER_IP": "100000 per minute",  # likewise the per-address request limit
        "PYTHONUNBUFFERED": "1",
    })
    if transport == "https-proxy":
        env["FLASK_PROXY_FIX_X_FOR"] = "1"
    if tls is not None:  # `flask telephony simulate-call` posts to the https BASE_URL with requests
        env["REQUESTS_CA_BUNDLE"] = str(tls.ca)
    env.update(settings)
    flask_cli(env, "db", "upgrade")
    demo_output = flask_cli(env, "sandbox", "demo-setup")
    # -OO as the Procfile runs it: no docstrings and no assert statements in the workers (issue 13)
    command = [sys.executable, "-OO", "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
               "--workers", "1", "--threads", "8", "--timeout", "30", "--access-logfile", "-"]
    if gunicorn_version() >= (27,):  # its control socket is one per user: a running `make demo` would clash
        command.append("--no-control-socket")
    if transport == "https-gunicorn":
        command += ["--certfile", str(tls.cert), "--keyfile", str(tls.key)]
    with engines, contextlib.ExitStack() as stack:
        process = stack.enter_context(running([*command, "webapp:create_app()"], env, log))
        behind_proxy = transport == "https-proxy"
        wait_until_up(f"http://127.0.0.1:{port}" if behind_proxy else origin, process, log, tls=tls)
        proxy_log = None
        if behind_proxy:
            if not os.path.exists(NGINX):
                pytest.fail(f"{NGINX} is missing: run scripts/bootstrap --browser (Debian package nginx)")
            proxy_log = log.with_name(f"{log.stem}-nginx.log")
            conf = nginx_config(work, public_port, port, tls)
            proxy = stack.enter_context(running([NGINX, "-p", str(conf.parent), "-e", "stderr", "-c", str(conf),
                                                 "-g", "daemon off;"], env, proxy_log))
            wait_until_up(origin, proxy, proxy_log, tls=tls)
        yield LiveServer(origin=origin, env=env, log=log, demo_output=demo_output, transport=transport, tls=tls,
                         proxy_log=proxy_log)


@pytest.fixture(scope="session")
def servers(tmp_path_factory) -> Callable[[str], LiveServer]:
    """servers(transport): the live server for that transport, started on first use and kept until
    the session ends, so tests of several transports in any order start each server once."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started: dict[str, LiveServer] = {}
    tls: list[ThrowawayTLS] = []
    with contextlib.ExitStack() as stack:
        def server(transport: str) -> LiveServer:
            if transport not in started:
                if transport != "http" and not tls:
                    tls.append(ThrowawayTLS.make(tmp_path_factory.mktemp("tls")))
                log = ARTIFACTS / ("server.log" if transport == "http" else f"server-{transport}.log")
                started[transport] = stack.enter_context(serve(
                    tmp_path_factory.mktemp(transport), log, transport=transport,
                    tls=None if transport == "http" else tls[0]))
            return started[transport]

        yield server


@pytest.fixture(scope="session")
def transport(request) -> str:
    """How the browser reaches the server: "http" unless a test parametrizes it (indirect=True,
    scope="session"), e.g. over TRANSPORTS."""
    return getattr(request, "param", "http")


@pytest.fixture(scope="session")
def live_server(servers, transport) -> LiveServer:
    return servers(transport)


def _log_tail(path: pathlib.Path, start: int) -> str:
    with path.open(encoding="utf-8", errors="replace") as f:
        f.seek(start)
        return f.read()


@pytest.fixture(autouse=True)
def no_server_error(live_server):
    """Whatever a test types, the server logs no traceback (a customer never meets a 500), and the
    proxy in front of it, if any, no error (a 502 from a dead or misconfigured upstream)."""
    start = live_server.log.stat().st_size
    proxy_start = live_server.proxy_log.stat().st_size if live_server.proxy_log else 0
    yield
    added = _log_tail(live_server.log, start)
    assert "Traceback" not in added, f"the server failed during this test:\n{added[-3000:]}"
    if live_server.proxy_log:
        added = _log_tail(live_server.proxy_log, proxy_start)
        errors = [line for line in added.splitlines() if re.search(r"\[(error|crit|alert|emerg)\]", line)]
        assert not errors, "the proxy failed during this test:\n" + "\n".join(errors[-20:])


def provider_calls(server: LiveServer, caller: str, dialled: str) -> None:
    """The telephony provider posts the call, signed, to the server's public webhook URL (over
    https, through the proxy if there is one: the server checks the signature against BASE_URL)."""
    import requests

    from webapp.callauth import service, twilio

    params = {"CallSid": service.new_call_sid(), "AccountSid": "AC" + secrets.token_hex(16),
              "From": service.dialled_e164(caller) or caller, "To": service.dialled_e164(dialled),
              "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    url = server.origin + "/telephony/inbound"
    signature = twilio.compute_signature(url, params.items(), server.env["FLASK_TELEPHONY_AUTH_TOKEN"])
    response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10,
                             verify=server.verify)
    assert response.status_code == 200 and '<Response><Reject reason="busy"/></Response>' in response.text, response.text


# --- the demo customers (what demo-setup loaded) ------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Customer:
    tenant: str
    branch: str
    account_type: str
    number: str
    name_kana: str
    birth_date: str  # YYYY-MM-DD
    phone: str


@pytest.fixture(scope="session")
def customers(live_server) -> dict[str, Customer]:
    """Each union's first active cash-card 普通預金 customer among those demo-setup loaded."""
    from webapp import demo

    found = {}
    for tenant in TENANTS:
        a = next((a for a in demo.customers(tenant)
                  if a["status"] == "active" and a["cash_card"] and a["type"] == "1"), None)
        assert a is not None, f"no active 普通預金 demo customer for {tenant} in webapp/demo/{tenant}.json"
        found[tenant] = Customer(tenant, a["branch"], a["type"], a["number"], a["name_kana"], a["birth_date"],
                                 a["phone"])
    return found


# --- what the customer does on ① and ② (by label) ---------------------------------------------------

def title(page: Page):
    return page.get_by_role("heading", level=1)


def enter_account(page: Page, c: Customer, *, branch: str | None = None, number: str | None = None) -> None:
    """① ご利用口座情報入力: the customer's account (or the `branch`/`number` given instead), then 次へ."""
    page.get_by_label("店番").fill(c.branch if branch is None else branch)
    page.get_by_label("科目").select_option(value=c.account_type)
    page.get_by_label("口座番号").fill(c.number if number is None else number)
    page.get_by_role("button", name="次へ").click()


def enter_customer(page: Page, c: Customer, *, year: str | None = None, phone: str | None = None) -> None:
    """② お客様情報入力: the customer's details (or the birth `year`/`phone` given instead), then 次へ."""
    born_year, born_month, born_day = c.birth_date.split("-")
    page.get_by_label("お名前").fill(c.name_kana)
    page.get_by_label("生年月日（西暦 年）").fill(born_year if year is None else year)
    page.get_by_label("生年月日（月）").select_option(born_month)
    page.get_by_label("生年月日（日）").select_option(born_day)
    page.get_by_label("電話番号").fill(c.phone if phone is None else phone)
    page.get_by_label(re.compile(r"メールアドレス$")).fill("taro@example.jp")
    page.get_by_label("メールアドレス（確認用）").fill("taro@example.jp")
    page.get_by_role("button", name="次へ").click()


def to_phone_screen(page: Page, c: Customer) -> None:
    """From ①, the customer's correct entries on ① and ② reach ③ 電話番号の確認."""
    enter_account(page, c)
    expect(title(page)).to_have_text("API連携認証（お客様情報入力）")
    enter_customer(page, c)
    expect(title(page)).to_have_text("API連携認証（電話番号の確認）")


# --- a fintech app starting a flow --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class App:
    tenant: str
    client_id: str
    redirect_uri: str


@pytest.fixture(scope="session")
def fintech_apps(live_server) -> dict[str, App]:
    """One registered app per union, as an operator would add it with `flask clients add`."""
    return {tenant: register_app(live_server, tenant) for tenant in TENANTS}


def register_app(server: LiveServer, tenant: str) -> App:
    """The union's app added with `flask clients add`, its redirect URI the server's /demo/callback."""
    redirect_uri = f"{server.origin}/demo/callback"
    out = server.flask("clients", "add", "--tenant", tenant, "--name", "しんくみアプリwith CRECO",
                       "--operator", "アイ・ティ・リアライズ株式会社", "--redirect-uri", redirect_uri)
    return App(tenant, json.loads(out)["client_id"], redirect_uri)


def linked_token(server: LiveServer, client_id: str, c: Customer) -> str:
    """A consent of `c` for the app `client_id` and a live access token under it, as ⑥ and the token
    endpoint leave them, written straight into the server's database (the flow to get there has its
    own browser tests). Returns the access token."""
    from sqlmodel import Session

    from webapp import db
    from webapp.oauth.models import Consent, Token, secret_hash

    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.timezone.utc)
    engine = db.make_engine(server.env["DATABASE_URL"])
    try:
        with Session(engine) as s:
            consent = Consent(tenant=c.tenant, client_id=client_id, branch=c.branch, account_type=c.account_type,
                              account_number=c.number, scope="accounts", granted_at=now,
                              expires_at=now + dt.timedelta(days=30))
            s.add(consent)
            s.flush()
            s.add(Token(consent_id=consent.id, client_id=client_id, family=secrets.token_hex(8), scope="accounts",
                        access_token_hash=secret_hash(token), issued_at=now,
                        access_expires_at=now + dt.timedelta(minutes=10)))
            s.commit()
    finally:
        engine.dispose()
    return token


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def start_flow_in(page: Page, live_server: LiveServer, app: App) -> Page:
    """Open screen ① in `page` the way the union's app sends its customer there (PKCE S256)."""
    _verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri,
                       "scope": "accounts", "state": secrets.token_urlsafe(16),
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    page.goto(f"{live_server.origin}/{app.tenant}/oauth/authorize?{query}")
    expect(page.get_by_role("heading", level=1)).to_have_text("API連携認証（ご利用口座情報入力）")
    return page


@pytest.fixture
def start_flow(page: Page, live_server, fintech_apps):
    """start_flow(tenant) opens screen ① in the test's phone."""
    return lambda tenant: start_flow_in(page, live_server, fintech_apps[tenant])


# --- the browser ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap --browser (Debian package chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def javascript(request) -> bool:
    """Each browser test runs with JavaScript (htmx swaps) and without (plain forms)."""
    return request.param


@pytest.fixture
def page(browser, javascript, live_server):
    # ignore_https_errors: over https the certificate is the test CA's, which chromium does not know.
    context = browser.new_context(**PHONE, java_script_enabled=javascript, base_url=live_server.origin,
                                  ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


DOCS_SCREENS = ROOT / "docs" / "screens"


def screenshot(page: Page, name: str, *, docs: str | None = None) -> pathlib.Path:
    """A full-page PNG in e2e/artifacts/, to look at. With E2E_SCREENS=1 (`make screens`), a shot
    named `docs` also goes to docs/screens/<docs>.png, the phone's first screen as the customer
    sees it: the README's pictures come from the browser tests themselves."""
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("E2E_SCREENS") == "1":
        DOCS_SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENS / f"{docs}.png"))
    return path
