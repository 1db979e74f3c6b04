"""No input makes a server error: Hypothesis drives the real app through the test client.

Every form field of ① ② ⑤ ⑥, the authorization request's query, the token, revocation and
introspection forms and their Authorization header, the account API's query parameters (with a good
token) and the telephony webhook (signed, so it is read, and unsigned) get arbitrary text: huge
numbers, NUL, any non-surrogate unicode, very long strings, full-width digits, bytes that are not
UTF-8, the valid value grown or cut, fields left out or sent twice, fields nobody asked for. Each
field is also often sent with its valid value, so the examples reach past the first check. CSRF
stays on: the token is read from a served page (and is itself one of the fuzzed fields).

- On SQLite (the `app` fixture): the screens one field at a time (~20 examples a field) and whole
  forms; the OAuth endpoints, the API and the webhook with whole forms.
- On PostgreSQL, the production engine, which refuses what SQLite stores (NUL in text, even in a
  WHERE; strings past a VARCHAR): every field of every surface, one at a time.

Whatever comes in, every answer is below 500 and the log carries no ERROR line and no traceback
(the app's catch-all handler logs an incident with its traceback and answers 500). A failure
shows what was sent. `--hypothesis-show-statistics` shows how far the examples got (HTTP codes).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from sqlalchemy import delete, update
from sqlmodel import Session
from werkzeug.datastructures import MultiDict

from conftest import DEMO, FlowActions, add_account
from test_api_support import ApiActions, update_row
from test_callauth_support import PHONE_E164, WEBHOOK, e164, pool_number_on, provider_params, to_call_screen
from test_oauth_support import CHALLENGE, VERIFIER, authorized, basic, latest_flow
from webapp import clock, db, lockout
from webapp.api import keys
from webapp.callauth import service, twilio
from webapp.flow.models import Flow
from webapp.oauth.models import Token, secret_hash

# Bounded, so the whole module stays well under a minute. The app and its database are made once per
# test and shared by its examples (each example first puts back what it needs: see park()).
fuzz = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def app_config():
    # One client posting at full speed: without this the per-address and service-wide limits would
    # answer 429 after a few dozen examples and hide everything behind them.
    return {"IDENTITY_CHECKS_PER_IP": "1000000 per minute", "GLOBAL_REQUEST_LIMIT": "1000000 per second",
            "API_RATE_LIMIT": "1000000 per minute", "API_AUTH_FAILURES_PER_IP": "1000000 per minute"}


# --- what gets sent -------------------------------------------------------------------------------

class _Valid:
    def __repr__(self):
        return "VALID"


VALID = _Valid()  # stands for the field's valid value, known only once the app runs

NASTY = ["", " ", "\x00", "0", "-1", "99999999999999999999", "1e999", "NaN", "-0", "0x1F", "１２３", "１１５",
         "٣٤٥", "𝟗𝟗", "Ⅻ", "\u200b", "\ufeff", "'\"<>&;", "%00", "%ff", "../", "{{7*7}}", "\r\n", "\t",
         "ﾃﾞｰﾀ ﾀﾛｳ", "ｱ" * 49, "😀", "a@b", "@", "00000000000000000000000001", "1980-02-30", "9999-12-31",
         "0000-00-00", "2026-11-18", "true", "null", "[]", "Basic", "Bearer"]

any_text = st.text(st.characters(codec="utf-8"), max_size=30)  # every code point but lone surrogates

values = st.one_of(
    st.sampled_from(NASTY),
    any_text,
    st.integers().map(str),  # any number, negative too
    st.one_of(st.integers(min_value=2**31), st.integers(max_value=-2**31 - 1)).map(str),  # past a C int
    st.text("0123456789０１２３４５６７８９-ー－ ", max_size=12),  # digits as typed on a Japanese keyboard
    st.tuples(st.sampled_from(["9", "ｱ", "a", "日", "\x00", "%"]), st.integers(65, 20_000)).map(lambda p: p[0] * p[1]),
)


_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


@dataclasses.dataclass(frozen=True)
class Mutated:
    """The field's valid value, changed the way a typo, a keyboard or a tamperer changes it."""

    how: str
    n: int

    def of(self, valid: str) -> str:
        return {"grown": valid + "9" * self.n,  # a number past any limit: "01999999999999"
                "negative": "-" + valid,
                "full_width": valid.translate(_FULL_WIDTH),
                "padded": " " * self.n + valid + "\u3000",
                "repeated": valid * self.n,
                "cut": valid[:self.n],
                "nul": valid + "\x00"}[self.how]


mutated = st.builds(Mutated, st.sampled_from(["grown", "negative", "full_width", "padded", "repeated", "cut", "nul"]),
                    st.integers(1, 30))

# How a field is sent: mostly valid, so an example gets past the first check and reaches the next,
# shrinking towards "valid" (a failure is reported with only the fields that matter changed).
SHAPES = ["valid"] * 5 + ["fuzzed"] * 2 + ["mutated"] * 2 + ["missing", "repeated"]
MOSTLY_VALID = ["valid"] * 8 + ["fuzzed", "missing", "repeated"]  # CSRF token, client id, …
CHANGED = ["fuzzed", "mutated", "missing", "repeated"]


def value_of(raw: bool):
    """Anything; with `raw` also bytes that are not UTF-8 (sent percent-encoded as they are)."""
    return st.one_of(values, st.binary(max_size=20)) if raw else values


def field(name: str, shapes: list[str], raw: bool = False, values=None):
    """One field as (name, value) pairs: VALID, anything, the valid value mutated, left out, or sent
    several times."""
    value = value_of(raw) if values is None else values

    def shaped(shape):
        if shape == "valid":
            return st.just([(name, VALID)])
        if shape == "fuzzed":
            return value.map(lambda v: [(name, v)])
        if shape == "mutated":
            return mutated.map(lambda m: [(name, m)])
        if shape == "missing":
            return st.just([])
        return st.lists(st.one_of(st.just(VALID), value, mutated), min_size=2, max_size=3).map(
            lambda vs: [(name, v) for v in vs])
    return st.sampled_from(shapes).flatmap(shaped)


def _flat(parts):
    return [pair for part in parts for pair in part]


def one_changed(names: tuple[str, ...], target: str, raw: bool = False, shapes=CHANGED, values=None):
    """Every field valid but `target`: its bad value is not hidden behind another field's error."""
    return st.tuples(*(field(name, shapes, raw, values) if name == target else st.just([(name, VALID)])
                       for name in names)).map(_flat)


def fields(*names: str, raw: bool = False, mostly_valid: tuple[str, ...] = ("csrf_token",)):
    """A whole form: one field changed, or several at once plus fields nobody asked for."""
    extra = st.lists(st.tuples(st.one_of(st.sampled_from(names), any_text), value_of(raw)), max_size=2)
    several = st.tuples(*(field(name, MOSTLY_VALID if name in mostly_valid else SHAPES, raw) for name in names),
                        extra).map(_flat)
    return st.one_of(st.sampled_from(names).flatmap(lambda target: one_changed(names, target, raw)), several)


def filled(pairs, valid: dict) -> list:
    """The pairs with VALID and Mutated replaced by what they stand for in this app."""
    def value(name, v):
        if v is VALID:
            return valid.get(name, "")
        return v.of(valid.get(name, "")) if isinstance(v, Mutated) else v
    return [(name, value(name, v)) for name, v in pairs]


def urlencoded(pairs) -> str:
    def enc(v):
        return quote_from_bytes(v, safe="") if isinstance(v, bytes) else quote(v, safe="")
    return "&".join(f"{enc(name)}={enc(v)}" for name, v in pairs)


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)


def basic_of(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def _authorization(shape):
    if shape == "valid":
        return st.just(VALID)  # the client's own Basic credentials
    if shape == "none":
        return st.none()
    if shape == "bytes":  # arbitrary bytes, base64'd: often not UTF-8
        return st.binary(max_size=48).map(basic_of)
    if shape == "text":  # any id and secret, percent-escapes and all
        return st.tuples(any_text, any_text).map(lambda p: basic_of(f"{p[0]}:{p[1]}".encode()))
    return st.builds(lambda scheme, gap, rest: scheme + gap + rest,  # malformed
                     st.sampled_from(["Basic", "basic", "BASIC", "Bearer", "Digest", "Negotiate", "", "Basic:"]),
                     st.sampled_from(["", " ", "  ", "\t"]), header_text)


authorization = st.sampled_from(["valid"] * 3 + ["none", "bytes", "text", "malformed"]).flatmap(_authorization)


# --- what comes back ------------------------------------------------------------------------------

def assert_handled(response, sent, caplog):
    """Below 500, and nothing in the log that says something broke. `sent`: what was sent, shown
    when it fails (with the log lines, whose traceback says where)."""
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics: how far the examples got
    broken = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert response.status_code < 500 and not broken, (
        f"HTTP {response.status_code} for {sent!r:.1500}; logged: {[f'{r.name}: {r.getMessage()}' for r in broken]}")


def park(app, step: str) -> None:
    """Stand the latest flow at `step` with the DEMO customer's entries, alive, and the account
    unlocked: every example starts on the screen under test whatever the last one did."""
    c = DEMO["amami"]
    flow = latest_flow(app)
    with app.app_context(), Session(db.engine()) as s:
        s.execute(update(Flow).where(Flow.id == flow.id).values(
            step=step, ended_at=None, outcome=None, updated_at=clock.now(), branch=c["branch"],
            account_type=c["account_type"], account_number=c["number"], name_kana=c["name_kana"],
            email="taro@example.jp", phone_e164=PHONE_E164["amami"]))
        s.execute(delete(lockout.AccountLock))
        s.commit()


# --- where it is sent: each surface is set up on an app, then sends one example ---------------------

SCREENS = {  # step → the fields of its form, besides csrf_token
    "account": ("branch", "account_type", "account_number"),  # ①
    "customer": ("name_kana", "birth_year", "birth_month", "birth_day", "phone", "email", "email_confirm"),  # ②
    "pin": ("pin",),  # ⑤
    "consent": ("agree",),  # ⑥
}


def with_customers(app) -> FlowActions:
    for tenant, c in DEMO.items():
        add_account(app, tenant, **c)
    return FlowActions(app, app.test_client(), "amami")


class Screen:
    """A customer screen's form. ⑥ needs a flow of its own each time (許可する ends it); the CSRF
    token is read once from a served page, as a browser has it, and lasts the session."""

    def __init__(self, step: str):
        self.step, self.names = step, ("csrf_token", *SCREENS[step])

    def setup(self, app):
        return with_customers(app)

    def send(self, actions, pairs, htmx: bool = False):
        step = self.step
        if step == "consent" or actions.csrf is None:
            assert actions.client.get(actions.url("oauth/authorize"),
                                      query_string=actions.authorize_params(code_challenge=CHALLENGE)).status_code == 303
        park(actions.app, step)
        if actions.csrf is None:
            assert actions.get(f"flow/{step}").status_code == 200 and actions.csrf
        c = DEMO["amami"]
        form = filled(pairs, {"csrf_token": actions.csrf, "branch": c["branch"], "account_type": c["account_type"],
                              "account_number": c["number"], **actions.customer_data(), "pin": c["pin"], "agree": "y"})
        response = actions.client.post(actions.url(f"flow/{step}"), data=MultiDict(form),
                                       headers={"HX-Request": "true"} if htmx else {})
        return response, form


class Authorize:
    names = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method")
    mostly_valid = ("client_id", "redirect_uri")

    def setup(self, app):
        return with_customers(app)

    def send(self, actions, pairs):
        query = urlencoded(filled(pairs, actions.authorize_params(code_challenge=CHALLENGE)))
        return actions.client.get(actions.url("oauth/authorize"), query_string=query), query


class ClientAuthenticated:
    """The token, revocation or introspection endpoint: a form and an Authorization header."""

    names = ("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "token",
             "token_type_hint", "client_id", "client_secret")
    mostly_valid = ("grant_type",)

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def setup(self, app):
        actions = with_customers(app)
        creds = actions.oauth_client
        grant = ApiActions(app, actions.client, "amami", client_id=creds["client_id"]).grant
        refresh_token = "refresh-" + grant["token"]
        update_row(app, Token, grant["token_id"], refresh_token_hash=secret_hash(refresh_token),
                   refresh_expires_at=clock.now() + dt.timedelta(days=30))
        code = authorized(actions)["code"]  # good once; then a replay, which revokes what it gave
        return actions, {"code": code, "redirect_uri": "https://app.example/cb", "code_verifier": VERIFIER,
                         "refresh_token": refresh_token, "scope": "accounts", "token": grant["token"],
                         "token_type_hint": "access_token", "client_id": creds["client_id"],
                         "client_secret": creds["client_secret"],
                         "Authorization": basic(creds["client_id"], creds["client_secret"])["Authorization"]}

    def send(self, ctx, pairs, auth=VALID, grant_type="authorization_code"):
        actions, valid = ctx
        valid = dict(valid, grant_type=grant_type)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth is not None:
            headers["Authorization"] = valid["Authorization"] if auth is VALID else auth
        body = urlencoded(filled(pairs, valid))
        return actions.client.post(actions.url(f"oauth/{self.endpoint}"), data=body, headers=headers), (headers, body)


class AccountApi:
    """The account API's query parameters, with a good token."""

    names = ("accountId", "dateFrom", "dateTo", "nextItemKey")
    mostly_valid = ()

    def setup(self, app):
        actions = with_customers(app)
        api = ApiActions(app, actions.client, "amami")
        account_id = api.account_id()
        with app.app_context():
            next_key = keys.encode_next("amami", account_id, keys.PagePosition(
                dt.date(2026, 9, 1), dt.date(2026, 11, 18), (dt.date(2026, 10, 1), 7)))
        return api, {"accountId": account_id, "dateFrom": "2026-09-01", "dateTo": "2026-11-18",
                     "nextItemKey": next_key}

    def send(self, ctx, pairs, path="accounts/transactions", interaction=None):
        api, valid = ctx
        headers = {"Authorization": f"Bearer {api.token}"}
        if interaction is not None:
            headers["x-fapi-interaction-id"] = interaction
        query = urlencoded(filled(pairs, valid))
        return api.client.get(f"/amami/api/v1/{path}", query_string=query, headers=headers), (path, query, headers)


class Webhook:
    """The telephony webhook, with a customer waiting on ④ so a signed call can find an attempt."""

    names = ("CallSid", "AccountSid", "From", "To", "CallStatus", "Direction", "ApiVersion", "Caller")
    mostly_valid = ()

    def setup(self, app):
        actions = with_customers(app)
        page = to_call_screen(actions)
        return actions, provider_params(PHONE_E164["amami"], e164(pool_number_on(page)), Caller=PHONE_E164["amami"])

    def send(self, ctx, pairs, query="", signed=True, bad_signature=None):
        actions, valid = ctx
        params = filled(pairs, dict(valid, CallSid=service.new_call_sid()))
        url = WEBHOOK + ("?" + query if query else "")
        headers = {}
        if signed:  # exactly as the provider signs: so the post gets past the check and is read
            headers["X-Twilio-Signature"] = twilio.compute_signature(
                actions.app.config["BASE_URL"] + url, params, actions.app.config["TELEPHONY_AUTH_TOKEN"])
        elif bad_signature is not None:
            headers["X-Twilio-Signature"] = bad_signature
        response = actions.client.post(url, data=MultiDict(params), headers=headers)
        if signed:
            assert response.status_code != 403, "the signature was good: the post must be read"
        return response, (url, params, headers)


SURFACES = {**{f"screen:{step}": Screen(step) for step in SCREENS}, "authorize": Authorize(),
            **{endpoint: ClientAuthenticated(endpoint) for endpoint in ("token", "revoke", "introspect")},
            "api": AccountApi(), "webhook": Webhook()}


def _once(app, surface):
    """The surface set up on this app, once for all the examples of a test."""
    made = app.extensions.setdefault("fuzz_surfaces", {})
    if id(surface) not in made:
        made[id(surface)] = surface.setup(app)
    return made[id(surface)]


# --- the customer screens -------------------------------------------------------------------------

PER_FIELD = 20  # examples for each field of a screen when it is the one changed


@pytest.mark.parametrize("step", list(SCREENS))
def test_any_value_in_one_field_of_a_screen_never_makes_a_500(app, caplog, step):
    # One field at a time, every other one valid, so a bad value in that very field is not hidden
    # behind another's error: ~20 examples a field find e.g. a month of "99999999999999999999",
    # which a fuzz of the whole form seldom hits.
    screen = SURFACES[f"screen:{step}"]
    actions = screen.setup(app)

    @settings(fuzz, max_examples=PER_FIELD * len(screen.names))
    @given(pairs=st.sampled_from(screen.names).flatmap(lambda target: one_changed(screen.names, target)),
           htmx=st.booleans())
    def one_field_changed(pairs, htmx):
        caplog.clear()
        assert_handled(*screen.send(actions, pairs, htmx), caplog)

    one_field_changed()


@pytest.mark.parametrize("step", list(SCREENS))
@fuzz
@given(data=st.data(), htmx=st.booleans())
def test_any_form_on_a_screen_never_makes_a_500(app, caplog, step, data, htmx):
    screen = SURFACES[f"screen:{step}"]
    actions = _once(app, screen)
    pairs = data.draw(fields(*screen.names), label="form")
    caplog.clear()
    assert_handled(*screen.send(actions, pairs, htmx), caplog)


# --- OAuth ----------------------------------------------------------------------------------------

@fuzz
@given(pairs=fields(*Authorize.names, raw=True, mostly_valid=Authorize.mostly_valid))
def test_authorization_request_never_answers_500(app, caplog, pairs):
    surface = SURFACES["authorize"]
    ctx = _once(app, surface)
    caplog.clear()
    assert_handled(*surface.send(ctx, pairs), caplog)


@pytest.mark.parametrize("endpoint", ["token", "revoke", "introspect"])
@fuzz
@given(pairs=fields(*ClientAuthenticated.names, raw=True, mostly_valid=ClientAuthenticated.mostly_valid),
       auth=authorization, grant_type=st.sampled_from(["authorization_code", "refresh_token"]))
def test_token_revoke_introspect_never_answer_500(app, caplog, endpoint, pairs, auth, grant_type):
    surface = SURFACES[endpoint]
    ctx = _once(app, surface)
    caplog.clear()
    assert_handled(*surface.send(ctx, pairs, auth, grant_type), caplog)


# --- the account API ------------------------------------------------------------------------------

@fuzz
@given(path=st.sampled_from(["accounts", "accounts/balances", "accounts/transactions"]),
       pairs=fields(*AccountApi.names, raw=True), interaction=st.one_of(st.none(), header_text))
def test_account_api_never_answers_500(app, caplog, path, pairs, interaction):
    surface = SURFACES["api"]
    ctx = _once(app, surface)
    caplog.clear()
    assert_handled(*surface.send(ctx, pairs, path, interaction), caplog)


# --- the telephony webhook ------------------------------------------------------------------------

@fuzz
@given(pairs=fields(*Webhook.names), query=st.one_of(st.just(""), any_text.map(lambda q: quote(q, safe="=&"))),
       signed=st.booleans(), bad_signature=st.one_of(st.none(), header_text))
def test_telephony_webhook_never_answers_500(app, caplog, pairs, query, signed, bad_signature):
    surface = SURFACES["webhook"]
    ctx = _once(app, surface)
    caplog.clear()
    assert_handled(*surface.send(ctx, pairs, query, signed, bad_signature), caplog)


# --- what PostgreSQL refuses ----------------------------------------------------------------------

def _with_nul(text_and_place):
    text, place = text_and_place
    place %= len(text) + 1
    return text[:place] + "\x00" + text[place:]


# SQLite stores anything; PostgreSQL refuses NUL in text (even in a WHERE) and strings past a
# VARCHAR's length. Every value here is one of those.
refused_by_postgres = st.one_of(
    st.tuples(st.one_of(st.sampled_from(["", "CA" + "0" * 32, "+819011113333", "demo-amami", "accounts"]), any_text),
              st.integers(0, 40)).map(_with_nul),
    st.tuples(st.sampled_from(["9", "a", "ｱ", "日"]), st.sampled_from([17, 21, 33, 49, 65, 129, 257, 2001, 20_000]))
    .map(lambda p: p[0] * p[1]),
)
PG_PER_FIELD = 6


@pytest.mark.postgres
@pytest.mark.parametrize("name", list(SURFACES))
def test_text_postgresql_refuses_never_makes_a_500(pg_app, caplog, name):
    # Every field of every surface, one at a time, on the production engine.
    surface = SURFACES[name]
    ctx = surface.setup(pg_app)

    @settings(fuzz, max_examples=PG_PER_FIELD * len(surface.names))
    @given(pairs=st.sampled_from(surface.names).flatmap(
        lambda target: one_changed(surface.names, target, shapes=["fuzzed"], values=refused_by_postgres)))
    def one_field_refused(pairs):
        caplog.clear()
        assert_handled(*surface.send(ctx, pairs), caplog)

    one_field_refused()
