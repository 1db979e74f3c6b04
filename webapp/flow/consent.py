"""⑥ SOA206 placeholder until the consent issue lands."""
from __future__ import annotations

from .render import screen
from .state import flow_step
from .views import bp


@bp.route("/consent", methods=["GET"])
@flow_step("consent")
def consent():
    return screen("placeholder", "placeholder")
