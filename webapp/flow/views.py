"""The customer flow blueprint: one module per screen, all under /{tenant}/flow/."""
from __future__ import annotations

from flask import Blueprint, g

from .. import service_hours, tenants
from ..errors import render_notice
from .. import messages

bp = Blueprint("flow", __name__, url_prefix="/<tenant>/flow")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)


@bp.before_request
def refuse_outside_service_hours():
    window = service_hours.maintenance_window_at(service_hours.rules_for(g.tenant))
    if window is not None:
        return render_notice(messages.MAINTENANCE, 503)


from . import account, customer, phone, call, pin, consent, cancel  # noqa: E402,F401  (routes on bp)
