"""The customer flow: one module per screen, its routes on the flow blueprint (flow/blueprint.py).

Importing this module gives the blueprint with every screen on it, in the order a flow passes them.
"""
from __future__ import annotations

from . import account, customer, phone, call, pin, consent, cancel, links  # noqa: F401  (each adds its routes)
from .blueprint import bp, my_bp

__all__ = ["bp", "my_bp"]
