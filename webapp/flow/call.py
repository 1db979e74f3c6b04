"""④ SOA209 placeholder until call authentication lands."""
from __future__ import annotations

from .render import screen
from .state import flow_step
from .views import bp


@bp.route("/call", methods=["GET"])
@flow_step("call")
def call():
    return screen("placeholder", "placeholder")
