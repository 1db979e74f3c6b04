"""Which core banking answers `core()`: chosen once, when the app is made."""
from __future__ import annotations

from flask import Flask

from .sandbox import SandboxCoreBanking


def init_app(app: Flask) -> None:
    """The union's gateway when `CORE_BANKING_URL` is set (gateway.py), else the sandbox tables."""
    if app.config.get("CORE_BANKING_URL"):
        # Imported here: the gateway brings requests (~70 modules) that a sandbox worker never uses.
        from .gateway import DEFAULT_TIMEOUT_SECONDS, GatewayCoreBanking

        implementation = GatewayCoreBanking(
            app.config["CORE_BANKING_URL"],
            timeout=float(app.config.get("CORE_BANKING_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
            token=app.config.get("CORE_BANKING_TOKEN"))
    else:
        implementation = SandboxCoreBanking()
    app.extensions.setdefault("core_banking", implementation)
