"""HTTP security headers (Flask-Talisman) and cache rules.

CSP has no inline script and `object-src 'none'`; `frame-ancestors 'none'` stops clickjacking of
the consent screen; HSTS for a year when served over https; nothing of a flow is cached.

Referrer-Policy is `same-origin`, not `no-referrer`: on https Flask-WTF's CSRF check
(WTF_CSRF_SSL_STRICT) refuses a POST without a `Referer` from our own origin, and under
`no-referrer` browsers send none, so no form could be submitted. `same-origin` sends the Referer
back to us only; another origin (the fintech app's redirect URI, the union's terms page) still
gets none.
"""
from __future__ import annotations

from flask import Flask, request

from .extensions import talisman

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}


def init_app(app: Flask) -> None:
    https = app.config["BASE_URL"].startswith("https://")
    talisman.init_app(
        app,
        force_https=False,  # TLS ends at the load balancer; HSTS below tells browsers to stay on https
        strict_transport_security=https,
        strict_transport_security_max_age=31536000,
        strict_transport_security_include_subdomains=True,
        content_security_policy=CSP,
        frame_options="DENY",
        referrer_policy="same-origin",  # see the module docstring: CSRF on https needs it
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        x_content_type_options=True,
    )

    @app.after_request
    def _no_store(response):
        headers = response.headers
        present = {name.lower() for name, _ in headers}  # one pass, where `in` and setdefault scan each
        if "cache-control" not in present and request._get_current_object().endpoint != "static":
            headers.add("Cache-Control", "no-store")
            if "pragma" not in present:
                headers.add("Pragma", "no-cache")
        return response
