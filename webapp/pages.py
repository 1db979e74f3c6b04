"""Pages outside the flow: each union's FAQ (よくあるご質問) with its service hours."""
from __future__ import annotations

import re

from flask import Blueprint, current_app, g, render_template

from . import service_hours, tenants

bp = Blueprint("pages", __name__, url_prefix="/<tenant>")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)


@bp.route("/faq")
def faq():
    return render_template(g.tenant.templates("faq.html"), screen_id=None,
                           service_hours=service_hours.describe(g.tenant.maintenance))


@bp.route("/theme.css")
def theme_css():
    """The union's colours as CSS variables (configuration, not code; no inline styles under our CSP)."""
    theme = g.tenant.theme
    css = (":root{"
           f"--primary:{_colour(theme.get('primary'), '#1a5fb4')};"
           f"--primary-text:{_colour(theme.get('primary_text'), '#ffffff')};"
           "}\n")
    response = current_app.response_class(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _colour(value, default: str) -> str:
    return value if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{3,8}", value) else default


def healthz():
    """A bare route for load balancers (and the API benchmark's baseline): no tenant, no database."""
    return "ok"


@bp.record_once
def _register_healthz(state) -> None:
    state.app.add_url_rule("/healthz", "healthz", healthz)
