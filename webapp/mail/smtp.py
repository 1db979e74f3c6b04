"""Mail over SMTP with Flask-Mail: the real transport.

Every SMTP socket operation has a short timeout (MAIL_TIMEOUT_SECONDS, 10 s): Flask-Mail's
Connection opens smtplib without one, so `_TimedConnection` opens it with one. The Japanese body
goes base64-encoded (7-bit clean for any relay). SMTP's failures become `MailError`s:

- unreachable, timed out, a 4xx answer: retried later; a broken link (or 421) stops the run;
- a 5xx refusal of every recipient, or a message SMTP cannot carry: permanent.
"""
from __future__ import annotations

import email.charset
import email.policy
import functools
import smtplib
import socket
from email.header import Header
from email.mime.text import MIMEText
from email.utils import parseaddr
from typing import Callable

from flask_mail import BadHeaderError, Connection, Message

from .. import clock
from .transport import MailConnection, MailError, MailTransport, OutgoingMail

TIMEOUT_SECONDS = 10
# A message that no retry can send (e.g. a non-ASCII address the server cannot take).
UNSENDABLE = (BadHeaderError, ValueError)


@functools.cache
def ehlo_name() -> str:
    """The name the courier greets the mail server with (EHLO): the one smtplib would find itself,
    socket.getfqdn(), found once a process. smtplib looks it up at every connection it opens without
    one: a reverse DNS lookup each, on the courier's thread, which a slow resolver holds for seconds."""
    return socket.getfqdn()


class _TimedConnection(Connection):
    """Flask-Mail's Connection, opening smtplib with a timeout and closing a broken link quietly."""

    def __init__(self, state, timeout: float):
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self):
        cls = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = cls(self.mail.server, self.mail.port, local_hostname=ehlo_name(), timeout=self.timeout)
        try:
            if self.mail.use_tls:
                host.starttls()
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def __exit__(self, exc_type, exc_value, tb):
        if self.host is None:
            return
        try:
            self.host.quit()
        except (smtplib.SMTPException, OSError):
            self.host.close()


# Flask-Mail's own policy for writing a message out (SMTP: CRLF line ends, lines of at most 78), with
# compat32's header handling: every header here is already ASCII, so it is written as it is.
_WRITE_POLICY = email.policy.compat32.clone(linesep="\r\n")


class _Base64Message(Message):
    """Flask-Mail's message, with two changes:

    - Flask-Mail sends UTF-8 text as raw 8-bit; base64 keeps the Japanese body 7-bit clean for any relay.
    - It is written out by compat32's header handling, not the `SMTP` policy's, which parsed each
      (already encoded) header back into a tree to fold it again: 1.6 of the 1.8 ms a mail took.
      The Subject is encoded knowing its name's length, so its first line fits, as `SMTP` folded it.
      The bytes are the same (tests/test_mail.py compares them with Flask-Mail's own)."""

    def _mimetext(self, text, subtype="plain"):
        utf8 = email.charset.Charset("utf-8")
        utf8.body_encoding = email.charset.BASE64
        return MIMEText(text, _subtype=subtype, _charset=utf8)

    def _message(self):
        msg = super()._message()
        msg.policy = _WRITE_POLICY
        if self.subject and not self.subject.isascii():
            msg.replace_header("Subject", Header(self.subject, "utf-8", header_name="Subject").encode("\r\n"))
        return msg


def _message(mail: OutgoingMail) -> Message:
    msg = _Base64Message(subject=mail.subject, recipients=[mail.recipient], body=mail.body,
                         sender=mail.sender, charset="utf-8", date=clock.now().timestamp())
    msg.msgId = mail.message_id
    return msg


def _describe(error: BaseException) -> str:
    """What went wrong, for staff: the exception class and the server's reply, never credentials."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()), (0, b""))
        text = f"{code} {reply.decode('utf-8', 'replace')}"
    elif isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
        text = f"{error.smtp_code} {reply}"
    else:
        text = str(error)
    return f"{type(error).__name__}: {' '.join(text.split())}"[:300]


def _permanent(error: BaseException) -> bool:
    """A 5xx refusal of the recipient, or a message SMTP cannot carry: retrying cannot help."""
    if isinstance(error, UNSENDABLE + (smtplib.SMTPNotSupportedError,)):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    return False


def _link_down(error: BaseException) -> bool:
    """The connection itself failed: stop this run, the next rows would fail the same way."""
    return isinstance(error, (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)) or (
        isinstance(error, smtplib.SMTPResponseException) and error.smtp_code == 421)


class _SmtpConnection(MailConnection):
    def __init__(self, connection: _TimedConnection):
        self.connection = connection

    def send(self, mail: OutgoingMail) -> None:
        try:
            self.connection.send(_message(mail), envelope_from=parseaddr(mail.sender)[1])
        except (smtplib.SMTPException, OSError) + UNSENDABLE as error:
            raise MailError(_describe(error), permanent=_permanent(error), link_down=_link_down(error)) from error

    def close(self) -> None:
        self.connection.__exit__(None, None, None)


class SmtpTransport(MailTransport):
    """Flask-Mail's settings (MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS …) with a timeout per socket operation."""

    def __init__(self, state: Callable[[], object], timeout: Callable[[], float]):
        self._state = state  # the app's Flask-Mail state
        self._timeout = timeout  # seconds, read at each connection

    def connect(self) -> MailConnection:
        connection = _TimedConnection(self._state(), self._timeout())
        try:
            connection.__enter__()
        except (smtplib.SMTPException, OSError) as error:
            raise MailError(_describe(error), link_down=True) from error
        return _SmtpConnection(connection)
