"""The work every request pays (issue 13): what was made cheaper answers exactly as before.

- Security headers are worked out once per app (extensions.Talisman): every route's headers, in
  order, are stock Flask-Talisman's, over http and https, with HSTS on and off; a view with
  Talisman options of its own still gets them, and a response that set some of those headers
  itself gets stock's too, with no name twice and its own Cache-Control or Pragma kept.
- The session's signer is built once per set of keys (web.SessionCookies): a key rotation still
  takes effect at once. The data of a cookie it verified is kept by the cookie's value: each opens
  as stock Flask opens it, a tampered one is refused, a kept one expires with the session's
  lifetime, and what one request changes is not what the next one opens.
- Flask-Limiter's hook is skipped for views without a limit, and load shedding parses its settings
  once: the limits still hold.
- A response goes out with its own headers where Werkzeug's copy of them would change nothing
  (webapp.RenkeiResponse): every kind of response sends the headers, in order, that Werkzeug's
  `get_wsgi_headers` sends, and only those that need no change skip the copy.
"""
from __future__ import annotations

import contextlib
import datetime as dt

import flask_talisman
import pytest
from flask.sessions import SecureCookieSessionInterface
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response as WerkzeugResponse

from conftest import TEST_SECRET, make_app, text_of
from test_callauth_support import poll, to_call_screen
from webapp import RenkeiResponse, extensions


@contextlib.contextmanager
def stock_talisman(app):
    """The app's hooks as stock Flask-Talisman's, with the same options, for the block."""
    ours = extensions.talisman
    stock = flask_talisman.Talisman()
    stock.__dict__.update(ours.__dict__)
    swaps = {ours._force_https: stock._force_https, ours._make_nonce: stock._make_nonce,
             ours._set_response_headers: stock._set_response_headers}
    saved = list(app.before_request_funcs[None]), list(app.after_request_funcs[None])
    app.before_request_funcs[None] = [swaps.get(f, f) for f in saved[0]]
    app.after_request_funcs[None] = [swaps.get(f, f) for f in saved[1]]
    assert app.before_request_funcs[None] != saved[0] and app.after_request_funcs[None] != saved[1]
    try:
        yield
    finally:
        app.before_request_funcs[None], app.after_request_funcs[None] = saved


def headers_of(response) -> list[tuple[str, str]]:
    """Every header in order; a cookie's value (signed with a timestamp) reduced to its attributes,
    the API's interaction id (new for each request) to its name."""
    return [(name, value.split(";", 1)[-1] if name == "Set-Cookie"
             else "-" if name.lower() == "x-fapi-interaction-id" else value)
            for name, value in response.headers.items()]


def requests_of_every_kind(actions, flow: bool) -> list:
    """(what, call) for a spread of routes and answers: screens, partials, the poll (with `flow`),
    errors, JSON."""
    c = actions.client
    screens = [
        ("call screen", lambda: actions.get("flow/call")),
        ("call screen htmx", lambda: actions.get("flow/call", headers={"HX-Request": "true"})),
        ("poll", lambda: poll(actions)),
        ("poll without htmx", lambda: c.get("/amami/flow/call/status")),
        ("a screen of another step", lambda: actions.get("flow/account")),
        ("POST without csrf", lambda: c.post("/amami/flow/call", data={})),
    ]
    return (screens if flow else []) + [
        ("healthz", lambda: c.get("/healthz")),
        ("faq http", lambda: c.get("/amami/faq", base_url="http://renkei.test")),
        ("faq https", lambda: c.get("/amami/faq", base_url="https://renkei.test")),
        ("faq forwarded https", lambda: c.get("/amami/faq", base_url="http://renkei.test",
                                              headers={"X-Forwarded-Proto": "https"})),
        ("metadata", lambda: c.get("/.well-known/oauth-authorization-server/amami")),
        ("no flow", lambda: c.get("/amami/flow/account", headers={"Cookie": ""})),
        ("unknown union", lambda: c.get("/nowhere/flow/account")),
        ("unknown path", lambda: c.get("/no/such/page")),
        ("wrong method", lambda: c.put("/healthz")),
        ("unknown static file", lambda: c.get("/static/nothing.css")),
        ("api without token", lambda: c.get("/amami/api/v1/accounts")),
        ("metrics", lambda: c.get("/metrics")),
    ]


@pytest.mark.parametrize("base_url", ["https://renkei.test", "http://renkei.test"])
def test_every_route_has_stock_talismans_headers(database_url, customers, base_url):
    from conftest import FlowActions

    app = make_app(database_url, BASE_URL=base_url)
    actions = FlowActions(app, app.test_client(), "amami")
    https = base_url.startswith("https")
    if https:  # an http BASE_URL is for development only; its authorization requests are refused
        to_call_screen(actions)
    compared = []
    for what, call in requests_of_every_kind(actions, flow=https):
        ours = call()
        with stock_talisman(app):
            stock = call()
        assert (ours.status_code, headers_of(ours)) == (stock.status_code, headers_of(stock)), what
        compared.append((what, ours.status_code))
    assert {status for _, status in compared} >= ({200, 303, 400, 401, 404, 405} if https else {200, 401, 404, 405})
    over_https = dict(requests_of_every_kind(actions, flow=False))["faq https"]()
    assert ("Strict-Transport-Security" in over_https.headers) == https


def _stream():
    yield "a"
    yield "b"


# (what, the response's arguments, whether its headers go out as they are)
RESPONSES = [
    ("a page", ("本文", 200, {"Content-Type": "text/html; charset=utf-8"}), True),
    ("an error page", ("見つかりません", 404), True),
    ("an empty 200", ("", 200), True),
    ("a stream, not counted", (_stream, 200), True),
    ("a body without its length", (["a", "bc"], 200), False),
    ("a redirect to an IRI", ("", 303, {"Location": "/amami/ﾌﾛｰ?q=ü"}), False),
    ("a lower-case location", ("", 302, {"location": "https://renkei.test/x y"}), False),
    ("a content location", ("x", 200, {"Content-Location": "/ｶﾅ"}), False),
    ("a 204 with a length", ("", 204), False),
    ("a 304 with entity headers", ("", 304, {"Content-Type": "text/plain", "Content-Language": "ja",
                                              "ETag": '"a"'}), False),
    ("an informational answer", ("", 103, {"Link": "</static/app.css>; rel=preload"}), False),
]


@pytest.mark.parametrize("what,args,as_they_are", RESPONSES, ids=[r[0] for r in RESPONSES])
def test_a_response_sends_the_headers_werkzeug_sends(app, what, args, as_they_are):
    """What goes out is what Werkzeug's copy gives, in order; a response that needs no change to
    them is sent with its own (no copy), any other through Werkzeug's own code."""
    assert app.response_class is RenkeiResponse
    environ = EnvironBuilder(path="/amami/flow/account", base_url="https://renkei.test").get_environ()
    body, rest = args[0], args[1:]
    ours, stock = (app.response_class(body() if callable(body) else body, *rest) for _ in range(2))
    sent = ours.get_wsgi_headers(environ)
    assert sent.to_wsgi_list() == WerkzeugResponse.get_wsgi_headers(stock, environ).to_wsgi_list()
    assert (sent is ours.headers) == as_they_are


def test_every_route_sends_the_headers_werkzeug_sends(database_url, customers, monkeypatch):
    from conftest import FlowActions

    app = make_app(database_url, BASE_URL="https://renkei.test")
    actions = FlowActions(app, app.test_client(), "amami")
    to_call_screen(actions)
    calls = requests_of_every_kind(actions, flow=True)
    ours = [(what, call()) for what, call in calls]
    monkeypatch.setattr(RenkeiResponse, "get_wsgi_headers", WerkzeugResponse.get_wsgi_headers)
    for (what, mine), (_, call) in zip(ours, calls):
        stock = call()
        assert (mine.status_code, headers_of(mine)) == (stock.status_code, headers_of(stock)), what


@pytest.mark.parametrize("base_url", ["https://renkei.test", "http://renkei.test"])
def test_a_response_with_headers_of_its_own_gets_stock_talismans_and_its_cache_rule(database_url, base_url):
    """Where a view set some of the headers the hooks write, each is replaced where stock replaces it
    and nothing is written twice; a view's own Cache-Control or Pragma stays."""
    app = make_app(database_url, BASE_URL=base_url)
    own = [("Referrer-Policy", "no-referrer"), ("x-frame-options", "SAMEORIGIN"),
           ("Strict-Transport-Security", "max-age=1"), ("X-Content-Type-Options", "sniff")]

    @app.route("/own-headers")
    def own_headers():
        return "own", {**dict(own), "Pragma": "private"}

    @app.route("/own-cache-rule")
    def own_cache_rule():
        return "own", {**dict(own), "Cache-Control": "max-age=60"}

    client = app.test_client()
    for path in ("/own-headers", "/own-cache-rule"):
        for forwarded in ({}, {"X-Forwarded-Proto": "https"}):
            ours = client.get(path, headers=forwarded)
            with stock_talisman(app):
                stock = client.get(path, headers=forwarded)
            assert headers_of(ours) == headers_of(stock), (path, forwarded)
            names = [name.lower() for name, _ in ours.headers]
            assert len(names) == len(set(names)), names
    assert client.get("/own-headers").headers["Cache-Control"] == "no-store"
    assert client.get("/own-headers").headers["Pragma"] == "private"
    assert client.get("/own-cache-rule").headers["Cache-Control"] == "max-age=60"
    assert "Pragma" not in client.get("/own-cache-rule").headers


def test_a_view_with_talisman_options_of_its_own_gets_them(app):
    @app.route("/framed")
    @extensions.talisman(frame_options="SAMEORIGIN")
    def framed():
        return "framed"

    client = app.test_client()
    assert client.get("/framed").headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/healthz").headers["X-Frame-Options"] == "DENY"


def test_a_changed_secret_key_applies_to_the_next_request(amami):
    amami.start()
    app = amami.app
    assert amami.get("flow/account").status_code == 200  # the flow's handle is in the signed session

    app.config["SECRET_KEY"] = TEST_SECRET + "-rotated"
    app.config["SECRET_KEY_FALLBACKS"] = [TEST_SECRET]
    assert amami.get("flow/account").status_code == 200  # the old key still accepted as a fallback
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert amami.get("flow/account").status_code == 400  # and no longer once it is dropped
    app.config["SECRET_KEY"] = TEST_SECRET
    assert amami.get("flow/account").status_code == 200  # the key that signed it


def test_shedding_still_counts_the_poll(database_url, customers):
    from conftest import FlowActions

    app = make_app(database_url, REQUESTS_PER_IP="4 per minute")
    actions = FlowActions(app, app.test_client(), "amami")
    actions.start()  # the authorization request and ①: two of the address's four a minute
    assert actions.get("flow/account").status_code == 200
    assert poll(actions).status_code != 429  # the fourth
    assert poll(actions).status_code == 429


def test_the_polls_sqlite_read_gives_what_sqlalchemy_gives(amami):
    """call._sqlite_peek (plain DB-API on SQLite) against the same statement through SQLAlchemy, for
    a waiting attempt, a confirmed one, an ended flow and no flow at all."""
    from sqlalchemy import update

    from test_callauth_support import call_from_registered_phone
    from webapp import clock, db
    from webapp.flow import call, state
    from webapp.flow.models import Flow

    page = to_call_screen(amami)
    cookie = amami.client.get_cookie(amami.app.config["SESSION_COOKIE_NAME"])

    def both():
        with amami.app.test_request_context("/amami/flow/call/status", headers={"Cookie": f"{cookie.key}={cookie.value}"}):
            engine = db.engine()
            if engine.dialect.name != "sqlite":
                pytest.skip("the plain DB-API read is SQLite's")
            parameters = {"handle_hash": state.browser_handle_hash("amami"), "tenant": "amami"}
            with engine.connect() as conn:
                expected = conn.execute(call._POLL, parameters).first()
            return call._sqlite_peek(parameters), expected

    seen = []
    for change in (lambda: None, lambda: call_from_registered_phone(amami, page), "end", "gone"):
        if change == "end":
            with amami.app.app_context(), db.engine().begin() as conn:
                conn.execute(update(Flow).values(ended_at=clock.now()))
        elif change == "gone":
            with amami.app.app_context(), db.engine().begin() as conn:
                conn.execute(update(Flow).values(handle_hash="0" * 64))
        else:
            change()
        ours, expected = both()
        assert (tuple(ours) if ours is not None else None) == (tuple(expected) if expected is not None else None)
        assert ours is None or ours._fields == tuple(expected._fields)
        seen.append(None if ours is None else (ours.state, ours.ended_at is not None))
    assert seen == [("waiting", False), ("confirmed", False), ("confirmed", True), None]


def request_with(app, value: str | None):
    """A request carrying session cookie `value` (no request context: pushing one opens its session)."""
    name = app.session_interface.get_cookie_name(app)
    return app.request_class(EnvironBuilder("/", headers={"Cookie": f"{name}={value}"} if value else {}).get_environ())


def open_with(app, value: str | None):
    """The session web.SessionCookies opens for a request carrying cookie `value`."""
    return app.session_interface.open_session(app, request_with(app, value))


def stock_open(app, value: str):
    return SecureCookieSessionInterface().open_session(app, request_with(app, value))


SESSIONS = [{"flows": {"amami": "h-1"}, "csrf_token": "0" * 40},
            {"flows": {"amami": "h-2", "maruhachi": "h-3"}, "cancelled": {"amami": 7}},
            {"demo_requests": {"state-1": {"tenant": "amami", "verifier": "v" * 43, "profile": "p"}}},
            {"when": dt.datetime(2026, 11, 18, 1, 2, 3, tzinfo=dt.timezone.utc), "raw": b"\x00\xff", "t": (1, "a")},
            {}]


def test_a_kept_session_is_the_session_flask_opens(app):
    """Opened twice (verified, then kept), each cookie gives what stock Flask's interface gives."""
    serializer = app.session_interface.get_signing_serializer(app)
    for data in SESSIONS:
        value = serializer.dumps(data)
        first, second = open_with(app, value), open_with(app, value)
        assert dict(first) == dict(second) == dict(stock_open(app, value)) == data
        assert type(first) is type(second) is app.session_interface.session_class
        assert not second.modified and not second.new
    assert dict(open_with(app, None)) == {}


def test_what_a_request_changes_in_its_session_is_not_what_the_next_one_opens(app):
    """Neither the request that verified the cookie nor one that found it kept changes what is kept."""
    data = {**SESSIONS[1], "here": "only"}  # a cookie no other test opened in this app
    value = app.session_interface.get_signing_serializer(app).dumps(data)
    for _ in range(2):
        opened = open_with(app, value)
        opened["flows"]["amami"] = "changed in place"
        opened["cancelled"].clear()
        opened["new"] = 1
    assert dict(open_with(app, value)) == data


def test_a_tampered_or_foreign_cookie_is_refused_though_a_genuine_one_is_kept(app):
    serializer = app.session_interface.get_signing_serializer(app)
    value = serializer.dumps(SESSIONS[0])
    assert dict(open_with(app, value)) == SESSIONS[0]
    payload, stamp, signature = value.rsplit(".", 2)
    forged = serializer.dumps({"flows": {"amami": "someone else's"}}).rsplit(".", 2)[0] + f".{stamp}.{signature}"
    # a character in the middle: the last one's lowest bits are base64's padding, which decoding drops
    flipped = f"{payload}.{stamp}.{signature[:5]}{'A' if signature[5] != 'A' else 'Q'}{signature[6:]}"
    for bad in (forged, flipped, value + "x"):
        assert dict(open_with(app, bad)) == {} and bad not in app.session_interface._opened


def test_a_kept_cookie_expires_with_the_session_lifetime(app, monkeypatch):
    """Counted from when the cookie was signed, as itsdangerous counts it: a kept cookie too."""
    import time

    app.permanent_session_lifetime = dt.timedelta(minutes=30)
    value = app.session_interface.get_signing_serializer(app).dumps(SESSIONS[0])
    assert dict(open_with(app, value)) == SESSIONS[0]
    assert value in app.session_interface._opened
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 29 * 60)
    assert dict(open_with(app, value)) == SESSIONS[0]
    monkeypatch.setattr(time, "time", lambda: real() + 31 * 60)
    assert dict(open_with(app, value)) == {}


def test_at_most_opened_kept_cookies_are_kept_the_oldest_dropped_first(app, monkeypatch):
    interface = app.session_interface
    monkeypatch.setattr(interface, "OPENED_KEPT", 3)
    serializer = interface.get_signing_serializer(app)
    values = [serializer.dumps({"n": n}) for n in range(5)]
    for n, value in enumerate(values):
        assert dict(open_with(app, value)) == {"n": n}
    assert list(interface._opened) == values[2:]
    assert dict(open_with(app, values[0])) == {"n": 0}  # verified again
    assert list(interface._opened) == values[3:] + values[:1]


# What the session cookie's header may look like: the fast path takes only the first (the cookie
# alone, as a customer's browser sends it here); request.cookies parses the others, as stock Flask.
COOKIE_HEADERS = ["{name}={value}", "{name}={value}; other=1", "other=1; {name}={value}", '{name}="{value}"',
                  "{name}= {value}", "{name}={value} ", " {name}={value}", "{name}x={value}", "{name}=",
                  "{name}={value}={value}", "{name}={value}; {name}=other", "{name}={value}%41", "{name}"]


def test_a_session_cookie_header_opens_as_flask_opens_it(app):
    from werkzeug.http import parse_cookie

    from webapp.web import _only_cookie

    name = app.session_interface.get_cookie_name(app)
    value = app.session_interface.get_signing_serializer(app).dumps(SESSIONS[1])
    taken = []
    for template in COOKIE_HEADERS:
        header = template.format(name=name, value=value)
        fast = _only_cookie(header, name)
        assert fast is None or fast == parse_cookie(header).get(name), header
        taken.append(fast is not None)
        environ = EnvironBuilder("/", headers={"Cookie": header}).get_environ()
        for _ in range(2):  # verified, then kept
            ours = app.session_interface.open_session(app, app.request_class(environ))
            stock = SecureCookieSessionInterface().open_session(app, app.request_class(environ))
            assert dict(ours) == dict(stock), header
    assert taken[0] and not any(taken[1:])
    assert _only_cookie(None, name) is None
    no_cookie = EnvironBuilder("/").get_environ()  # an app's API call, the provider's webhook
    assert "HTTP_COOKIE" not in no_cookie
    ours = app.session_interface.open_session(app, app.request_class(no_cookie))
    stock = SecureCookieSessionInterface().open_session(app, app.request_class(no_cookie))
    assert (type(ours), dict(ours), ours.new, ours.modified) == (type(stock), dict(stock), stock.new, stock.modified)


def saved_by(interface, app, session, vary: list[str]) -> list[tuple[str, str]]:
    response = app.response_class("x")
    for value in vary:
        response.headers.add("Vary", value)
    interface.save_session(app, session, response)
    return headers_of(response)


@pytest.mark.parametrize("vary", [[], ["HX-Request"], ["HX-Request, Accept-Encoding"], ["cookie"],
                                  ["HX-Request, Cookie"], ["Accept-Encoding,HX-Request"], ['"quoted"'], ["*"],
                                  ["HX-Request", "Accept-Encoding"]])
def test_a_saved_session_gives_stock_flasks_headers(app, vary):
    """Every way a session ends a request (opened and read, not read, changed, emptied, permanent and
    refreshed on each request or not), on each kind of Vary header: the headers stock Flask's
    interface writes, in order, the cookie's attributes included."""
    ours, stock = app.session_interface, SecureCookieSessionInterface()
    value = ours.get_signing_serializer(app).dumps(SESSIONS[0])

    # `accessed` is what the request context sets when a view reaches the session (flask.session)
    def read(s):
        s.accessed = True
        s.get("flows")

    def changed(s):
        s.accessed = True
        s["flows"] = {"amami": "h-9"}

    def emptied(s):
        s.accessed = True
        s.clear()

    def permanent(s):
        s.accessed = True
        s.permanent = True  # a change too: Flask sets `modified`
        s.modified = False

    cases = {"read": read, "not read": lambda s: None, "changed": changed, "emptied": emptied,
             "permanent": permanent}
    for refresh in (True, False):
        app.config["SESSION_REFRESH_EACH_REQUEST"] = refresh
        for what, act in cases.items():
            written = []
            for interface in (ours, stock):
                session = open_with(app, value)
                act(session)
                written.append(saved_by(interface, app, session, vary))
            assert written[0] == written[1], (what, refresh, vary)
    app.config["SESSION_REFRESH_EACH_REQUEST"] = True
