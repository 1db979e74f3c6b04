"""Which mail transport sends the outbox, chosen once when the app is made; the courier sending what requests kick."""
from __future__ import annotations

import functools

from flask import Flask

from .courier import Courier
from .sandbox import SandboxTransport
from .sender import send_quietly
from .smtp import TIMEOUT_SECONDS, SmtpTransport


def init_app(app: Flask) -> None:
    """Nothing leaves the process with `MAIL_SUPPRESS_SEND` (sandbox.py), else SMTP (smtp.py) with
    Flask-Mail's settings, which create_app binds to the app."""
    if app.config.get("MAIL_SUPPRESS_SEND"):
        implementation = SandboxTransport()
    else:
        implementation = SmtpTransport(
            lambda: app.extensions["mail"],
            lambda: float(app.config.get("MAIL_TIMEOUT_SECONDS", TIMEOUT_SECONDS)))
    app.extensions.setdefault("mail_transport", implementation)
    app.extensions["mail_courier"] = Courier(functools.partial(send_quietly, app))
