"""gunicorn's logs: the error log as JSON lines (webapp/logs.py), shared with the app's own loggers,
and the access log without credentials: a token, code or secret sent in a URL's query (which
the product refuses, but the server logs before the app answers) is written as `[redacted]`.

gunicorn loads `gunicorn.conf.py` from the working directory, which names this logger, so every
way the product is served (Procfile, `make demo`, the browser tests, the benchmarks) uses it.
"""
from __future__ import annotations

import re
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

# Query parameters that carry a credential in OAuth 2.0, FAPI and this product's forms.
SENSITIVE = frozenset({
    "access_token", "refresh_token", "token", "code", "code_verifier", "client_secret", "client_assertion",
    "assertion", "id_token", "request", "password", "pin", "otp", "secret",
})
REDACTED = "[redacted]"
_PAIR = re.compile(r"([^&=;?#\s]+)=([^&;#\s]*)")
# Atoms of the request line, query, referer and headers that may hold a URL or a credential.
_URL_ATOMS = ("r", "q", "f", "{referer}i", "{raw_uri}e", "{query_string}e", "{http_referer}e")
_SECRET_ATOMS = ("{authorization}i", "{cookie}i", "{http_authorization}e", "{http_cookie}e")


def redact(text: str) -> str:
    """`text` (a URL, a query or a request line) with the value of every sensitive parameter replaced."""
    def replace(m: re.Match) -> str:
        return f"{m.group(1)}={REDACTED}" if unquote_plus(m.group(1)).lower() in SENSITIVE else m.group(0)

    return _PAIR.sub(replace, text)


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        from .logs import JsonFormatter, configure_root

        # gunicorn's error log writes JSON lines, and the app's loggers (root) write to the same place
        # (stderr or --error-logfile) at gunicorn's --log-level, in the master and every worker.
        handlers = [h for h in self.error_log.handlers if getattr(h, "_gunicorn", False)]
        for handler in handlers:
            handler.setFormatter(JsonFormatter())
        if handlers:
            configure_root(self.loglevel, handlers)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in _URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        for name in _SECRET_ATOMS:
            if name in atoms:
                atoms[name] = REDACTED
        return atoms
