"""A web worker imports what only FAPI 2.0 clients, webhooks and the CLI need when they need it
(issue 13: joserfc with cryptography, urllib3 with requests were ~15 MB of every worker's RSS).

Checked in a fresh interpreter, as gunicorn's worker starts: `create_app()` out of sandbox mode (the
demo app, sandbox only, signs with joserfc), then requests every client makes (metadata, a token
request, an API call), then a client assertion, which loads them."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import conftest

LAZY = ("joserfc", "cryptography", "requests", "urllib3", "authlib.oauth2.rfc7523", "webapp.oauth.client_assertion",
        "segno")  # segno: the QR code of a staff member's TOTP enrolment

SCRIPT = textwrap.dedent("""\
    import base64, json, sys
    from webapp import create_app, db

    lazy = json.loads(sys.argv[2])
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
    print(json.dumps(seen))
""")


def test_a_web_worker_imports_jose_crypto_and_http_clients_only_when_a_request_needs_them(tmp_path):
    if conftest.ENGINES != "sqlite":
        pytest.skip("what a worker imports does not depend on the engine")
    result = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'w.sqlite3'}", json.dumps(LAZY)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == [200, 401, 401, 400]  # 400 invalid_client: an assertion that is no JWT
    assert seen["created"] == []
    assert seen["served"] == []
    # a client assertion is what needs them: the same answer as before, with joserfc behind it
    assert {"joserfc", "webapp.oauth.client_assertion"} <= set(seen["assertion"])
