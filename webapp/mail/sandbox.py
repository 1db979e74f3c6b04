"""Sandbox mail (`MAIL_SUPPRESS_SEND`): nothing leaves the process; what would have been sent is kept.

The demo and the tests read `delivered` (the last mails, newest last). Like a real server, it
refuses a mail whose headers no server could carry (a line break in the sender, recipient or
subject) — permanently, as SMTP would.
"""
from __future__ import annotations

import collections

from .transport import MailConnection, MailError, MailTransport, OutgoingMail

KEEP = 100  # mails kept in memory


class SandboxTransport(MailTransport, MailConnection):
    def __init__(self):
        self.delivered: collections.deque[OutgoingMail] = collections.deque(maxlen=KEEP)

    def connect(self) -> MailConnection:
        return self

    def send(self, mail: OutgoingMail) -> None:
        if any(c in value for value in (mail.sender, mail.recipient, mail.subject) for c in "\r\n"):
            raise MailError("BadHeaderError: a line break in a header", permanent=True)
        self.delivered.append(mail)
