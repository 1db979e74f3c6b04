"""Pages outside the flow: each union's FAQ (よくあるご質問) with its service hours."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, render_template

from . import assets, maintenance, messages, service_hours, tenants
from .render import themed

bp = Blueprint("pages", __name__, url_prefix="/<tenant>")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)


@bp.route("/faq")
def faq():
    locked_advice = g.tenant.faq.get("locked_advice") or None
    identity_errors = [*messages.IDENTITY_ERRORS[:-1], (*messages.IDENTITY_ERRORS[-1][:2], locked_advice)]
    return render_template(themed("faq.html"), screen_id=None,
                           service_hours=service_hours.describe(maintenance.rules_for(g.tenant)),
                           identity_errors=identity_errors, service_errors=messages.SERVICE_ERRORS)


@bp.route("/theme.<version>.css")
def theme_css(version: str):
    """The union's colours at a URL named by their content (Tenant.theme_version): cached for a year."""
    if version != g.tenant.theme_version:
        abort(404)
    response = current_app.response_class(g.tenant.theme_css, mimetype="text/css")
    response.headers["Cache-Control"] = f"public, max-age={assets.ONE_YEAR}, immutable"
    return response


def healthz():
    """A bare route for load balancers (and the API benchmark's baseline): no tenant, no database."""
    return "ok"


@bp.record_once
def _register_healthz(state) -> None:
    state.app.add_url_rule("/healthz", "healthz", healthz)
