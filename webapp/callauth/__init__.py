"""Incoming-call authentication (着信認証): service.py holds the rule, telephony.py the provider's
interface, twilio.py and sandbox.py its two implementations, views.py the provider's webhook."""
from __future__ import annotations

from flask import Flask, current_app

from .telephony import Telephony


def provider() -> Telephony:
    """The telephony provider of this app (the rest of the code never knows which one)."""
    return current_app.extensions["telephony"]


def init_app(app: Flask) -> None:
    """Sandbox mode's provider (it can also simulate calls) when `SANDBOX`, else the real one.
    Both read TELEPHONY_AUTH_TOKEN (and BASE_URL) from the configuration at each call."""
    from .sandbox import SandboxTelephony
    from .twilio import TwilioTelephony

    config = app.config
    if config["SANDBOX"]:
        implementation = SandboxTelephony(lambda: config.get("TELEPHONY_AUTH_TOKEN"), lambda: config["BASE_URL"])
    else:
        implementation = TwilioTelephony(lambda: config.get("TELEPHONY_AUTH_TOKEN"))
    app.extensions.setdefault("telephony", implementation)
