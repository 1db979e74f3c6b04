"""The customer flow blueprint, all under /{tenant}/flow/, and the customer's own pages under
/{tenant}/my/ (連携中のアプリ, reached through the same flow). Each screen module adds its routes to
`bp` or `my_bp`; flow/views.py gathers them."""
from __future__ import annotations

from flask import Blueprint, g, request, url_for

from .. import maintenance, messages, service_hours, tenants
from ..errors import render_notice
from . import state
from .models import LINKS

bp = Blueprint("flow", __name__, url_prefix="/<tenant>/flow")
my_bp = Blueprint("my", __name__, url_prefix="/<tenant>/my")
for blueprint in (bp, my_bp):
    blueprint.url_value_preprocessor(tenants.pull_tenant)
    blueprint.url_defaults(tenants.add_tenant)


# Inside a window a customer can still leave: 中止する, and the notice's own 連携元画面へ.
_OPEN_IN_MAINTENANCE = {"flow.cancel", "flow.cancelled", "flow.leave"}


@bp.before_request
@my_bp.before_request
def refuse_outside_service_hours():
    window = maintenance.window_now(g._get_current_object().tenant)  # every screen and poll: no proxy lookup
    if window is not None and request.endpoint not in _OPEN_IN_MAINTENANCE:
        return render_notice(messages.MAINTENANCE, 503, resumes=service_hours.resumes_text(window),
                             leave=_way_back_to_the_app())


def _way_back_to_the_app() -> str | None:
    """連携元画面へ on the notice: only a flow an app started has an app to go back to."""
    if request.blueprint == my_bp.name:
        return None
    flow = state.load()
    return None if flow is not None and flow.purpose == LINKS else url_for("flow.leave")
