from flask import Blueprint

from .. import tenants

bp = Blueprint("api", __name__, url_prefix="/<tenant>/api/v1")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)
