"""FAPI 2.0 Security Profile for `fapi2` clients (CONTRACT §4–§6): PAR (RFC 9126), private_key_jwt
(RFC 7523), DPoP-bound tokens (RFC 9449).

The negative cases are those of the OpenID Foundation's FAPI 2.0 Security Profile conformance plan
(fapi2-security-profile-final-test-plan) that apply to a server with unsigned PAR requests,
private_key_jwt and DPoP; each test names its module where there is one.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from joserfc import jwt
from sqlmodel import Session, select

from conftest import DEMO, FlowActions, register_client, text_of
from fapi2_support import BASE, FapiApp, FapiFlowActions, new_key, now, public_jwks, register_fapi2_client
from test_oauth_support import REDIRECT_URI, allow, at_consent, authorized, basic, later, query
from webapp import clock, db
from webapp.oauth import par
from webapp.oauth.models import OAuthClient, PushedRequest, Token

BAD_REQUEST_PAGE = "連携元アプリからの要求を受け付けられませんでした"


@pytest.fixture
def fapi(app, client, customers, tmp_path):
    return FapiApp(app, client, "amami", tmp_path)


@pytest.fixture
def walk(fapi):
    return FapiFlowActions(fapi)


def tokens(fapi, walk) -> dict:
    response = fapi.exchange(authorized(walk)["code"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def error_of(response) -> str:
    return response.get_json()["error"]


def assert_dpop_refusal(response, error: str = "invalid_token"):
    assert response.status_code == 401, response.get_data(as_text=True)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP realm="https://renkei.test/amami"'), challenge
    assert f'error="{error}"' in challenge and 'algs="ES256 PS256"' in challenge
    assert response.get_json()["errorCode"] == error


# --- the positive path ------------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
@pytest.mark.parametrize("alg", ["ES256", "PS256"])
def test_fapi2_happy_flow_par_private_key_jwt_dpop_bound_api_call(app, client, customers, tmp_path, tenant, alg):
    fapi = FapiApp(app, client, tenant, tmp_path, alg=alg)
    walk = FapiFlowActions(fapi)
    redirect = authorized(walk)
    assert redirect["iss"] == f"{BASE}/{tenant}" and redirect["state"] == "xyz"
    response = fapi.exchange(redirect["code"])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["token_type"] == "DPoP" and body["scope"] == "accounts" and body["expires_in"] == 600
    assert response.headers["DPoP-Nonce"]
    accounts = fapi.api("accounts", body["access_token"])
    assert accounts.status_code == 200, accounts.get_data(as_text=True)
    assert accounts.get_json()["accounts"][0]["accountNo"] == DEMO[tenant]["number"]
    with app.app_context(), Session(db.engine()) as s:
        (row,) = s.exec(select(Token)).all()
    assert row.dpop_jkt == fapi.dpop_key.thumbprint()


# --- registration (CONTRACT §4) -----------------------------------------------------------------------

def test_fapi2_dpop_with_a_ps256_key_the_metadata_advertises(fapi, walk):
    """dpop_signing_alg_values_supported lists PS256: a proof carrying a 2048-bit RSA key in its
    header (longer than joserfc's default 512-byte header limit) binds tokens and calls the API."""
    fapi.dpop_key = new_key("PS256")
    es256_proof = fapi.proof
    fapi.proof = lambda method, url, **kw: es256_proof(method, url, **{"alg": "PS256", **kw})
    response = fapi.exchange(authorized(walk)["code"])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["token_type"] == "DPoP"
    assert fapi.api("accounts", body["access_token"]).status_code == 200
    assert fapi.refresh(body["refresh_token"]).status_code == 200


def test_fapi2_client_registration_prints_only_a_client_id_and_keeps_the_public_keys(app, tmp_path):
    key = new_key()
    printed = register_fapi2_client(app, "amami", tmp_path, key)
    assert set(printed) == {"client_id"}
    with app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient)).one()
    assert row.profile == "fapi2" and row.client_secret_hash == "" and row.jwks == public_jwks(key)
    listed = json.loads(app.test_cli_runner().invoke(args=["clients", "list"]).output)
    assert listed["profile"] == "fapi2"


def small_rsa_key():
    """A 1024-bit RSA key (joserfc only warns about one; FAPI 2.0 §5.4.1 asks for 2048 bits or more)."""
    import warnings

    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RSAKey.import_key(rsa.generate_private_key(65537, 1024))


def test_fapi2_registration_refuses_an_rsa_key_under_2048_bits(app, runner, tmp_path):
    """FAPI 2.0 §5.4.1 item 2: RSA keys of 2048 bits or more."""
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"keys": [small_rsa_key().as_dict(private=False)]}))
    result = runner.invoke(args=["clients", "add", "--tenant", "amami", "--name", "x", "--operator", "y",
                                 "--redirect-uri", REDIRECT_URI, "--profile", "fapi2", "--jwks-file", str(small)])
    assert result.exit_code != 0 and "2048" in result.output, result.output


def test_fapi2_registration_refuses_a_private_key_a_missing_key_set_or_both(app, runner, tmp_path):
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [new_key().as_dict(private=True)]}))
    base = ["clients", "add", "--tenant", "amami", "--name", "x", "--operator", "y",
            "--redirect-uri", REDIRECT_URI, "--profile", "fapi2"]
    assert runner.invoke(args=base + ["--jwks-file", str(private)]).exit_code != 0
    assert runner.invoke(args=base).exit_code != 0
    assert runner.invoke(args=base + ["--jwks-file", str(private), "--jwks-uri", "https://a.example/jwks"]).exit_code != 0
    assert runner.invoke(args=base + ["--jwks-uri", "http://a.example/jwks"]).exit_code != 0  # http: only to localhost
    assert runner.invoke(args=base + ["--jwks-uri", "http://localhost:8080/jwks"]).exit_code == 0  # in sandbox mode
    with app.app_context(), Session(db.engine()) as s:
        assert len(s.exec(select(OAuthClient)).all()) == 1


def test_existing_clients_keep_client_secret_basic_and_bearer_tokens(amami):
    from test_oauth_support import tokens as bearer_tokens

    body = bearer_tokens(amami)
    assert body["token_type"] == "Bearer"
    with amami.app.app_context(), Session(db.engine()) as s:
        assert s.exec(select(OAuthClient)).one().profile == "oauth2"


# --- PAR (RFC 9126) -----------------------------------------------------------------------------------

def test_fapi2_par_returns_a_request_uri_for_at_most_60_seconds(fapi):
    response = fapi.push()
    assert response.status_code == 201
    body = response.get_json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:") and len(body["request_uri"]) > 70
    assert 0 < body["expires_in"] <= 60
    assert response.headers["Cache-Control"] == "no-store"
    with fapi.app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(PushedRequest)).one()
    assert row.request_uri_hash == hashlib.sha256(body["request_uri"].encode()).hexdigest()  # stored hashed only
    assert row.params["code_challenge_method"] == "S256" and row.params["redirect_uri"] == REDIRECT_URI


@pytest.mark.parametrize("name", ["state", "redirect_uri", "scope", "code_challenge"])
def test_fapi2_par_refuses_an_oversized_parameter(fapi, name):
    """A pushed request is not limited by a URL's length: a 100 kB state would come back in ⑥'s
    Location header, which the proxy cannot pass on (the customer's 許可する would fail)."""
    response = fapi.push(**{name: "s" * par.MAX_PARAM_LENGTH + "s"})
    assert response.status_code == 400 and error_of(response) == "invalid_request"
    assert fapi.push(state="s" * par.MAX_PARAM_LENGTH).status_code == 201


def test_fapi2_par_needs_client_authentication(fapi):
    response = fapi.push(auth={})
    assert response.status_code in (400, 401) and error_of(response) == "invalid_client"


def test_fapi2_par_without_pkce_is_refused(fapi):
    """fapi2-security-profile-final-par-ensure-pkce-required"""
    response = fapi.push(code_challenge=None, code_challenge_method=None)
    assert response.status_code == 400 and error_of(response) == "invalid_request"
    assert "PKCE" in response.get_json()["error_description"]
    assert "Location" not in response.headers


def test_fapi2_par_with_plain_pkce_is_refused(fapi):
    """fapi2-security-profile-final-par-ensure-plain-pkce-rejected"""
    response = fapi.push(code_challenge="x" * 43, code_challenge_method="plain")
    assert response.status_code == 400 and error_of(response) == "invalid_request"


def test_fapi2_par_with_an_unregistered_redirect_uri_is_refused(fapi):
    response = fapi.push(redirect_uri="https://evil.example/cb")
    assert response.status_code == 400 and error_of(response) == "invalid_request"


def test_fapi2_par_refuses_a_request_uri_among_the_pushed_parameters(fapi):
    """fapi2-security-profile-final-par-reject-request-uri-in-par-authorization-form-params"""
    response = fapi.push(request_uri="urn:ietf:params:oauth:request_uri:abc")
    assert response.status_code == 400 and error_of(response) == "invalid_request"


def test_fapi2_par_refuses_a_get(fapi):
    """fapi2-security-profile-final-par-reject-invalid-http-verb"""
    assert fapi.client.get("/amami/oauth/par").status_code == 405


def test_fapi2_authorization_without_par_is_refused(fapi):
    """fapi2-security-profile-final-ensure-unsigned-authorization-request-without-using-par-fails"""
    walk = FlowActions.__new__(FlowActions)
    walk.__dict__.update(app=fapi.app, client=fapi.client, tenant="amami", oauth_client={"client_id": fapi.client_id})
    response = fapi.client.get("/amami/oauth/authorize", query_string=walk.authorize_params())
    assert response.status_code == 303
    params = query(response.headers["Location"])
    assert params["error"] == "invalid_request" and "PAR" in params["error_description"] and "code" not in params


def test_fapi2_par_expired_request_uri(fapi):
    """fapi2-security-profile-final-par-attempt-to-use-expired-request_uri"""
    request_uri = fapi.request_uri()
    later(seconds=61)
    response = fapi.authorize(request_uri)
    assert response.status_code == 400 and BAD_REQUEST_PAGE in text_of(response)
    assert "Location" not in response.headers


def test_fapi2_par_request_uri_still_opens_at_59_seconds(fapi):
    request_uri = fapi.request_uri()
    later(seconds=59)
    assert fapi.authorize(request_uri).status_code == 303


def test_fapi2_par_request_uri_reuse_is_refused(fapi, walk):
    """fapi2-security-profile-final-par-attempt-reuse-request_uri: once 許可する issued a code, the
    request_uri opens nothing."""
    assert authorized(walk)["code"]
    response = fapi.authorize(walk.last_request_uri)
    assert response.status_code == 400 and BAD_REQUEST_PAGE in text_of(response)


def test_fapi2_par_request_uri_reused_before_completion_succeeds(fapi, walk):
    """fapi2-security-profile-final-par-ensure-reused-request-uri-prior-to-auth-completion-succeeds:
    a reload of the authorization page is no second authorization."""
    request_uri = fapi.request_uri()
    assert fapi.authorize(request_uri).status_code == 303
    assert fapi.authorize(request_uri).status_code == 303


def test_fapi2_par_request_uri_gives_one_code_even_to_two_flows(fapi):
    """Two flows opened from one request_uri (two tabs): the first 許可する spends it, the second
    gets no code."""
    request_uri = fapi.request_uri()
    first, second = FapiFlowActions(fapi), FapiFlowActions(fapi, browser=fapi.app.test_client())
    at_consent(first, request_uri=request_uri)
    at_consent(second, request_uri=request_uri)
    granted = allow(first)
    assert granted.status_code == 303 and "code=" in granted.headers["Location"]
    refused = allow(second)
    assert refused.status_code == 400 and "Location" not in refused.headers


def test_fapi2_par_request_uri_is_bound_to_client(app, client, customers, tmp_path):
    """fapi2-security-profile-final-par-ensure-request-uri-is-bound-to-client"""
    ours, theirs = FapiApp(app, client, "amami", tmp_path), FapiApp(app, client, "amami", tmp_path)
    request_uri = ours.request_uri()
    assert theirs.authorize(request_uri).status_code == 400
    assert client.get(f"/amami/oauth/authorize?request_uri={request_uri}").status_code == 400
    assert client.get(f"/maruhachi/oauth/authorize?client_id={ours.client_id}&request_uri={request_uri}").status_code == 400
    assert ours.authorize(request_uri).status_code == 303


def test_fapi2_authorization_takes_only_the_pushed_parameters(fapi):
    """fapi2-security-profile-final-par-without-duplicate-parameters: client_id and request_uri are
    enough, and anything else beside them is not used."""
    request_uri = fapi.request_uri(state="pushed")
    response = fapi.authorize(request_uri, state="tampered", redirect_uri="https://evil.example/cb")
    assert response.status_code == 303
    from test_oauth_support import latest_flow

    flow = latest_flow(fapi.app)
    assert flow.oauth_request["state"] == "pushed" and flow.redirect_uri == REDIRECT_URI


def _parallel_spends(app, n: int = 8) -> list[bool]:
    with app.test_request_context("/amami/"):
        from flask import g
        from webapp import tenants

        g.tenant = tenants.get_tenant("amami")
        par.push("amami", "some-client", {"response_type": "code"})
        db.session().commit()
        pushed_id = db.session().exec(select(PushedRequest)).one().id
    barrier = threading.Barrier(n)

    def attempt(_):
        with app.app_context(), Session(db.engine()) as s:
            barrier.wait()
            won = par.spend(s, pushed_id)
            s.commit()
            return won

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def test_fapi2_par_request_uri_is_spent_once_under_parallel_requests_on_sqlite(app):
    assert _parallel_spends(app).count(True) == 1


@pytest.mark.postgres
def test_fapi2_par_request_uri_is_spent_once_under_parallel_requests_on_postgres(pg_app):
    assert _parallel_spends(pg_app).count(True) == 1


def test_par_is_open_to_other_clients_with_their_secret(app, client, customers):
    creds = register_client(app, "amami")
    data = {"response_type": "code", "client_id": creds["client_id"], "redirect_uri": REDIRECT_URI,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    response = client.post("/amami/oauth/par", data=data, headers=basic(creds["client_id"], creds["client_secret"]))
    assert response.status_code == 201
    request_uri = response.get_json()["request_uri"]
    assert client.get(f"/amami/oauth/authorize?client_id={creds['client_id']}&request_uri={request_uri}").status_code == 303


# --- private_key_jwt (RFC 7523) -----------------------------------------------------------------------

def _pushed_with(fapi, assertion):
    return fapi.push(auth=fapi.auth(assertion))


def assert_invalid_client(response):
    assert response.status_code in (400, 401), response.get_data(as_text=True)
    assert error_of(response) == "invalid_client"


def test_fapi2_client_assertion_wrong_aud(fapi):
    """fapi2-security-profile-final-ensure-client-assertion-with-wrong-aud-fails"""
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(aud="https://renkei.test/maruhachi")))


@pytest.mark.parametrize("aud", ["oauth/token", "oauth/par"])
def test_fapi2_client_assertion_with_an_endpoint_as_aud_is_refused(fapi, aud):
    """fapi2-security-profile-final-par-token-endpoint-as-audience-fails, -par-endpoint-as-audience-fails"""
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(aud=fapi.url(aud))))


def test_fapi2_client_assertion_with_an_array_aud_is_refused(fapi):
    """fapi2-security-profile-final-par-endpoint-as-array-audience-fails (FAPI 2.0 §5.3.2.1: a string)"""
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(aud=[fapi.issuer, fapi.url("oauth/par")])))


def test_fapi2_client_assertion_reused_jti(fapi):
    assertion = fapi.assertion()
    assert _pushed_with(fapi, assertion).status_code == 201
    assert_invalid_client(_pushed_with(fapi, assertion))


def test_fapi2_client_assertion_reused_jti_in_a_new_assertion(fapi):
    fapi.push(auth=fapi.auth(fapi.assertion(jti="same-jti-1")))
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(jti="same-jti-1", iat=None)))


def test_fapi2_client_assertion_without_kid_is_verified_against_each_registered_key(app, client, customers, tmp_path):
    first, second = new_key(), new_key()
    fapi = FapiApp(app, client, "amami", tmp_path)
    fapi.client_id = register_fapi2_client(app, "amami", tmp_path, first, second)["client_id"]
    for key in (first, second):
        assertion = jwt.encode({"alg": "ES256"}, {"iss": fapi.client_id, "sub": fapi.client_id, "aud": fapi.issuer,
                                                  "jti": secrets.token_urlsafe(8), "exp": now() + 60}, key)
        assert _pushed_with(fapi, assertion).status_code == 201
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(key=new_key())))


def test_fapi2_client_assertion_wrong_key(fapi):
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(key=new_key())))


def test_fapi2_client_assertion_expired(fapi):
    """fapi2-security-profile-final-ensure-client-assertion-with-exp-is-5-minutes-in-past-fails"""
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(iat=None, exp=int(clock.now().timestamp()) - 300)))


def test_fapi2_client_assertion_without_sub(fapi):
    """fapi2-security-profile-final-ensure-client-assertion-with-no-sub-fails"""
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(sub=None)))


def test_fapi2_client_assertion_signed_with_rs256_is_refused(app, client, customers, tmp_path):
    """fapi2-security-profile-final-ensure-signed-client-assertion-with-rs256-fails"""
    fapi = FapiApp(app, client, "amami", tmp_path, alg="PS256")
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(alg="RS256")))
    assert _pushed_with(fapi, fapi.assertion()).status_code == 201


def test_fapi2_client_assertion_with_alg_none_or_hs256_keyed_by_the_public_key_is_refused(fapi):
    """Algorithm confusion: `none`, and HS256 with the registered public key's bytes as its secret."""
    import base64
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    claims = b64(json.dumps({"iss": fapi.client_id, "sub": fapi.client_id, "aud": fapi.issuer,
                             "jti": secrets.token_urlsafe(8), "exp": now() + 60}).encode())
    public = json.dumps(fapi.signing_key.as_dict(private=False)).encode()
    none = b64(b'{"alg":"none"}') + "." + claims + "."
    signing_input = (b64(b'{"alg":"HS256"}') + "." + claims).encode()
    for secret in (public, fapi.signing_key.as_pem(private=False)):
        hs256 = signing_input.decode() + "." + b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
        assert_invalid_client(_pushed_with(fapi, hs256))
    assert_invalid_client(_pushed_with(fapi, none))


def test_fapi2_client_assertion_iat_8_seconds_ahead_is_accepted(fapi):
    """fapi2-security-profile-final-par-ensure-jwt-client-assertion-with-iat-nbf-8-seconds-in-the-future-is-accepted"""
    t = int(clock.now().timestamp())
    assert _pushed_with(fapi, fapi.assertion(iat=t + 8, nbf=t + 8)).status_code == 201


def test_fapi2_client_assertion_iat_over_60_seconds_ahead_is_refused(fapi):
    """fapi2-security-profile-final-par-ensure-jwt-client-assertion-with-iat-nbf-over-60-seconds-in-the-future-fails"""
    t = int(clock.now().timestamp())
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(iat=t + 70, nbf=t + 70)))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_fapi2_client_assertion_with_a_time_that_is_no_number_is_refused(fapi, claim, value):
    """exp/iat/nbf of NaN or Infinity (Python's JSON reads them) are no times: invalid_client, not a 500."""
    assert_invalid_client(_pushed_with(fapi, fapi.assertion(**{claim: value})))


def test_fapi2_client_assertion_is_single_use_across_par_token_revocation_and_introspection(fapi):
    """One replay cache for every endpoint: an assertion spent at PAR opens none of the others."""
    assertion = fapi.assertion()
    assert _pushed_with(fapi, assertion).status_code == 201
    for endpoint in ("oauth/token", "oauth/revoke", "oauth/introspect"):
        response = fapi.client.post(f"/amami/{endpoint}", data={"grant_type": "refresh_token", "refresh_token": "x",
                                                                "token": "x", **fapi.auth(assertion)})
        assert_invalid_client(response)


@pytest.mark.parametrize("endpoint", ["oauth/token", "oauth/revoke", "oauth/introspect"])
def test_fapi2_a_client_id_beside_the_assertion_must_be_its_sub(app, client, customers, tmp_path, fapi, endpoint):
    """RFC 7521 §4.2: a client_id sent with a client assertion MUST identify the same client."""
    other = FapiApp(app, client, "amami", tmp_path)
    response = fapi.client.post(f"/amami/{endpoint}", data={"grant_type": "refresh_token", "refresh_token": "x",
                                                            "token": "x", **fapi.auth(), "client_id": other.client_id})
    assert_invalid_client(response)
    response = fapi.client.post(f"/amami/{endpoint}", data={"token": "x", **fapi.auth(), "client_id": fapi.client_id})
    assert response.status_code != 401 and (response.get_json() or {}).get("error") != "invalid_client"


def test_fapi2_client_cannot_use_client_secret_basic(fapi):
    response = fapi.client.post("/amami/oauth/par", data={"response_type": "code"},
                                headers=basic(fapi.client_id, ""))
    assert_invalid_client(response)


def test_other_clients_cannot_use_private_key_jwt(app, client, customers, tmp_path):
    creds = register_client(app, "amami")
    fapi = FapiApp(app, client, "amami", tmp_path)
    fapi.client_id = creds["client_id"]  # an assertion for a client that has no keys registered
    assert_invalid_client(fapi.push())


def test_fapi2_odd_client_assertions_never_make_a_500(fapi):
    import base64

    nested = base64.urlsafe_b64encode(b"[" * 2000).decode().rstrip("=")  # json.loads: RecursionError
    header = base64.urlsafe_b64encode(b'{"alg":"ES256"}').decode().rstrip("=")
    for assertion in ("x", "a.b.c", "e30.e30.", "e30." * 3, "日本.語.x", "x" * 9000, f"{nested}.e30.x",
                      f"{header}.{nested}.x"):
        assert_invalid_client(_pushed_with(fapi, assertion))


# --- the client's keys by reference (jwks_uri) --------------------------------------------------------

class LoopbackServer:
    """A client's server on a loopback port, counting the requests it gets; `answer` writes the reply."""

    daemon_threads = True

    def __init__(self):
        import http.server

        outer = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                try:
                    outer.answer(self)
                except OSError:  # the server under test gave up waiting (its timeout)
                    pass

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = outer.daemon_threads
            block_on_close = not outer.daemon_threads  # server_close() then waits for a slow answer

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler) -> None:
        raise NotImplementedError

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def loopback_servers(make):
    """A fixture's body: start servers with `make(...)`, close them all and forget cached keys after."""
    servers = []

    def start(*args, **kw):
        servers.append(make(*args, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
    from webapp.oauth import client_keys

    client_keys.forget()


class JwksServer(LoopbackServer):
    """A client's JWKS, answered after `delay` seconds."""

    daemon_threads = False  # a slow answer ends within the test

    def __init__(self, jwks: dict, delay: float = 0):
        self.jwks, self.delay = jwks, delay
        super().__init__()

    def answer(self, handler) -> None:
        import time

        time.sleep(self.delay)
        body = json.dumps(self.jwks).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def jwks_server():
    yield from loopback_servers(JwksServer)


def test_fapi2_jwks_uri_is_fetched_and_cached(app, client, customers, tmp_path, jwks_server):
    key = new_key()
    served = jwks_server(public_jwks(key))
    fapi = FapiApp(app, client, "amami", tmp_path, jwks_uri=served.url)
    fapi.signing_key = key
    assert fapi.push().status_code == 201
    assert fapi.push().status_code == 201
    assert served.hits == 1


@pytest.mark.parametrize("app_config", [{"JWKS_FETCH_TIMEOUT": 0.3}])
def test_fapi2_slow_jwks_uri_fails_the_authentication_after_its_timeout(app, client, customers, tmp_path,
                                                                        jwks_server):
    import time

    key = new_key()
    served = jwks_server(public_jwks(key), delay=2)
    fapi = FapiApp(app, client, "amami", tmp_path, jwks_uri=served.url)
    fapi.signing_key = key
    started = time.monotonic()
    assert_invalid_client(fapi.push())
    assert time.monotonic() - started < 1.5


class OddJwksServer(LoopbackServer):
    """A client's server that answers its JWKS badly: `drip` sends `body` a few bytes at a time,
    `redirect` answers 302 to `body`."""

    def __init__(self, body: bytes, *, drip: float = 0, redirect: bool = False):
        self.body, self.drip, self.redirect = body, drip, redirect
        super().__init__()

    def answer(self, handler) -> None:
        import time

        if self.redirect:
            handler.send_response(302)
            handler.send_header("Location", self.body.decode())
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()  # no Content-Length: the body ends when the connection closes
        for i in range(0, len(self.body), 64 if self.drip else len(self.body)):
            handler.wfile.write(self.body[i:i + (64 if self.drip else len(self.body))])
            handler.wfile.flush()
            time.sleep(self.drip)


@pytest.fixture
def odd_jwks_server():
    yield from loopback_servers(OddJwksServer)


def _fapi2_with_jwks_uri(app, client, tmp_path, uri: str, key):
    """A FAPI 2.0 client signing with `key` whose stored jwks_uri is `uri` (set in the database, past
    the CLI's check)."""
    fapi = FapiApp(app, client, "amami", tmp_path)
    fapi.signing_key = key
    with app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient).where(OAuthClient.client_id == fapi.client_id)).one()
        row.jwks, row.jwks_uri = None, uri
        s.add(row)
        s.commit()
    return fapi


@pytest.mark.parametrize("app_config", [{"JWKS_FETCH_TIMEOUT": 0.5}])
def test_fapi2_jwks_uri_dripping_its_answer_fails_within_the_timeout(app, client, customers, tmp_path,
                                                                     odd_jwks_server):
    """The timeout is for the whole answer, not for each read: a server sending a few bytes at a time
    cannot hold a token request (and a worker thread) for long."""
    import time

    key = new_key()
    served = odd_jwks_server(json.dumps(public_jwks(key)).encode(), drip=0.2)
    fapi = _fapi2_with_jwks_uri(app, client, tmp_path, served.url, key)
    started = time.monotonic()
    assert_invalid_client(fapi.push())
    assert time.monotonic() - started < 1.5


def test_fapi2_jwks_uri_with_a_huge_answer_is_no_key_set(app, client, customers, tmp_path, odd_jwks_server):
    key = new_key()
    served = odd_jwks_server(json.dumps({**public_jwks(key), "pad": "x" * (2 * 1024 * 1024)}).encode())
    assert_invalid_client(_fapi2_with_jwks_uri(app, client, tmp_path, served.url, key).push())


def test_fapi2_jwks_uri_redirect_is_not_followed(app, client, customers, tmp_path, jwks_server, odd_jwks_server):
    key = new_key()
    target = jwks_server(public_jwks(key))
    redirecting = odd_jwks_server(target.url.encode(), redirect=True)
    assert_invalid_client(_fapi2_with_jwks_uri(app, client, tmp_path, redirecting.url, key).push())
    assert redirecting.hits == 1 and target.hits == 0


def test_fapi2_jwks_uri_that_failed_is_not_fetched_again_at_once(app, client, customers, tmp_path, odd_jwks_server):
    """Anyone can send an unsigned assertion naming a client: while its server fails, each such
    request must not cost a fetch (and a wait) of its own."""
    served = odd_jwks_server(b"not json")
    fapi = _fapi2_with_jwks_uri(app, client, tmp_path, served.url, new_key())
    for _ in range(3):
        assert_invalid_client(fapi.push())
    assert served.hits == 1


def test_fapi2_jwks_uri_nested_without_end_is_no_key_set(app, client, customers, tmp_path, odd_jwks_server):
    served = odd_jwks_server(b"[" * 60000)
    assert_invalid_client(_fapi2_with_jwks_uri(app, client, tmp_path, served.url, new_key()).push())


@pytest.mark.parametrize("app_config", [{"SANDBOX": False}])
def test_fapi2_jwks_uri_inside_the_unions_network_is_never_fetched(app, client, customers, tmp_path, jwks_server,
                                                                   monkeypatch):
    """SSRF: in production a jwks_uri naming (or resolving to) a loopback, private or link-local
    address is not fetched, whatever its scheme: the webhooks' guard (webhooks/targets.py)."""
    import socket

    key = new_key()
    served = jwks_server(public_jwks(key))
    port = served.server.server_address[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: real(
        "127.0.0.1" if host == "keys.fintech.example" else host, *a, **kw))
    for uri in (served.url, f"http://localhost:{port}/jwks.json", f"https://keys.fintech.example:{port}/jwks.json"):
        assert_invalid_client(_fapi2_with_jwks_uri(app, client, tmp_path, uri, key).push())
    assert served.hits == 0


@pytest.mark.parametrize("app_config", [{"SANDBOX": False}])
@pytest.mark.parametrize("uri", ["http://localhost:8080/jwks.json", "https://169.254.169.254/jwks.json",
                                 "https://10.0.0.5/jwks.json", "https://[::ffff:127.0.0.1]/jwks.json"])
def test_fapi2_registration_refuses_a_jwks_uri_inside_the_unions_network(app, uri):
    result = app.test_cli_runner().invoke(args=[
        "clients", "add", "--tenant", "amami", "--name", "x", "--operator", "y",
        "--redirect-uri", REDIRECT_URI, "--profile", "fapi2", "--jwks-uri", uri])
    assert result.exit_code != 0 and "Invalid value for --jwks-uri" in result.output, result.output


# --- DPoP at the token endpoint (RFC 9449 §5, §8) -----------------------------------------------------

def test_fapi2_token_request_without_dpop_proof_is_refused(fapi, walk):
    """fapi2-security-profile-final-ensure-holder-of-key-required"""
    code = authorized(walk)["code"]
    response = fapi.exchange(code, proof=None)
    assert response.status_code == 400 and error_of(response) == "invalid_dpop_proof"
    assert fapi.exchange(code).status_code == 200  # the refusal did not spend the code


def test_fapi2_token_endpoint_asks_for_its_nonce_and_keeps_the_code(fapi, walk):
    code = authorized(walk)["code"]
    first = fapi.exchange(code, retry_nonce=False)
    assert first.status_code == 400 and error_of(first) == "use_dpop_nonce"
    assert first.headers["DPoP-Nonce"] and fapi.nonce == first.headers["DPoP-Nonce"]
    assert fapi.exchange(code).status_code == 200


def test_fapi2_dpop_nonce_expires_after_5_minutes(fapi, walk):
    fapi.token_request({"grant_type": "authorization_code", "code": "x"})  # learns a nonce
    nonce = fapi.nonce
    later(seconds=301)
    code = authorized(walk)["code"]
    response = fapi.exchange(code, proof=fapi.proof("POST", fapi.url("oauth/token"), nonce=nonce))
    assert error_of(response) == "use_dpop_nonce"


def test_fapi2_nonce_of_the_other_union_is_refused(fapi, walk):
    from webapp.oauth import dpop

    with fapi.app.test_request_context():
        theirs = dpop.new_nonce("maruhachi")
    code = authorized(walk)["code"]
    response = fapi.exchange(code, proof=fapi.proof("POST", fapi.url("oauth/token"), nonce=theirs))
    assert error_of(response) == "use_dpop_nonce"


def _token_error(fapi, walk, **proof_kw) -> str:
    fapi.token_request({"grant_type": "authorization_code", "code": "x"})  # learns a nonce
    code = authorized(walk)["code"]
    response = fapi.exchange(code, proof=fapi.proof(**{"method": "POST", "url": fapi.url("oauth/token"), **proof_kw}))
    assert response.status_code == 400
    assert fapi.exchange(code).status_code == 200  # and the code was not spent
    return error_of(response)


def test_fapi2_dpop_proof_wrong_htu(fapi, walk):
    assert _token_error(fapi, walk, url=fapi.url("oauth/par")) == "invalid_dpop_proof"


def test_fapi2_dpop_proof_with_an_rsa_key_under_2048_bits_is_refused(fapi, walk):
    """FAPI 2.0 §5.4.1 item 2: the tokens would be bound to a key too weak to hold them."""
    import warnings

    from joserfc.jws import JWSRegistry

    key = small_rsa_key()
    fapi.token_request({"grant_type": "authorization_code", "code": "x"})  # learns a nonce
    code = authorized(walk)["code"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proof = jwt.encode({"typ": "dpop+jwt", "alg": "PS256", "jwk": key.as_dict(private=False)},
                           {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": fapi.url("oauth/token"),
                            "iat": now(), "nonce": fapi.nonce},
                           key, algorithms=["PS256"], registry=JWSRegistry(algorithms=["PS256"]))
    response = fapi.exchange(code, proof=proof)
    assert response.status_code == 400 and error_of(response) == "invalid_dpop_proof", response.get_data(as_text=True)
    assert fapi.exchange(code).status_code == 200


def test_fapi2_dpop_proof_wrong_htm(fapi, walk):
    assert _token_error(fapi, walk, method="GET") == "invalid_dpop_proof"


def test_fapi2_dpop_expired_proof(fapi, walk):
    assert _token_error(fapi, walk, iat=int(clock.now().timestamp()) - 3600) == "invalid_dpop_proof"


def test_fapi2_dpop_proof_from_the_future(fapi, walk):
    assert _token_error(fapi, walk, iat=int(clock.now().timestamp()) + 3600) == "invalid_dpop_proof"


def test_fapi2_dpop_replayed_jti(fapi, walk):
    fapi.token_request({"grant_type": "authorization_code", "code": "x"})  # learns a nonce
    proof = fapi.proof("POST", fapi.url("oauth/token"))
    first = fapi.exchange(authorized(walk)["code"], proof=proof)
    assert first.status_code == 200
    replay = fapi.exchange(authorized(FapiFlowActions(fapi))["code"], proof=proof)
    assert replay.status_code == 400 and error_of(replay) == "invalid_dpop_proof"


def test_fapi2_dpop_refresh_needs_a_proof_of_the_same_key(fapi, walk):
    first = tokens(fapi, walk)
    assert error_of(fapi.refresh(first["refresh_token"], proof=None)) == "invalid_dpop_proof"
    other = fapi.proof("POST", fapi.url("oauth/token"), key=new_key())
    assert error_of(fapi.refresh(first["refresh_token"], proof=other)) == "invalid_dpop_proof"
    second = fapi.refresh(first["refresh_token"])
    assert second.status_code == 200, second.get_data(as_text=True)
    assert second.get_json()["token_type"] == "DPoP"
    assert fapi.api("accounts", second.get_json()["access_token"]).status_code == 200


def test_fapi2_introspection_shows_the_key_binding(fapi, walk):
    body = tokens(fapi, walk)
    response = fapi.client.post("/amami/oauth/introspect", data={"token": body["access_token"], **fapi.auth()})
    assert response.status_code == 200, response.get_data(as_text=True)
    info = response.get_json()
    assert info["active"] is True and info["token_type"] == "DPoP"
    assert info["cnf"] == {"jkt": fapi.dpop_key.thumbprint()}


def test_fapi2_revocation_with_private_key_jwt(fapi, walk):
    body = tokens(fapi, walk)
    response = fapi.client.post("/amami/oauth/revoke", data={"token": body["refresh_token"], **fapi.auth()})
    assert response.status_code == 200
    assert_dpop_refusal(fapi.api("accounts", body["access_token"]))


# --- DPoP at the account API (RFC 9449 §7) -------------------------------------------------------------

@pytest.fixture
def access_token(fapi, walk) -> str:
    return tokens(fapi, walk)["access_token"]


def test_fapi2_access_token_without_proof(fapi, access_token):
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=None), "invalid_dpop_proof")


def test_fapi2_access_token_used_as_bearer(fapi, access_token):
    assert_dpop_refusal(fapi.api("accounts", access_token, scheme="Bearer", proof=None))
    assert_dpop_refusal(fapi.api("accounts", access_token, scheme="Bearer"))


def test_fapi2_dpop_proof_wrong_ath(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token + "x")
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof), "invalid_dpop_proof")


def test_fapi2_dpop_proof_without_ath(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"))
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof), "invalid_dpop_proof")


def test_fapi2_dpop_proof_signed_by_another_key(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token, key=new_key())
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof))


def test_fapi2_dpop_proof_wrong_htu_at_the_api(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts/balances"), token=access_token)
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof), "invalid_dpop_proof")
    internal = fapi.proof("GET", "http://localhost/amami/api/v1/accounts", token=access_token)
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=internal), "invalid_dpop_proof")


def test_fapi2_dpop_replayed_jti_at_the_api(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token)
    assert fapi.api("accounts", access_token, proof=proof).status_code == 200
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof), "invalid_dpop_proof")


def test_fapi2_dpop_expired_proof_at_the_api(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token, iat=int(clock.now().timestamp()) - 3600)
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof), "invalid_dpop_proof")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_fapi2_dpop_proof_with_an_iat_that_is_no_number_is_refused(fapi, access_token, value):
    """A NaN iat compares false with everything: it must not pass the iat window (and be replayable
    forever once the replay cache forgets its jti)."""
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token, iat=value)
    assert_dpop_refusal(fapi.api("accounts", access_token, proof=proof), "invalid_dpop_proof")


@pytest.mark.parametrize("seconds", [-10, 10])
def test_fapi2_dpop_proof_with_iat_10_seconds_off_succeeds(fapi, access_token, seconds):
    """fapi2-security-profile-final-ensure-dpop-proof-with-iat-10-seconds-before/after-succeeds"""
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token,
                       iat=int(clock.now().timestamp()) + seconds)
    assert fapi.api("accounts", access_token, proof=proof).status_code == 200


@pytest.mark.parametrize("url", ["https://renkei.test/amami/api/v1/accounts?x=1#f",
                                 "HTTPS://RENKEI.TEST:443/amami/api/v1/accounts"])
def test_fapi2_dpop_htu_is_compared_without_query_and_normalized(fapi, access_token, url):
    """fapi2-security-profile-final-dpop-negative-tests: query and fragment ignored (DPoP §4.3 item 9)"""
    proof = fapi.proof("GET", url, token=access_token)
    assert fapi.api("accounts", access_token, proof=proof).status_code == 200


def test_fapi2_dpop_scheme_is_case_insensitive(fapi, access_token):
    """fapi2-security-profile-final-access-token-type-header-case-sensitivity"""
    assert fapi.api("accounts", access_token, scheme="dpop").status_code == 200


def _proof_variants(fapi, token):
    url = fapi.url("api/v1/accounts")
    private = new_key()
    return {
        "typ missing": fapi.proof("GET", url, token=token, header={"typ": None}),
        "typ wrong": fapi.proof("GET", url, token=token, header={"typ": "jwt"}),
        "jwk missing": fapi.proof("GET", url, token=token, header={"jwk": None}),
        "jwk private": fapi.proof("GET", url, token=token, key=private,
                                  header={"jwk": private.as_dict(private=True)}),
        "jti missing": fapi.proof("GET", url, token=token, jti=None),
        "htm missing": fapi.proof("GET", url, token=token, htm=None),
        "htu missing": fapi.proof("GET", url, token=token, htu=None),
        "iat missing": fapi.proof("GET", url, token=token, iat=None),
        "htm PUT": fapi.proof("PUT", url, token=token),
        "htu bad port": fapi.proof("GET", "https://renkei.test:x/amami/api/v1/accounts", token=token),
        "htu not a URL": fapi.proof("GET", "http://[::1", token=token),
        "htu with userinfo": fapi.proof("GET", "https://user@renkei.test/amami/api/v1/accounts", token=token),
        "htu with a trailing slash": fapi.proof("GET", url + "/", token=token),
        "htu at another port": fapi.proof("GET", "https://renkei.test:8443/amami/api/v1/accounts", token=token),
        "htu over http": fapi.proof("GET", "http://renkei.test/amami/api/v1/accounts", token=token),
        "not a JWT": "not-a-jwt",
        "bad signature": fapi.proof("GET", url, token=token)[:-4] + "AAAA",
        "none alg": "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.e30.",
        "HS256": "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkhTMjU2In0.e30.c2ln",
        "header nested without end": "W1tb" * 600 + ".e30.x",
        "claims nested without end": "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0." + "W1tb" * 600 + ".x",
    }


def test_fapi2_dpop_negative_tests(fapi, access_token):
    """fapi2-security-profile-final-dpop-negative-tests: every malformed proof gets 401, never a 500"""
    for name, proof in _proof_variants(fapi, access_token).items():
        response = fapi.api("accounts", access_token, proof=proof)
        assert response.status_code == 401, name
        assert response.headers["WWW-Authenticate"].startswith("DPoP "), name


def test_fapi2_two_dpop_headers_are_refused(fapi, access_token):
    url = "/amami/api/v1/accounts"
    headers = [("Authorization", f"DPoP {access_token}"),
               ("DPoP", fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token)),
               ("DPoP", fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token))]
    assert_dpop_refusal(fapi.client.get(url, headers=headers), "invalid_dpop_proof")


def test_fapi2_dpop_proof_with_extra_claims_is_accepted(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token, header={"x-extra": 1}, extra="y")
    assert fapi.api("accounts", access_token, proof=proof).status_code == 200


def test_bearer_token_sent_as_dpop_is_refused(app, client, customers):
    from test_api_support import grant_token

    token = grant_token(app, "amami")["token"]
    response = client.get("/amami/api/v1/accounts", headers={"Authorization": f"DPoP {token}"})
    assert_dpop_refusal(response)
    assert client.get("/amami/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _parallel_first_uses(app, n: int = 8) -> list[bool]:
    from webapp.oauth import replay

    barrier = threading.Barrier(n)
    keep_until = clock.now() + dt.timedelta(minutes=2)

    def attempt(_):
        with app.app_context():
            barrier.wait()
            return replay.first_use("dpop", "some-jkt", "one-jti", keep_until)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def test_fapi2_jti_is_accepted_once_under_parallel_requests_on_sqlite(app):
    assert _parallel_first_uses(app).count(True) == 1


@pytest.mark.postgres
def test_fapi2_jti_is_accepted_once_under_parallel_requests_on_postgres(pg_app):
    assert _parallel_first_uses(pg_app).count(True) == 1


def test_fapi2_parallel_api_calls_with_one_proof_read_once(fapi, access_token):
    proof = fapi.proof("GET", fapi.url("api/v1/accounts"), token=access_token)
    barrier = threading.Barrier(6)

    def attempt(_):
        browser = fapi.app.test_client()
        barrier.wait()
        return browser.get("/amami/api/v1/accounts",
                           headers={"Authorization": f"DPoP {access_token}", "DPoP": proof}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(attempt, range(6)))
    assert statuses.count(200) == 1 and statuses.count(401) == 5


# --- DPoP authorization code binding (RFC 9449 §10) -----------------------------------------------------

def _bound_code(fapi, **push) -> str:
    walk = FapiFlowActions(fapi)
    walk.start = lambda **_: (fapi.authorize(fapi_request_uri(fapi, **push)), walk.get("flow/account"))[1]
    return authorized(walk)["code"]


def fapi_request_uri(fapi, headers=None, **params) -> str:
    data = {"response_type": "code", "client_id": fapi.client_id, "redirect_uri": REDIRECT_URI, "scope": "accounts",
            "state": "xyz", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", **params, **fapi.auth()}
    response = fapi.client.post("/amami/oauth/par", data=data, headers=headers or {})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["request_uri"]


def test_fapi2_dpop_proof_at_par_binds_the_code(fapi):
    """fapi2-security-profile-final-ensure-dpop-proof-at-par-endpoint-binding-success, and
    -ensure-token-endpoint-fails-with-mismatched-dpop-proof-jkt"""
    proof = fapi.proof("POST", fapi.url("oauth/par"))
    code = _bound_code(fapi, headers={"DPoP": proof})
    other = new_key()
    fapi.token_request({"grant_type": "authorization_code", "code": "x"})  # learns a nonce
    mismatched = fapi.exchange(code, proof=fapi.proof("POST", fapi.url("oauth/token"), key=other))
    assert mismatched.status_code == 400 and error_of(mismatched) == "invalid_dpop_proof"
    assert fapi.exchange(code).status_code == 200


def test_fapi2_dpop_jkt_parameter_binds_the_code(fapi):
    """fapi2-security-profile-final-ensure-dpop-auth-code-binding-success, and
    -ensure-token-endpoint-fails-with-mismatched-dpop-jkt"""
    code = _bound_code(fapi, dpop_jkt=new_key().thumbprint())
    response = fapi.exchange(code)
    assert response.status_code == 400 and error_of(response) == "invalid_dpop_proof"
    code = _bound_code(fapi, dpop_jkt=fapi.dpop_key.thumbprint())
    assert fapi.exchange(code).status_code == 200


def test_fapi2_par_with_a_dpop_jkt_other_than_its_proof_is_refused(fapi):
    """fapi2-security-profile-final-ensure-mismatched-dpop-jkt-fails"""
    response = fapi.client.post(
        "/amami/oauth/par", headers={"DPoP": fapi.proof("POST", fapi.url("oauth/par"))},
        data={"response_type": "code", "client_id": fapi.client_id, "redirect_uri": REDIRECT_URI,
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
              "dpop_jkt": new_key().thumbprint(), **fapi.auth()})
    assert response.status_code == 400 and error_of(response) == "invalid_dpop_proof"


def test_fapi2_par_with_a_bad_dpop_proof_or_dpop_jkt_is_refused(fapi):
    bad_proof = fapi.client.post("/amami/oauth/par", headers={"DPoP": "not-a-proof"}, data={
        "response_type": "code", "client_id": fapi.client_id, "redirect_uri": REDIRECT_URI,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
        **fapi.auth()})
    assert bad_proof.status_code == 400 and error_of(bad_proof) == "invalid_dpop_proof"
    assert error_of(fapi.push(dpop_jkt="not a thumbprint")) == "invalid_request"


@pytest.mark.parametrize("app_config", [{"TOKEN_REQUESTS_PER_CLIENT": "3 per minute"}])
def test_fapi2_par_and_token_requests_are_counted_per_client_named_by_its_assertion(app, client, customers, tmp_path):
    noisy, quiet = FapiApp(app, client, "amami", tmp_path), FapiApp(app, client, "amami", tmp_path)
    statuses = [noisy.push(client_id=None).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    assert quiet.push(client_id=None).status_code == 201  # same address, another app: its own count


@pytest.mark.parametrize("app_config", [{"TOKEN_REQUESTS_PER_CLIENT": "3 per minute"}])
def test_an_assertion_nested_without_end_does_not_switch_load_shedding_off(app, client):
    """Reading the unverified `sub` of `[[[[…` raised RecursionError, which the hook took for its
    storage being down: the request then skipped its sender's limit and the service-wide ceiling."""
    import base64

    payload = base64.urlsafe_b64encode(b"[" * 2900).decode().rstrip("=")
    data = {"grant_type": "authorization_code", "client_assertion": f"e30.{payload}.x",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    statuses = [client.post("/amami/oauth/token", data=data).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429], statuses
