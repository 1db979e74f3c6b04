"""Completion mail: one notice per completed flow, never lost, never sent twice.

The consent view queues it in the consent's own transaction (`queue_completion_mail`: an outbox
row, unique per flow), then calls `kick(row)` after its commit; `send_pending()` (the CLI
`flask --app webapp mail send-pending`, run every minute) delivers whatever is due, retrying with
back-off while the mail server is down. outbox.py says what a notice contains, sender.py how rows
are claimed, sent and retried. reminders.py queues the expiry reminder, seven days before a
consent ends, into the same outbox.
"""
from .models import MailOutbox
from .outbox import queue_completion_mail, queue_revocation_mail
from .reminders import cancel_reminder, queue_expiry_reminders
from .sender import SendReport, kick, send_pending, send_these

__all__ = ["MailOutbox", "SendReport", "cancel_reminder", "kick", "queue_completion_mail", "queue_expiry_reminders",
           "queue_revocation_mail", "send_pending", "send_these"]
