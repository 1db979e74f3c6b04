"""The mail server behind one small interface: how one outbox row goes out.

sender.py (claiming, retrying, giving up) asks `transport()` and never knows which implementation
answers; it sees only this module's types:

- `OutgoingMail`: what one outbox row carries (sender, recipient, subject, body, Message-ID);
- `MailConnection.send(mail)`: deliver it, or raise `MailError`, which says what went wrong (for
  staff, never credentials), whether retrying can ever help (`permanent`) and whether the link
  itself is down (`link_down`: the rest of the run would fail the same way).

Implementations (chosen in wiring.py): `SmtpTransport` (smtp.py, Flask-Mail over SMTP with a
timeout on every socket operation) and `SandboxTransport` (sandbox.py, `MAIL_SUPPRESS_SEND`: the
mails are kept in memory, nothing leaves the process).
"""
from __future__ import annotations

import abc
import dataclasses

from flask import current_app

from ..deliveries import DeliveryFailure


@dataclasses.dataclass(frozen=True)
class OutgoingMail:
    sender: str  # "Name <address>", the union's
    recipient: str
    subject: str
    body: str  # plain text
    message_id: str  # <…@domain>: a resend after a crash carries the same one


class MailError(DeliveryFailure):
    """A mail that did not go out: the error's class and the server's reply (at most 300 characters),
    `permanent` (a refused mailbox, a header no server can carry), `link_down` (stop the run)."""


class MailConnection(abc.ABC):
    @abc.abstractmethod
    def send(self, mail: OutgoingMail) -> None:
        """Deliver `mail` or raise MailError."""

    def close(self) -> None:
        """End the connection quietly (a broken link included)."""


class MailTransport(abc.ABC):
    @abc.abstractmethod
    def connect(self) -> MailConnection:
        """A connection for a run of sends; raises MailError (link_down) when there is none."""


def transport() -> MailTransport:
    return current_app.extensions["mail_transport"]
