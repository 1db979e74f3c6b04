"""Renkei: API連携認証 for credit unions. `create_app()` wires; it does no work of its own."""
from __future__ import annotations

import os

from flask import Flask


class Renkei(Flask):
    """Flask, minus a per-request cost of its own.

    Flask passes every hook, view and context processor through `ensure_sync` on every request
    (about twenty a request), and that asks `inspect.iscoroutinefunction` each time: ~150 Python
    calls of the ④ poll's ~3,100. None of ours is a coroutine, and whether a function is one never
    changes, so the answer is kept per function (a coroutine function still goes through
    `async_to_sync`, each time, as in Flask)."""

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
