"""Fixtures: app → client → runner, a sandbox with known customers, and `FlowActions` so tests
read as the steps a customer takes. CSRF stays on: forms are read from the served page.

The whole suite runs on one of two engine sets, chosen with `--engines` (or TEST_ENGINES):
`sqlite` (default): an SQLite file per test, rate limits in memory://;
`postgres`: the production engines, a PostgreSQL database emptied for each test (`database_url`)
and rate limits in Redis under a key prefix of its own per app, so no two tests share a counter.
`app`, `client`, `runner` and `make_app` follow it; `pg_url`/`pg_app` are PostgreSQL in both runs.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session, SQLModel

from webapp import clock, create_app, db
from webapp.corebanking import AccountKey, pin_hash
from webapp.corebanking.models import SandboxAccount

TEST_SECRET = "test-secret-key-0123456789abcdef0123456789"
# A quiet weekday afternoon, outside every union's maintenance window.
QUIET_TIME = dt.datetime(2026, 11, 18, 14, 0, tzinfo=clock.JST)  # Wednesday

ENGINE_SETS = {"sqlite": "SQLite + memory://", "postgres": "PostgreSQL + Redis"}
ENGINES = "sqlite"  # the run's engine set (pytest_configure)
REDIS_URL = None  # the run's Redis, when ENGINES == "postgres"


def pytest_addoption(parser):
    parser.addoption("--engines", choices=sorted(ENGINE_SETS), default=os.environ.get("TEST_ENGINES", "sqlite"),
                     help="sqlite: SQLite and memory:// (default); postgres: PostgreSQL and Redis")
    parser.addoption("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/test"))
    parser.addoption("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))


def pytest_configure(config):
    global ENGINES, REDIS_URL
    ENGINES = config.getoption("--engines")
    REDIS_URL = config.getoption("--redis-url") if ENGINES == "postgres" else None
    if REDIS_URL:  # else every limit would quietly fall back to memory: a run on SQLite's terms
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
        except redis.RedisError as e:
            raise pytest.UsageError(f"--engines=postgres: Redis not reachable at {REDIS_URL}: {e}")


def pytest_report_header(config):
    return f"engines: {ENGINES} ({ENGINE_SETS[ENGINES]})"


@pytest.fixture(autouse=True)
def quiet_clock():
    clock.set_now(QUIET_TIME)
    yield
    clock.set_now(None)


_made_apps: list = []
_schema_ready: set[str] = set()  # databases that have every table already (the postgres run's)


def make_app(database_url: str, **overrides):
    """An app on `database_url` (tables created) with the run's rate-limit storage."""
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "BASE_URL": "https://renkei.test",
        "SANDBOX": True,
        "TELEPHONY_AUTH_TOKEN": "test-telephony-token",
        "MAIL_SUPPRESS_SEND": True,
        "IDENTITY_CHECK_SECONDS": 0,
        # One test client is one address making hundreds of requests a second: the per-sender
        # limits have their own tests (test_security_attacks).
        "REQUESTS_PER_IP": "100000 per second",
        "TOKEN_REQUESTS_PER_CLIENT": "100000 per second",  # the constant-time answer has its own tests (test_security_attacks)
    }
    if REDIS_URL:
        config.update(REDIS_URL=REDIS_URL, RATELIMIT_KEY_PREFIX=f"renkei-test-{uuid.uuid4().hex}")
    else:  # memory://, whatever REDIS_URL the environment has
        config.update(REDIS_URL=None)
    config.update(overrides)
    app = create_app(config)
    if database_url not in _schema_ready:
        db.create_all(app)
    _made_apps.append(app)
    return app


@pytest.fixture(autouse=True)
def _dispose_made_apps():
    """Every app a test made gives its pooled connections back (PostgreSQL's are a shared budget)."""
    yield
    while _made_apps:
        made = _made_apps.pop()
        made.extensions["mail_courier"].join(timeout=30)  # no mail still being sent into the next test's rows
        made.extensions["db_engine"].dispose()


@pytest.fixture
def app_config():
    """Override in a test module to change configuration."""
    return {}


@pytest.fixture
def database_url(request, tmp_path):
    """This test's own database on the run's engines, with no rows: an SQLite file, or the
    session's PostgreSQL database with every table emptied (a database per test costs a CREATE,
    the schema and a DROP, which checkpoints; emptying costs a few milliseconds)."""
    if ENGINES == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return request.getfixturevalue("_pg_session_database").empty()


@pytest.fixture
def app(database_url, app_config):
    app = make_app(database_url, **app_config)
    yield app
    app.extensions["mail_courier"].join(timeout=30)
    app.extensions["db_engine"].dispose()


def _pg_admin(request):
    psycopg = pytest.importorskip("psycopg")
    return psycopg, request.config.getoption("--postgres-url")


def _create_database(request) -> str:
    psycopg, base = _pg_admin(request)
    name = f"renkei_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # A test database outlives no crash: commits need not wait for the disk (atomicity and
            # isolation, what the tests check, are unchanged).
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    except psycopg.OperationalError as e:  # the brief guarantees one; say so loudly if not
        pytest.fail(f"PostgreSQL not reachable at {base}: {e}")
    return base.rsplit("/", 1)[0] + "/" + name


def _drop_database(request, url: str) -> None:
    psycopg, base = _pg_admin(request)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


class _SessionDatabase:
    """One PostgreSQL database with the schema for the whole run, emptied before each test."""

    def __init__(self, psycopg, url: str):
        from webapp import models  # noqa: F401  (registers every table)

        self.psycopg, self.url = psycopg, url
        engine = db.make_engine(url)
        SQLModel.metadata.create_all(engine)
        engine.dispose()
        _schema_ready.add(url)
        self.conn = None
        # DELETE, children first, and every sequence back to 1: for a few rows far quicker than
        # TRUNCATE, which makes (and syncs) new files for every table.
        self.statements = [f'DELETE FROM "{t.name}"' for t in reversed(SQLModel.metadata.sorted_tables)]
        self.statements.append("SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S'")

    def empty(self) -> str:
        if self.conn is None or self.conn.closed:
            self.conn = self.psycopg.connect(self.url)
            self.conn.execute("SET lock_timeout = '5s'")
            self.conn.commit()
        try:
            self._delete_all()
        except self.psycopg.errors.LockNotAvailable:
            # A connection a previous test leaked holds a lock: end it, then empty.
            self.conn.rollback()
            self.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            self._delete_all()
        return self.url

    def _delete_all(self) -> None:
        for statement in self.statements:
            self.conn.execute(statement)
        self.conn.commit()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@pytest.fixture(scope="session")
def _pg_session_database(request):
    url = _create_database(request)
    database = _SessionDatabase(_pg_admin(request)[0], url)
    yield database
    database.close()
    _drop_database(request, url)


@pytest.fixture
def pg_url(request):
    """A fresh, empty PostgreSQL database for this test, dropped afterwards."""
    url = _create_database(request)
    yield url
    _drop_database(request, url)


@pytest.fixture
def pg_app(pg_url, app_config):
    app = make_app(pg_url, **app_config)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- sandbox customers --------------------------------------------------------------------------

DEMO = {
    "amami": dict(branch="115", account_type="1", number="1100026", name_kana="ﾃﾞｰﾀ ﾀﾛｳ",
                  birth_date=dt.date(1980, 1, 1), phone="09011113333", pin="1234"),
    "maruhachi": dict(branch="201", account_type="1", number="0012345", name_kana="ﾏﾙﾊﾁ ﾊﾅｺ",
                      birth_date=dt.date(1975, 5, 20), phone="0534441234", pin="5678"),
}


def add_account(app, tenant: str, *, branch, account_type, number, name_kana, birth_date, phone, pin,
                status="active", cash_card=True, balance=1_000_000) -> SandboxAccount:
    with app.app_context():
        key = AccountKey(tenant, branch, account_type, number)
        acct = SandboxAccount(tenant=tenant, branch=branch, account_type=account_type, number=number,
                              name_kana=name_kana, birth_date=birth_date, phone=phone,
                              pin_hash=pin_hash(key, pin), cash_card=cash_card, status=status, balance=balance)
        with Session(db.engine()) as s:
            s.add(acct)
            s.commit()
            s.refresh(acct)
        return acct


@pytest.fixture
def customers(app):
    """One active customer per union (DEMO)."""
    return {t: add_account(app, t, **c) for t, c in DEMO.items()}


def register_client(app, tenant: str, redirect_uri: str = "https://app.example/cb") -> dict:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "add", "--tenant", tenant, "--name", "しんくみアプリwith CRECO",
                                 "--operator", "アイ・ティ・リアライズ株式会社", "--redirect-uri", redirect_uri])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- a customer going through the screens --------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class FlowActions:
    """What a customer does, screen by screen, through the test client."""

    def __init__(self, app, client, tenant: str):
        self.app, self.client, self.tenant = app, client, tenant
        self.oauth_client = register_client(app, tenant)
        self.csrf = None

    def url(self, path: str) -> str:
        return f"/{self.tenant}/{path}"

    def get(self, path: str, **kw):
        response = self.client.get(self.url(path), **kw)
        self._remember_csrf(response)
        return response

    def post(self, path: str, data: dict, htmx: bool = False, **kw):
        headers = {"HX-Request": "true"} if htmx else {}
        response = self.client.post(self.url(path), data={"csrf_token": self.csrf, **data}, headers=headers, **kw)
        self._remember_csrf(response)
        return response

    def post_in_parallel(self, path: str, data: dict, n: int = 8) -> list[int]:
        """The same POST pressed `n` times at once in this customer's session (one test client a
        thread, released together): the statuses."""
        cookie = self.client.get_cookie(self.app.config["SESSION_COOKIE_NAME"])
        barrier = threading.Barrier(n)

        def press(_):
            c = self.app.test_client()
            c.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
            barrier.wait()
            return c.post(self.url(path), data={"csrf_token": self.csrf, **data}).status_code

        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(press, range(n)))

    def _remember_csrf(self, response):
        m = CSRF_RE.search(response.get_data(as_text=True))
        if m:
            self.csrf = m.group(1)

    def authorize_params(self, **extra) -> dict:
        params = {"response_type": "code", "client_id": self.oauth_client["client_id"],
                  "redirect_uri": "https://app.example/cb", "scope": "accounts", "state": "xyz",
                  "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
        params.update(extra)
        return params

    def start(self, **extra):
        response = self.client.get(self.url("oauth/authorize"), query_string=self.authorize_params(**extra))
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        return self.get("flow/account")

    def account(self, branch=None, account_type=None, number=None, **kw):
        c = DEMO[self.tenant]
        return self.post("flow/account", {"branch": c["branch"] if branch is None else branch,
                                          "account_type": c["account_type"] if account_type is None else account_type,
                                          "account_number": c["number"] if number is None else number}, **kw)

    def customer_data(self, **override) -> dict:
        c = DEMO[self.tenant]
        data = {"name_kana": c["name_kana"], "birth_year": str(c["birth_date"].year),
                "birth_month": f"{c['birth_date'].month:02d}", "birth_day": f"{c['birth_date'].day:02d}",
                "phone": c["phone"], "email": "taro@example.jp", "email_confirm": "taro@example.jp"}
        data.update(override)
        return data

    def customer(self, **override):
        kw = {k: override.pop(k) for k in ("htmx", "follow_redirects", "environ_base") if k in override}
        self.get("flow/customer")
        return self.post("flow/customer", self.customer_data(**override), **kw)

    def through_customer(self):
        self.start()
        self.account()
        response = self.customer()
        assert response.status_code == 303, response.get_data(as_text=True)[:800]
        return response


@pytest.fixture
def amami_on_postgres(pg_app):
    """A customer of 奄美 on a fresh PostgreSQL database, with the demo customers."""
    for tenant, c in DEMO.items():
        add_account(pg_app, tenant, **c)
    return FlowActions(pg_app, pg_app.test_client(), "amami")


class CountingMismatch:
    """An identity check that always finds a mismatch and counts, thread-safely, how often it ran."""

    def __init__(self):
        self.calls, self._lock = 0, threading.Lock()

    def __call__(self, key):
        from webapp.corebanking import AccountCheck

        with self._lock:
            self.calls += 1
        return AccountCheck.MISMATCH


@pytest.fixture
def amami(app, client, customers):
    return FlowActions(app, client, "amami")


@pytest.fixture
def maruhachi(app, client, customers):
    return FlowActions(app, client, "maruhachi")


def text_of(response) -> str:
    return response.get_data(as_text=True)
