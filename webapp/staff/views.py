"""The staff console: one module per page group, their routes on the staff blueprint
(staff/blueprint.py). Importing this module gives the blueprint with every page on it."""
from __future__ import annotations

from . import views_auth, views_accounts, views_log, views_maintenance, views_apps, views_dashboard  # noqa: F401
from .blueprint import bp

__all__ = ["bp"]
