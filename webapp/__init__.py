"""Renkei: API連携認証 for credit unions. `create_app()` wires; it does no work of its own."""
from __future__ import annotations

import os

from flask import Flask, Response


class RenkeiResponse(Response):
    """Flask's Response, sent with its own headers where Werkzeug's copy of them would change nothing.

    Werkzeug's `get_wsgi_headers` copies every header of every response into a new `Headers`,
    checking each value for newlines again (as `add` and `set` did when it was put there), so that
    it can rewrite Location and Content-Location as URIs, drop Content-Length from a 1xx or 204,
    drop a 304's entity headers, or count a body that has no Content-Length. A response that needs
    none of those, which is nearly every response here (each body is set whole, and Flask counts it
    then), is sent with its own headers, read once: the copy was ~1 µs a header, some twenty headers
    a response (bench/README, round 26). Any of them needed: Werkzeug's own, unchanged.
    tests/test_request_pipeline.py compares the two on every kind of response."""

    def get_wsgi_headers(self, environ):
        headers = self.headers
        status = self.status_code
        if status >= 200 and status not in (204, 304):
            counted = False
            for key, _ in headers:
                name = key.lower()
                if name == "content-length":
                    counted = True
                elif name == "location" or name == "content-location":
                    break
            else:
                if counted or not (self.automatically_set_content_length and self.is_sequence):
                    return headers
        return super().get_wsgi_headers(environ)


class Renkei(Flask):
    """Flask, minus a per-request cost of its own.

    Flask passes every hook, view and context processor through `ensure_sync` on every request
    (about twenty a request), and that asks `inspect.iscoroutinefunction` each time: ~150 Python
    calls of the ④ poll's ~3,100. None of ours is a coroutine, and whether a function is one never
    changes, so the answer is kept per function (a coroutine function still goes through
    `async_to_sync`, each time, as in Flask)."""

    response_class = RenkeiResponse

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._plain_functions: set = set()

    def ensure_sync(self, func):
        try:
            if func in self._plain_functions:
                return func
        except TypeError:  # an unhashable callable: ask every time
            return super().ensure_sync(func)
        synced = super().ensure_sync(func)
        if synced is func:
            self._plain_functions.add(func)
        return synced


def create_app(test_config: dict | None = None) -> Flask:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Renkei(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)

    from . import config
    config.load(app, test_config)

    from . import models  # noqa: F401  (the registry: every table on SQLModel.metadata, for db.create_all)

    from . import assets, callauth, cli, db, errors, security, shedding, tenants, web
    from .corebanking import wiring as corebanking
    from .mail import wiring as mail_transport
    from .extensions import compress, csrf, limiter, mail

    db.init_app(app)
    tenants.init_app(app)
    corebanking.init_app(app)
    callauth.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    shedding.init_app(app)
    mail.init_app(app)
    mail_transport.init_app(app)
    compress.init_app(app)
    security.init_app(app)
    assets.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    cli.init_app(app)

    from . import health, logs, metrics  # what operators watch: /readyz, JSON logs, /metrics
    health.init_app(app)
    logs.init_app(app)
    metrics.init_app(app)
    return app
