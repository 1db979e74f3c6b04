"""`flask --app webapp webhooks …`: the event outbox's sender, for a worker process (the Procfile's
`webhooks:`) or a scheduler."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from ..deliveries import keep_running

webhooks_cli = AppGroup("webhooks", help="Signed events to fintech apps' webhook URLs.")


@webhooks_cli.command("send-pending")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most this many events a run.")
@click.option("--every", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="Keep running, once every SECONDS (a worker process); default: run once (cron).")
def send_pending_cmd(limit: int, every: int | None) -> None:
    """POST the events that are due; failures are retried later with back-off."""
    from .sender import send_pending

    def run_once() -> None:
        report = send_pending(limit=limit)
        if every is None or report.sent or report.retrying or report.failed:
            click.echo(str(report))

    keep_running(run_once, every)
