"""⑤ SOA211 placeholder until the PIN issue lands."""
from __future__ import annotations

from .render import screen
from .state import flow_step
from .views import bp


@bp.route("/pin", methods=["GET"])
@flow_step("pin")
def pin():
    return screen("placeholder", "placeholder")
