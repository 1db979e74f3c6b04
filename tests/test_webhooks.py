"""Webhooks: when an app's access ends (the customer or staff revoke its consent, a replayed code or
refresh token revokes its tokens) the union POSTs it a signed event (a Security Event Token, ES256,
verified here with joserfc against the union's JWKS), once, retried with back-off while the app's
server is down. The webhook URL is https (http only to localhost in sandbox mode), and no URL may
make the union call an internal address in production. A real HTTP receiver on loopback."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading

import pytest
import urllib3
from joserfc import jws
from joserfc.jwk import KeySet
from sqlmodel import Session, select

from webapp import clock, db
from webapp.oauth.consents import revoke_consent
from webapp.oauth.models import Consent, OAuthClient
from webapp.webhooks import keys
from webapp.webhooks.models import SigningKey, WebhookOutbox
from webapp.webhooks.sender import send_pending

from conftest import DEMO, QUIET_TIME, TEST_SECRET, make_app
from mail_support import completed_flow, free_port
from test_oauth_support import authorized, exchange, refresh, tokens

MINUTE = dt.timedelta(minutes=1)
CONSENT_REVOKED = "urn:renkei:event:consent-revoked"
TOKENS_REVOKED = "urn:renkei:event:tokens-revoked"


# --- an app's server on loopback --------------------------------------------------------------------

class Receiver:
    """An app's webhook endpoint that records every POST; `status` is what it answers; it can go down
    and come back on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.posts: list[dict] = []
        self.status = 202
        self.server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/renkei/events"

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver():
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


def set_webhook(app, client_id: str, url: str | None):
    args = ["clients", "set-webhook", "--client-id", client_id] + (["--url", url] if url else ["--clear"])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output


def client_of(app, flow_id: int) -> str:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(Consent).where(Consent.flow_id == flow_id)).one().client_id


def linked(app, url: str | None, tenant: str = "amami") -> int:
    """A consent of an app that registered `url` as its webhook; returns the consent's id."""
    flow_id = completed_flow(app, tenant)
    if url:
        set_webhook(app, client_of(app, flow_id), url)
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(Consent).where(Consent.flow_id == flow_id)).one().id


def revoke(app, consent_id: int, reason: str = "union", commit: bool = True) -> None:
    with app.app_context(), Session(db.engine()) as s:
        revoke_consent(s, s.get(Consent, consent_id), reason)
        s.commit() if commit else s.rollback()


def events(app) -> list[WebhookOutbox]:
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(WebhookOutbox).order_by(WebhookOutbox.id)))


def send(app, limit: int = 50):
    with app.app_context():
        return send_pending(limit=limit)


def verified(app, post: dict, tenant: str = "amami") -> dict:
    """The event's claims, after checking its signature against the union's published JWKS."""
    jwks = app.test_client().get(f"/{tenant}/jwks.json").get_json()
    token = jws.deserialize_compact(post["body"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert token.headers()["typ"] == "secevent+jwt" and token.headers()["alg"] == "ES256"
    return json.loads(token.payload)


# --- the event and its signature ---------------------------------------------------------------------

def test_a_revoked_consent_is_posted_to_the_app_signed_with_the_unions_published_key(app, receiver):
    consent_id = linked(app, receiver.url)
    revoke(app, consent_id, "customer")

    report = send(app)

    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [post] = receiver.posts
    assert post["path"] == "/renkei/events"
    assert post["headers"]["Content-Type"] == "application/secevent+jwt"
    claims = verified(app, post)
    [row] = events(app)
    assert claims["iss"] == "https://renkei.test/amami"
    assert claims["aud"] == row.client_id
    assert claims["jti"] == row.event_id
    assert claims["iat"] == int(QUIET_TIME.timestamp())
    assert claims["events"] == {CONSENT_REVOKED: {"consent_id": consent_id, "account_id": row.account_id,
                                                  "reason": "customer"}}
    assert row.state == "sent" and row.attempts == 1


def test_an_event_signed_with_another_key_does_not_verify_against_the_jwks(app, receiver):
    from joserfc.errors import BadSignatureError
    from joserfc.jwk import ECKey

    revoke(app, linked(app, receiver.url))
    send(app)
    jwks = KeySet.import_key_set(app.test_client().get("/amami/jwks.json").get_json())
    genuine = jws.deserialize_compact(receiver.posts[0]["body"], jwks, algorithms=["ES256"])
    forged = jws.serialize_compact(genuine.headers(), genuine.payload, ECKey.generate_key("P-256"))

    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(forged, jwks, algorithms=["ES256"])


def test_staff_revocation_reports_reason_union_and_the_account_id_the_app_knows(amami, receiver):
    set_webhook(amami.app, amami.oauth_client["client_id"], receiver.url)
    access = tokens(amami)["access_token"]
    [account] = amami.client.get("/amami/api/v1/accounts",
                                 headers={"Authorization": f"Bearer {access}"}).get_json()["accounts"]
    c = DEMO["amami"]
    result = amami.app.test_cli_runner().invoke(args=[
        "consents", "revoke", "--tenant", "amami", "--branch", c["branch"], "--type", c["account_type"],
        "--number", c["number"]])
    assert result.exit_code == 0, result.output

    send(amami.app)

    [post] = receiver.posts
    event = verified(amami.app, post)["events"][CONSENT_REVOKED]
    assert event["reason"] == "union" and event["account_id"] == account["accountId"]


def test_a_replayed_code_posts_tokens_revoked(amami, receiver):
    set_webhook(amami.app, amami.oauth_client["client_id"], receiver.url)
    code = authorized(amami)["code"]
    assert exchange(amami, code).status_code == 200
    assert exchange(amami, code).status_code == 400  # the replay revokes what the code issued

    send(amami.app)

    [post] = receiver.posts
    claims = verified(amami.app, post)
    assert claims["aud"] == amami.oauth_client["client_id"]
    assert claims["events"][TOKENS_REVOKED]["reason"] == "code_replayed"


def test_a_replayed_refresh_token_posts_tokens_revoked(amami, receiver):
    set_webhook(amami.app, amami.oauth_client["client_id"], receiver.url)
    first = tokens(amami)
    assert refresh(amami, first["refresh_token"]).status_code == 200
    assert refresh(amami, first["refresh_token"]).status_code == 400

    send(amami.app)

    [post] = receiver.posts
    assert verified(amami.app, post)["events"][TOKENS_REVOKED]["reason"] == "refresh_replayed"


def test_a_replay_that_revokes_nothing_more_posts_nothing_more(amami, receiver):
    set_webhook(amami.app, amami.oauth_client["client_id"], receiver.url)
    code = authorized(amami)["code"]
    exchange(amami, code)
    for _ in range(3):
        exchange(amami, code)

    assert len(events(amami.app)) == 1


# --- queued with the revocation, once -----------------------------------------------------------------

def test_a_rolled_back_revocation_leaves_no_event(app, receiver):
    revoke(app, linked(app, receiver.url), commit=False)

    assert events(app) == [] and send(app).sent == 0 and receiver.posts == []


def test_revoking_twice_posts_once(app, receiver):
    consent_id = linked(app, receiver.url)
    revoke(app, consent_id)
    revoke(app, consent_id)

    send(app)
    send(app)
    assert len(events(app)) == 1 and len(receiver.posts) == 1


def test_an_app_without_a_webhook_gets_no_event(app, receiver):
    consent_id = linked(app, None)
    revoke(app, consent_id)

    assert events(app) == []


def test_a_cleared_webhook_gets_no_further_events(app, receiver):
    flow_id = completed_flow(app)
    client_id = client_of(app, flow_id)
    set_webhook(app, client_id, receiver.url)
    set_webhook(app, client_id, None)
    with app.app_context(), Session(db.engine()) as s:
        revoke_consent(s, s.exec(select(Consent).where(Consent.flow_id == flow_id)).one())
        s.commit()

    assert events(app) == []


# --- the app's server is down --------------------------------------------------------------------------

def test_receiver_down_keeps_the_event_and_schedules_a_retry(app, receiver):
    receiver.stop()
    revoke(app, linked(app, receiver.url))

    report = send(app)

    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    [row] = events(app)
    assert row.state == "pending" and row.attempts == 1 and row.claimed_until is None
    assert row.next_attempt_at == clock.now() + MINUTE
    assert "Connection refused" in row.last_error or "NewConnectionError" in row.last_error


def test_the_event_is_delivered_once_when_the_receiver_is_back_with_the_same_id(app, receiver):
    receiver.stop()
    revoke(app, linked(app, receiver.url))
    send(app)
    receiver.start()

    assert send(app).sent == 0  # not before its back-off ends
    clock.set_now(QUIET_TIME + MINUTE)
    assert send(app).sent == 1
    clock.set_now(QUIET_TIME + dt.timedelta(hours=2))
    assert send(app).sent == 0

    [post] = receiver.posts
    [row] = events(app)
    assert verified(app, post)["jti"] == row.event_id
    assert row.state == "sent" and row.attempts == 2 and row.sent_at == QUIET_TIME + MINUTE


def test_an_error_answer_is_retried_with_back_off_then_given_up(app, receiver):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 4
    receiver.status = 503
    revoke(app, linked(app, receiver.url))
    delays = []

    for _ in range(3):
        assert send(app).retrying == 1
        [row] = events(app)
        delays.append(row.next_attempt_at - clock.now())
        clock.set_now(row.next_attempt_at)

    assert [d // MINUTE for d in delays] == [1, 2, 4]
    assert "HTTP 503" in row.last_error
    assert send(app).failed == 1
    [row] = events(app)
    assert row.state == "failed" and row.attempts == 4 and len(receiver.posts) == 4
    clock.set_now(clock.now() + dt.timedelta(days=1))
    assert send(app).sent == 0 and len(receiver.posts) == 4


def test_a_redirect_is_not_followed(app, receiver):
    receiver.status = 307
    revoke(app, linked(app, receiver.url))

    assert send(app).retrying == 1
    assert "HTTP 307" in events(app)[0].last_error


def test_one_apps_server_down_does_not_hold_up_another_apps_events(app, receiver):
    down = Receiver(free_port())  # never started
    revoke(app, linked(app, down.url))
    revoke(app, linked(app, receiver.url))

    report = send(app)

    assert (report.sent, report.retrying) == (1, 1) and len(receiver.posts) == 1


# --- parallel workers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_parallel_workers_post_each_event_once(engine, request, receiver):
    app = request.getfixturevalue("app" if engine == "sqlite" else "pg_app")
    for _ in range(16):
        revoke(app, linked(app, receiver.url))
    start = threading.Barrier(6)
    reports, errors = [], []

    def worker():
        try:
            start.wait()
            reports.append(send(app))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.sent for r in reports) == 16
    received = sorted(verified(app, post)["jti"] for post in receiver.posts)
    assert received == sorted(row.event_id for row in events(app))
    assert all(row.state == "sent" and row.attempts == 1 for row in events(app))


def test_cli_send_pending_reports_what_it_did(app, receiver, runner):
    revoke(app, linked(app, receiver.url))

    result = runner.invoke(args=["webhooks", "send-pending"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sent 1, retrying 0, failed 0"
    assert len(receiver.posts) == 1


# --- the union's key ---------------------------------------------------------------------------------

def test_jwks_publishes_each_unions_public_key_and_the_metadata_points_to_it(client):
    amami, maruhachi = client.get("/amami/jwks.json"), client.get("/maruhachi/jwks.json")

    assert amami.status_code == 200 and amami.headers["Content-Type"] == "application/json"
    [key] = amami.get_json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key and key["kid"]
    assert maruhachi.get_json()["keys"][0]["kid"] != key["kid"]
    metadata = client.get("/.well-known/oauth-authorization-server/amami").get_json()
    assert metadata["jwks_uri"] == "https://renkei.test/amami/jwks.json"
    assert client.get("/nowhere/jwks.json").status_code == 404


def test_the_key_survives_a_restart_and_is_shared_by_every_worker(app, database_url):
    first = app.test_client().get("/amami/jwks.json").get_json()
    restarted = make_app(database_url)

    assert restarted.test_client().get("/amami/jwks.json").get_json() == first
    with restarted.app_context():
        assert keys.signing_key("amami").kid == first["keys"][0]["kid"]


def test_parallel_first_uses_make_one_key(app):
    start = threading.Barrier(6)
    kids, errors = [], []

    def first_use():
        try:
            start.wait()
            with app.app_context():
                kids.append(keys.signing_key("amami").kid)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == [] and len(set(kids)) == 1
    assert len(app.test_client().get("/amami/jwks.json").get_json()["keys"]) == 1


def test_the_private_key_is_stored_only_encrypted(app):
    with app.app_context():
        private = keys.signing_key("amami").as_dict(private=True)
        with Session(db.engine()) as s:
            row = s.exec(select(SigningKey).where(SigningKey.tenant == "amami")).one()
    assert private["d"] not in row.private_jwk_encrypted and private["d"] not in json.dumps(row.public_jwk)


def test_a_new_secret_key_makes_a_new_key_and_the_old_one_stays_published(app, database_url):
    old = app.test_client().get("/amami/jwks.json").get_json()["keys"][0]["kid"]
    rotated = make_app(database_url, SECRET_KEY=TEST_SECRET + "-rotated")

    with rotated.app_context():
        new = keys.signing_key("amami").kid
    assert new != old
    published = [k["kid"] for k in rotated.test_client().get("/amami/jwks.json").get_json()["keys"]]
    assert published == [new, old]


# --- where a webhook may point --------------------------------------------------------------------------

def add_client(app, *extra):
    return app.test_cli_runner().invoke(args=[
        "clients", "add", "--tenant", "amami", "--name", "家計簿アプリ", "--operator", "株式会社テスト",
        "--redirect-uri", "https://app.example/cb", *extra])


def test_clients_add_takes_a_webhook_url_and_prints_what_it_always_printed(app):
    result = add_client(app, "--webhook-url", "https://hooks.app.example/renkei")

    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"client_id", "client_secret"}
    listed = [json.loads(line) for line in app.test_cli_runner().invoke(args=["clients", "list"]).output.splitlines()]
    assert [c["webhook_url"] for c in listed if c["client_id"] == created["client_id"]] == [
        "https://hooks.app.example/renkei"]


@pytest.fixture
def production():
    """What a union runs: not sandbox mode."""
    return {"SANDBOX": False}


@pytest.mark.parametrize("url", [
    "http://hooks.app.example/renkei",  # not https
    "http://127.0.0.1:8080/hook",  # http, even to this machine, outside sandbox mode
    "https://localhost/hook",
    "https://127.0.0.1/hook",
    "https://10.0.0.8/hook",
    "https://192.168.1.20/hook",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[::1]/hook",
    "https://[fd00::1]/hook",
    "https://[::ffff:10.0.0.8]/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://user:pass@hooks.app.example/hook",
    "ftp://hooks.app.example/hook",
    "hooks.app.example/hook",
])
def test_production_refuses_webhook_urls_that_are_not_https_to_a_public_host(production, url, request):
    app = make_app(request.getfixturevalue("database_url"), **production)

    result = add_client(app, "--webhook-url", url)

    assert result.exit_code == 2 and "--webhook-url" in result.output
    with app.app_context(), Session(db.engine()) as s:
        assert s.exec(select(OAuthClient)).all() == []


@pytest.mark.parametrize("address", [
    "64:ff9b::a00:8",  # NAT64 (RFC 6052): on an IPv6-only network with NAT64 this is 10.0.0.8
    "2002:a00:8::1",  # 6to4 of 10.0.0.8
    "::a00:8",  # IPv4-compatible IPv6 of 10.0.0.8
    "2001:0:4136:e378:8000:63bf:f5ff:fff7",  # Teredo, client 10.0.0.8
    "fec0::1",  # site-local (deprecated, still routed inside some networks)
])
def test_ipv6_forms_of_internal_addresses_are_refused(address):
    """Python calls these global; each carries an internal IPv4 address or is site-local."""
    from webapp.webhooks.targets import address_allowed, url_problem

    assert not address_allowed(address, sandbox=False)
    assert url_problem(f"https://[{address}]/hook", sandbox=False) is not None


def test_ipv6_forms_of_public_addresses_are_allowed():
    from webapp.webhooks.targets import address_allowed

    assert address_allowed("2606:4700::6810:84e5", sandbox=False)
    assert address_allowed("64:ff9b::5db8:d70e", sandbox=False)  # NAT64 of 93.184.215.14


def test_sandbox_allows_http_only_to_localhost(app):
    assert add_client(app, "--webhook-url", "http://127.0.0.1:8080/hook").exit_code == 0
    assert add_client(app, "--webhook-url", "http://localhost:8080/hook").exit_code == 0
    assert add_client(app, "--webhook-url", "http://hooks.app.example/hook").exit_code == 2
    assert add_client(app, "--webhook-url", "https://10.0.0.8/hook").exit_code == 2


def test_set_webhook_checks_the_url_and_clears_it(app, runner):
    client_id = json.loads(add_client(app).output)["client_id"]

    refused = runner.invoke(args=["clients", "set-webhook", "--client-id", client_id, "--url", "http://app.example/"])
    assert refused.exit_code == 2
    ok = runner.invoke(args=["clients", "set-webhook", "--client-id", client_id, "--url", "https://app.example/h"])
    assert ok.exit_code == 0 and "https://app.example/h" in ok.output
    cleared = runner.invoke(args=["clients", "set-webhook", "--client-id", client_id, "--clear"])
    assert cleared.exit_code == 0
    with app.app_context(), Session(db.engine()) as s:
        assert s.exec(select(OAuthClient)).one().webhook_url is None
    assert runner.invoke(args=["clients", "set-webhook", "--client-id", "nope", "--clear"]).exit_code == 2
    assert runner.invoke(args=["clients", "set-webhook", "--client-id", client_id]).exit_code == 2


def test_a_name_that_resolves_to_an_internal_address_is_never_called(production, request, monkeypatch):
    """DNS may change after registration (or be made to: rebinding); each delivery checks again."""
    app = make_app(request.getfixturevalue("database_url"), **production)
    consent_id = linked(app, "https://hooks.app.example/renkei")
    revoke(app, consent_id)
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.8", 443))])
    connections = []
    monkeypatch.setattr(urllib3.HTTPSConnectionPool, "urlopen", lambda *a, **k: connections.append(a))

    report = send(app)

    assert report.failed == 1 and connections == []
    [row] = events(app)
    assert row.state == "failed" and "internal address" in row.last_error


def test_a_public_name_is_called_at_the_address_that_was_checked(production, request, monkeypatch):
    app = make_app(request.getfixturevalue("database_url"), **production)
    revoke(app, linked(app, "https://hooks.app.example/renkei"))
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))])
    calls = []

    def urlopen(pool, method, path, **kw):
        calls.append((pool.host, pool.port, pool.conn_kw.get("server_hostname"), pool.assert_hostname, method, path,
                      kw["headers"]["Host"], kw["redirect"]))
        return urllib3.HTTPResponse(status=202)

    monkeypatch.setattr(urllib3.HTTPSConnectionPool, "urlopen", urlopen)

    assert send(app).sent == 1
    assert calls == [("93.184.215.14", 443, "hooks.app.example", "hooks.app.example", "POST", "/renkei",
                      "hooks.app.example", False)]


def test_metrics_show_the_webhook_backlog(request):
    token = "metrics-token-for-tests-0123456789"
    app = make_app(request.getfixturevalue("database_url"), METRICS_TOKEN=token)
    receiver_down = Receiver(free_port())
    revoke(app, linked(app, receiver_down.url))
    send(app)
    clock.set_now(QUIET_TIME + 30 * MINUTE)

    text = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)

    assert "renkei_webhook_outbox_pending 1.0" in text.splitlines()
    assert "renkei_webhook_outbox_due 1.0" in text.splitlines()
    assert "renkei_webhook_outbox_oldest_pending_seconds 1800.0" in text.splitlines()
    assert "renkei_mail_outbox_pending 0.0" in text.splitlines()
