"""The staff console of each union (/{tenant}/staff/): blueprint.py wires it, auth.py signs staff
in, one views_*.py per page group, one service module per job (accounts, logsearch, maintenance,
dashboard). Importing this package does nothing: webapp/models.py imports staff.models alone."""
