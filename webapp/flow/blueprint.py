"""The customer flow blueprint, all under /{tenant}/flow/. Each screen module adds its routes to
`bp`; flow/views.py gathers them."""
from __future__ import annotations

from flask import Blueprint, g

from .. import maintenance, messages, service_hours, tenants
from ..errors import render_notice

bp = Blueprint("flow", __name__, url_prefix="/<tenant>/flow")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)


@bp.before_request
def refuse_outside_service_hours():
    window = service_hours.maintenance_window_at(maintenance.rules_for(g.tenant))
    if window is not None:
        return render_notice(messages.MAINTENANCE, 503)
