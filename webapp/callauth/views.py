"""Call authentication routes (placeholder blueprints until the call-authentication issue lands)."""
from flask import Blueprint

from .. import tenants

bp = Blueprint("callauth", __name__, url_prefix="/<tenant>/call")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)

telephony_bp = Blueprint("telephony", __name__, url_prefix="/telephony")
