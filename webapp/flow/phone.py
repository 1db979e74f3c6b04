"""③ SOA208 placeholder until call authentication lands."""
from __future__ import annotations

from .render import screen
from .state import flow_step
from .views import bp


@bp.route("/phone", methods=["GET"])
@flow_step("phone")
def phone():
    return screen("placeholder", "placeholder")
