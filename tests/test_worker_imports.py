"""A web worker imports what only FAPI 2.0 clients, webhooks, staff logins and the CLI need when they
need it (issue 13: joserfc with cryptography, urllib3 with requests were ~15 MB of every worker's RSS;
argon2 and pyotp, for staff logins only, another 0.5 MB).

Checked in a fresh interpreter, as gunicorn's worker starts: `create_app()` out of sandbox mode (the
demo app, sandbox only, signs with joserfc), then requests every client makes (metadata, a token
request, an API call), then a client assertion, which loads them; then a staff password and TOTP code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import conftest

LAZY = ("joserfc", "cryptography", "requests", "urllib3", "authlib.oauth2.rfc7523", "webapp.oauth.client_assertion",
        "segno",  # segno: the QR code of a staff member's TOTP enrolment
        "argon2", "pyotp")  # staff passwords and TOTP codes: staff logins only

SCRIPT = textwrap.dedent("""\
    import base64, datetime, json, sys
    from webapp import clock, create_app, db

    lazy = json.loads(sys.argv[2])
    clock.set_now(datetime.datetime.fromisoformat(sys.argv[3]))  # a quiet afternoon: no union's maintenance window
    loaded = lambda: sorted(name for name in lazy if name in sys.modules)
    app = create_app({"TESTING": True, "SECRET_KEY": "s" * 32, "DATABASE_URL": sys.argv[1], "REDIS_URL": None,
                      "BASE_URL": "https://renkei.test", "SANDBOX": False, "TELEPHONY_AUTH_TOKEN": "t" * 20,
                      "MAIL_SUPPRESS_SEND": True})
    db.create_all(app)
    seen = {"created": loaded()}
    web = app.test_client()
    statuses = [web.get("/.well-known/oauth-authorization-server/amami").status_code]
    basic = base64.b64encode(b"nobody:wrong").decode()
    statuses.append(web.post("/amami/oauth/token", headers={"Authorization": "Basic " + basic},
                             data={"grant_type": "authorization_code", "code": "x"}).status_code)
    statuses.append(web.get("/amami/api/v1/accounts", headers={"Authorization": "Bearer nothing"}).status_code)
    seen["served"] = loaded()
    statuses.append(web.post("/amami/oauth/token", data={
        "grant_type": "authorization_code", "code": "x", "client_assertion": "a.b.c",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}).status_code)
    seen["assertion"] = loaded()
    seen["statuses"] = statuses
    with app.app_context():  # what a staff login does: a password (argon2), then a TOTP code (pyotp)
        from webapp.staff import auth
        app.config["STAFF_ARGON2_MEMORY_KIB"] = 1024
        stored = auth.hash_password("correct horse")
        secret = auth.new_totp_secret()
        import pyotp
        seen["staff_checks"] = [auth.password_matches(stored, "correct horse"), auth.password_matches(stored, "wrong"),
                                auth.password_matches(None, "correct horse"),
                                auth.totp_step(secret, pyotp.TOTP(secret).at(clock.now())) is not None]
    seen["staff"] = loaded()
    print(json.dumps(seen))
""")


@pytest.mark.parametrize("flags", [[], ["-OO"]], ids=["plain", "OO"])  # -OO: as the Procfile runs a worker
def test_a_web_worker_imports_jose_crypto_http_clients_and_staff_login_only_when_a_request_needs_them(tmp_path, flags):
    if conftest.ENGINES != "sqlite":
        pytest.skip("what a worker imports does not depend on the engine")
    result = subprocess.run([sys.executable, *flags, "-c", SCRIPT, f"sqlite:///{tmp_path / 'w.sqlite3'}", json.dumps(LAZY),
                             conftest.QUIET_TIME.isoformat()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == [200, 401, 401, 400]  # 400 invalid_client: an assertion that is no JWT
    assert seen["created"] == []
    assert seen["served"] == []
    # a client assertion is what needs them: the same answer as before, with joserfc behind it
    assert {"joserfc", "webapp.oauth.client_assertion"} <= set(seen["assertion"])
    # a staff login is what needs argon2 and pyotp: a right password and code still pass, wrong ones do not
    assert seen["staff_checks"] == [True, False, False, True]
    assert {"argon2", "pyotp"} <= set(seen["staff"])


DIALECTS = textwrap.dedent("""\
    import json, sys
    from webapp import create_app

    create_app({"SECRET_KEY": "s" * 32, "DATABASE_URL": sys.argv[1], "REDIS_URL": sys.argv[2] or None,
                "BASE_URL": "https://renkei.test", "SANDBOX": False, "TELEPHONY_AUTH_TOKEN": "t" * 20})
    print(json.dumps(sorted({name.split(".")[2] for name in sys.modules
                             if name.startswith("sqlalchemy.dialects.") and not name.endswith("._typing")})))
""")


def test_a_worker_loads_only_its_own_engines_sqlalchemy_dialect(database_url):
    """The other engine's dialect is ~0.6 MB (SQLite's, in a PostgreSQL worker) to ~2.7 MB (PostgreSQL's,
    in a SQLite worker) of nothing: the partial index names its where= only when the table is created,
    the SQLite poll is compiled at the first poll (callauth/models.py, flow/call.py)."""
    result = subprocess.run([sys.executable, "-c", DIALECTS, database_url, conftest.REDIS_URL or ""],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    own = "postgresql" if database_url.startswith("postgres") else "sqlite"
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [own]


def test_a_python_OO_worker_compiles_none_of_its_libraries_from_source(database_url):
    """The web runs under `python -OO`, whose bytecode pip does not write and, with PYTHONDONTWRITEBYTECODE
    (the image's, maybe the machine's), Python does not either: scripts/bootstrap compiles it for the
    venv's libraries as the Dockerfile does for the image. Without it each start compiled ~1,000 modules
    from source: 1.4 s of start-up and 3-4 MB of every worker's RSS (bench/README round 13). webapp/ is
    left out here: it changes while one works, and a stale module only compiles again in memory."""
    result = subprocess.run([sys.executable, "-OO", "-v", "-c", DIALECTS, database_url, conftest.REDIS_URL or ""],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = [line[len("# code object from "):] for line in result.stderr.splitlines()
              if line.startswith("# code object from ")]
    libraries = sysconfig.get_paths()["purelib"]
    assert sum(1 for path in loaded if libraries in path) > 300  # psycopg, redis, sqlalchemy, flask, …: the worker's libraries
    from_source = [path for path in loaded if path.startswith(libraries)]  # a bytecode file's path is quoted
    assert from_source == [], f"{len(from_source)} modules compiled from source (run scripts/bootstrap): {from_source[:5]}"
