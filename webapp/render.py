"""Page-or-partial rendering and redirects that work for htmx and for plain forms alike.

A page `dir/x.html` includes its partial `dir/partials/x.html`; a browser gets the page, an htmx
request that is not boosted gets the partial only (Canaille's render_htmx_template), so a view
names one template. Either way the union's override is used when it has one, and the answer says
`Vary: HX-Request`.
"""
from __future__ import annotations

import posixpath

from flask import current_app, g, make_response, redirect, render_template, request


def is_htmx() -> bool:
    """An htmx request that swaps part of the page (a boosted one wants the whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def partial_of(page: str) -> str:
    """`flow/account.html` → `flow/partials/account.html`; `notice.html` → `partials/notice.html`."""
    folder, name = posixpath.split(page)
    return posixpath.join(folder, "partials", name)


def render_page(page: str, status: int = 200, *, partial: str | None = None, **context):
    """The page for a browser; for htmx its partial (`partial_of(page)` unless `partial` is given)."""
    return render_exact((partial or partial_of(page)) if is_htmx() else page, status, **context)


def render_exact(name: str, status: int = 200, **context):
    """Template `name` itself, htmx or not: a polled status area (no page of its own), a page with no
    partial."""
    response = make_response(render_template(themed(name), **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def themed(name: str) -> str:
    """The current union's override of template `name` if it has one, else `name` itself.

    Found once per (union, name) and kept: a miss costs Jinja a loader search (a stat and an
    exception) each time, four or five times a page. Not kept while templates auto-reload (debug),
    so a new override shows at once there."""
    tenant = getattr(g, "tenant", None)
    if tenant is None:
        return name
    env = current_app.jinja_env
    if env.auto_reload:
        return env.select_template(tenant.templates(name)).name
    found = current_app.extensions.setdefault("themed_templates", {})
    key = (tenant.id, name)
    resolved = found.get(key)
    if resolved is None:
        resolved = found[key] = env.select_template(tenant.templates(name)).name
    return resolved


def go(url: str):
    """POST/redirect/GET: a 303 for a browser, HX-Redirect for htmx (a full page load)."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)
