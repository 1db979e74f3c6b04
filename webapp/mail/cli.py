"""`flask --app webapp mail …`: the outbox's sender and the expiry reminders, for a scheduler (cron)
or a worker process (the Procfile's `mail:`)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import oplog
from ..deliveries import keep_running

mail_cli = AppGroup("mail", help="Completion mail and expiry reminder outbox.")


@mail_cli.command("send-pending")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most this many mails a run.")
@click.option("--every", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="Keep running, once every SECONDS (a worker process); default: run once (cron).")
@click.option("--remind/--no-remind", default=True, show_default=True,
              help="Queue the expiry reminders that are due before each run (as `mail remind`).")
def send_pending_cmd(limit: int, every: int | None, remind: bool) -> None:
    """Send the mails that are due; failures are retried later with back-off."""
    from .reminders import queue_expiry_reminders
    from .sender import send_pending

    def run_once() -> None:
        oplog.drain()  # the account API's log rows, kept even while no one calls or reads the log
        queued = queue_expiry_reminders() if remind else 0
        if queued:
            click.echo(f"queued {queued} reminder(s)")
        report = send_pending(limit=limit)
        if every is None or report.sent or report.retrying or report.failed:
            click.echo(str(report))

    keep_running(run_once, every)


@mail_cli.command("remind")
def remind_cmd() -> None:
    """Queue a reminder for each consent ending within 7 days (once per consent; sent by send-pending)."""
    from .reminders import queue_expiry_reminders

    click.echo(f"queued {queue_expiry_reminders()} reminder(s)")
