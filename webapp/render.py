"""Page-or-partial rendering and redirects that work for htmx and for plain forms alike.

A page `dir/x.html` includes its partial `dir/partials/x.html`; a browser gets the page, an htmx
request that is not boosted gets the partial only (Canaille's render_htmx_template), so a view
names one template. Either way the union's override is used when it has one, and the answer says
`Vary: HX-Request`.
"""
from __future__ import annotations

import functools
import posixpath
from typing import Callable, NamedTuple

from flask import current_app, g, has_request_context, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from .tenants import themes


def is_htmx() -> bool:
    """An htmx request that swaps part of the page (a boosted one wants the whole page)."""
    headers = request._get_current_object().headers  # one context lookup: every screen and poll asks
    return bool(headers.get("HX-Request")) and not headers.get("HX-Boosted")


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
    return _answer(render_template(themed(name), **context), status)


def _answer(body: str, status: int = 200):
    """The response Flask's make_response builds from a str body and a status, made directly."""
    response = current_app._get_current_object().response_class(body, status)
    response.headers["Vary"] = "HX-Request"
    return response


def _hole(name: str) -> str:
    """Where a kept page takes a request's own value: no template writes a NUL, and none survives
    render_blank (tests/test_blank_pages.py)."""
    return f"\x00{name}\x00"


CSRF_HOLE = _hole("csrf_token")


def render_blank(page: str, form: Callable[[], object], *, vary: tuple = (), text: dict | None = None,
                 late: Callable[[], dict] | None = None, **context):
    """A screen before the customer has typed anything (render_page's page or partial): the same for
    every customer of a union but for the CSRF token and the `text` values, so rendered once and kept;
    each answer is the kept page with this request's token and values in it.

    Each customer sees each screen once, and it is the same page for all of them: rendering it (the
    layout, the macros, the form's binding) was three tenths of a screen's cost (bench/README.md,
    round 15). What the page depends on is its key: the template (the union's override, page or
    partial), the union, the script root, `vary` (e.g. the client's id and operator, which ① and ⑥
    name) and the names of the `text` values. The rest of `context` must be the same for every
    request with the same key.

    :param form: builds the screen's blank form; called only when the page is rendered.
    :param text: the values that differ from customer to customer (a masked phone, an account
        number). The template must write each only as text (no test, no filter on it): the kept page
        holds a marker where each goes, replaced by the value, escaped as Jinja escapes it.
    :param late: builds more of the context (as `context`, the same for every request with the same
        key); called only when the page is rendered, so a kept page's answer does not work it out.

    A page is not kept while templates auto-reload (debug), so an edit to one shows at once there;
    it is rendered with the values themselves. The kept page never holds a customer's value, nor a
    token: both are put in after."""
    return render_kept(partial_of(page) if is_htmx() else page, form, vary=vary, text=text, late=late, **context)


def render_kept(name: str, form: Callable[[], object] | None = None, *, vary: tuple = (), text: dict | None = None,
                late: Callable[[], dict] | None = None, **context):
    """render_blank for template `name` itself, htmx or not (render_exact's): ④'s polled status area
    while the call is awaited. Without `form` the answer has no CSRF token, and asks for none (a poll
    does not give the session one)."""
    name = themed(name)
    text = text or {}
    app = current_app._get_current_object()  # one context lookup for the app, the request and g
    if app.jinja_env.auto_reload:
        return _answer(render_template(name, **({"form": form()} if form else {}), **text, **context,
                                       **(late() if late else {})))
    tenant = getattr(g._get_current_object(), "tenant", None)
    key = (name, tenant.id if tenant is not None else None, request._get_current_object().script_root, vary,
           tuple(text))
    kept = app.extensions.setdefault("blank_pages", {})
    blank = kept.get(key)
    token = generate_csrf() if form else None
    if blank is None:
        body = render_template(name, **({"form": form()} if form else {}), **{k: Markup(_hole(k)) for k in text},
                               **context, **(late() if late else {}))
        blank = kept[key] = body.replace(token, CSRF_HOLE) if token else body
    body = blank.replace(CSRF_HOLE, token) if token else blank
    for k, value in text.items():
        body = body.replace(_hole(k), escape(value))
    return _answer(body)


def themed(name: str) -> str:
    """The current union's override of template `name` if it has one, else `name` itself."""
    return themes(getattr(g, "tenant", None))[name]


def macros(app):
    """templates/macros.html as a module (its macros as attributes), made once per app.

    The same module `{% from 'macros.html' import … %}` gives (imported without context, Jinja's
    `Template.module`), but Jinja checks on every such import whether the importing context has
    globals the module lacks (a set difference against a ChainMap, ~135 function calls), on every
    screen. Templates take their macros from this one instead: `{% set csrf = macros.csrf %}`. Not
    kept while templates auto-reload (debug), so an edit to the macros shows at once there."""
    kept = app.extensions.get("macros_module")
    if kept is None:
        env = app.jinja_env
        kept = env.get_template("macros.html").module
        if not env.auto_reload:
            app.extensions["macros_module"] = kept
    return kept


class Frame(NamedTuple):
    """The URLs of a page's frame (base.html's head and brand, the footer's FAQ link); "" where the
    page has no union."""

    stylesheet: str
    htmx: str
    script: str
    theme: str = ""
    logo: str = ""
    faq: str = ""


def frame(tenant, htmx_version: str) -> Frame:
    """The frame's URLs for `tenant` (or None), built once per (union, script root) and kept.

    They depend on nothing else: static names are fixed at start-up (assets.py), the theme's
    version is its content's, and the URLs are paths under the script root. Seven url_for calls
    (a URL map build each) on every page were a tenth of its rendering."""
    key = (tenant.id if tenant else None, htmx_version, request.script_root if has_request_context() else None)
    kept = current_app.extensions.setdefault("page_frames", {})
    found = kept.get(key)
    if found is None:
        found = Frame(
            stylesheet=url_for("static", filename="app.css"),
            htmx=url_for("static", filename=f"htmx-{htmx_version}.min.js"),
            script=url_for("static", filename="screens.js"),
            **({} if tenant is None else {
                "theme": url_for("pages.theme_css", tenant=tenant.id, version=tenant.theme_version),
                "logo": url_for("static", filename=tenant.theme["logo"]),
                "faq": url_for("pages.faq", tenant=tenant.id)}))
        if key[2] is not None:
            kept[key] = found
    return found


def options(choices, chosen) -> Markup:
    """A select's `<option>` tags, the one whose value is `chosen` selected (a template global).

    The same tags as a Jinja loop writes them, worked out once per (choices, chosen) and kept: a
    loop pays an attribute lookup and an escape per value and label, and ②'s date selects have 45
    options. A `chosen` that is no choice's value (a request can send anything) selects none and
    is kept as such, so what is kept stays bounded by the choice lists."""
    pairs = tuple([(c.value, c.label) for c in choices])
    return _option_tags(pairs, chosen if chosen in [value for value, _ in pairs] else _NONE_CHOSEN)


_NONE_CHOSEN = object()


@functools.lru_cache(maxsize=256)
def _option_tags(pairs: tuple, chosen) -> Markup:
    return Markup("".join(f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>{escape(label)}</option>'
                          for value, label in pairs))


def go(url: str):
    """POST/redirect/GET: a 303 for a browser, HX-Redirect for htmx (a full page load)."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)
