"""The `flask --app webapp …` command groups; each part owns its group."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from .migrate import db_cli
    from .corebanking.cli import sandbox_cli
    from .oauth.cli import clients_cli, consents_cli
    from .callauth.cli import telephony_cli
    from .mail.cli import mail_cli
    from .lockout import locks_cli
    from .oplog import log_cli
    from .staff.cli import staff_cli
    from .webhooks.cli import webhooks_cli

    for group in (db_cli, sandbox_cli, clients_cli, consents_cli, telephony_cli, mail_cli, locks_cli, log_cli,
                  staff_cli, webhooks_cli):
        app.cli.add_command(group)
