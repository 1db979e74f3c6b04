"""Page-or-partial rendering and redirects that work for htmx and for plain forms alike."""
from __future__ import annotations

from flask import g, make_response, redirect, render_template, request


def is_htmx() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def screen(name: str, partial: str, status: int = 200, **context):
    """Full page `flow/<name>.html` for a browser, its `flow/partials/<partial>.html` for htmx."""
    template = f"flow/partials/{partial}.html" if is_htmx() else f"flow/{name}.html"
    response = make_response(render_template(g.tenant.templates(template), **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def go(url: str):
    """POST/redirect/GET: a 303 for a browser, HX-Redirect for htmx (a full page load)."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)
