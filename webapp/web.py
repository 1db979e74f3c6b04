"""Blueprints, template context and proxy handling."""
from __future__ import annotations

import copy
import re
import threading
import time

from flask import Flask, g
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from werkzeug.middleware.proxy_fix import ProxyFix

from . import fields, messages
from .render import frame, macros, options, themed, themes

HTMX_VERSION = "2.0.11"


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with its signer built once per set of keys, and the data of the
    cookies it verified last kept (open_session).

    Flask builds a new URLSafeTimedSerializer to open and again to save the cookie on every request,
    and itsdangerous's constructor serialises a test value to learn whether its serializer speaks
    text: ~10 % of the ④ poll's time. The serializer holds nothing of a request (it only reads its
    keys), so one per (SECRET_KEY, SECRET_KEY_FALLBACKS) serves every request; a change of either
    builds a new one, as Flask would."""

    OPENED_KEPT = 1024  # cookies whose data is kept (OPENED_KEPT of them: about 1 MB at most)

    def __init__(self) -> None:
        self._opened: dict = {}  # cookie value → (the serializer that verified it, signed at, its data)
        self._opened_lock = threading.Lock()

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = getattr(self, "_serializer", None)
        if cached is None or cached[0] != keys:
            cached = self._serializer = (keys, super().get_signing_serializer(app))
        return cached[1]

    def open_session(self, app, request):
        """Flask's open_session, with the data of a cookie already verified kept by its exact value.

        A customer waiting on ④ polls every 2 s with the same cookie (the poll changes nothing in
        the session): checking its two HMACs and decoding its tagged JSON again each time was ~8 %
        of a poll's CPU (bench/README.md, round 16). A kept entry serves only the same bytes, verified
        by the same serializer (a change of SECRET_KEY or its fallbacks builds a new one, and every
        cookie is verified again), and only within the session's lifetime counted from the time
        the cookie was signed, as itsdangerous counts it. Each request gets its own deep copy: what
        one request changes in its session is not what the next one opens. The OPENED_KEPT most
        recently verified cookies are kept, the oldest dropped first; a cookie that fails is not."""
        s = self.get_signing_serializer(app)
        if s is None:
            return None
        header = request.environ.get("HTTP_COOKIE")
        if header is None:  # no cookie at all (an app's API call, the provider's webhook): nothing to parse
            return self.session_class()
        name = self.get_cookie_name(app)
        value = _only_cookie(header, name)
        if value is None:
            value = request.cookies.get(name)
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        kept = self._opened.get(value)
        if kept is not None and kept[0] is s and time.time() - kept[1] <= max_age:
            return self.session_class(copy.deepcopy(kept[2]))
        try:
            data, signed_at = s.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        with self._opened_lock:
            while len(self._opened) >= self.OPENED_KEPT:
                del self._opened[next(iter(self._opened))]
            self._opened[value] = (s, signed_at.timestamp(), copy.deepcopy(data))
        return self.session_class(data)

    def save_session(self, app, session, response) -> None:
        """Flask's save_session. A session this answer does not save (unchanged, and not refreshed
        on every request: every screen GET and poll) only adds `Cookie` to `Vary`, which Flask does
        by parsing the header into a HeaderSet and writing it back (~4 % of a poll's instructions): here as text
        when the header is a plain list of names, the same bytes (tests/test_request_pipeline.py)."""
        if session.modified or self.should_set_cookie(app, session):
            return super().save_session(app, session, response)
        if session.accessed:
            vary_on_cookie(response)


_NAMES = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:, [!#$%&'*+.^_`|~0-9A-Za-z-]+)*")  # what HeaderSet writes


def vary_on_cookie(response) -> None:
    """`response.vary.add("Cookie")`, as text when `Vary` is absent or a list of names as werkzeug's
    HeaderSet writes it (`A, B`); any other value goes through the HeaderSet."""
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Cookie"
    elif _NAMES.fullmatch(vary):
        if "cookie" not in vary.lower().split(", "):
            response.headers["Vary"] = vary + ", Cookie"
    else:
        response.vary.add("Cookie")


_COOKIE_VALUE = re.compile(r"[0-9A-Za-z_.-]+")  # itsdangerous's signed values: base64url and dots


def _only_cookie(header: str | None, name: str) -> str | None:
    """The value of cookie `name` when the Cookie header holds that cookie alone with a value of the
    signer's characters (what a customer's browser sends here), as werkzeug would parse it; None
    when the header is anything else, and request.cookies parses it. Parsing the header into a
    MultiDict was ~1.5 % of a poll."""
    if header is None or not header.startswith(name) or header[len(name):len(name) + 1] != "=":
        return None
    value = header[len(name) + 1:]
    return value if _COOKIE_VALUE.fullmatch(value) else None


def init_app(app: Flask) -> None:
    app.session_interface = SessionCookies()
    if app.config.get("PROXY_FIX_X_FOR"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]),
                                x_proto=1, x_host=1)

    from .flow.identity import ConstantTimeAnswers
    from .flow.views import bp as flow_bp, my_bp
    from .pages import bp as pages_bp
    from .oauth.views import bp as oauth_bp, metadata_bp as oauth_metadata_bp
    from .callauth.views import bp as callauth_bp, telephony_bp
    from .api.views import bp as api_bp
    from .staff.views import bp as staff_bp

    app.wsgi_app = ConstantTimeAnswers(app.wsgi_app)
    for bp in (pages_bp, flow_bp, my_bp, oauth_bp, callauth_bp, api_bp, staff_bp):
        app.register_blueprint(bp)
    app.register_blueprint(telephony_bp)
    if app.config["SANDBOX"]:  # the demo app (/demo/) exists only in sandbox mode
        from .demo.views import bp as demo_bp
        app.register_blueprint(demo_bp)
    app.register_blueprint(oauth_metadata_bp)

    # Every customer message has one home (messages.py), every field rule one (fields.py): templates
    # and macros read them from there (a field's hint and maxlength come with its spec).
    app.jinja_env.globals["messages"] = messages
    app.jinja_env.globals["fields"] = fields
    app.jinja_env.globals["frame"] = frame
    app.jinja_env.globals["options"] = options

    @app.template_global()
    def jst(at) -> str:
        """A moment as the screens and mails show it: 2026年11月18日 14:00 (JST)."""
        from .mail.outbox import format_jst

        return format_jst(at)

    @app.template_global()
    def theme(name: str) -> str:
        """The union's override of template `name` if it has one, else `name` itself."""
        return themed(name)

    @app.context_processor
    def brand():
        tenant = getattr(g, "tenant", None)
        return {"tenant": tenant, "theme": themes(tenant).__getitem__, "macros": macros(app), "htmx_version": HTMX_VERSION,
                "sandbox": app.config["SANDBOX"], "screen_id": g.get("screen_id"),
                "title": g.get("screen_title", "")}
