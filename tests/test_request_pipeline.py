"""The work every request pays (issue 13): what was made cheaper answers exactly as before.

- Security headers are worked out once per app (extensions.Talisman): every route's headers, in
  order, are stock Flask-Talisman's, over http and https, with HSTS on and off; a view with
  Talisman options of its own still gets them.
- The session's signer is built once per set of keys (web.SessionCookies): a key rotation still
  takes effect at once.
- Flask-Limiter's hook is skipped for views without a limit, and load shedding parses its settings
  once: the limits still hold.
"""
from __future__ import annotations

import contextlib

import flask_talisman
import pytest

from conftest import TEST_SECRET, make_app, text_of
from test_callauth_support import poll, to_call_screen
from webapp import extensions


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
