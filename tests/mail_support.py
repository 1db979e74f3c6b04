"""The completion mail's test kit: a real SMTP server on loopback that can go down and come back,
and a flow that reached consent (its client and consent), as the consent leaves them.

A test module uses the fixtures by importing them: `from mail_support import app_config, smtp,
smtp_port  # noqa: F401`."""
from __future__ import annotations

import datetime as dt
import email
import secrets
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from webapp import clock, db
from webapp.flow.models import Flow
from webapp.mail import MailOutbox, queue_completion_mail, send_pending
from webapp.oauth.models import Consent, OAuthClient

from conftest import DEMO


# --- a real SMTP server on loopback ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """aiosmtpd handler keeping every delivered message; `refuse_rcpt` makes it refuse recipients."""

    def __init__(self):
        self.envelopes = []
        self.peers = []  # each delivered message's connection (the client's address and port)
        self.greetings = []  # each delivered message's EHLO name
        self.refuse_rcpt: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        self.greetings.append(session.host_name)  # the name the client gave in its EHLO
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


class SMTPServer:
    """A mail server that can go down and come back on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.handler = Collector()
        self.controller: Controller | None = None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.handler.messages


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_SUPPRESS_SEND": False, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port,
            "MAIL_TIMEOUT_SECONDS": 5}


@pytest.fixture
def smtp(smtp_port):
    server = SMTPServer(smtp_port)
    server.start()
    yield server
    server.stop()


# --- a completed flow, as the consent leaves it ---------------------------------------------------

def completed_flow(app, tenant: str = "amami", email_address: str = "taro@example.jp") -> int:
    """Insert a flow that reached consent, its client and its consent; returns the flow id."""
    c = DEMO[tenant]
    now = clock.now()
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        client = OAuthClient(client_id=secrets.token_hex(8), client_secret_hash="x" * 64, tenant=tenant,
                             name="しんくみアプリwith CRECO", operator="アイ・ティ・リアライズ株式会社",
                             redirect_uris=["https://app.example/cb"], created_at=now)
        flow = Flow(handle_hash=secrets.token_hex(32), tenant=tenant, step="consent", client_id=client.client_id,
                    redirect_uri="https://app.example/cb", oauth_request={}, branch=c["branch"],
                    account_type=c["account_type"], account_number=c["number"], name_kana=c["name_kana"],
                    email=email_address, phone_e164="+81" + c["phone"][1:], created_at=now, updated_at=now)
        s.add_all([client, flow])
        s.flush()
        s.add(Consent(tenant=tenant, client_id=client.client_id, branch=c["branch"], account_type=c["account_type"],
                      account_number=c["number"], scope="accounts", flow_id=flow.id, granted_at=now,
                      expires_at=now + dt.timedelta(days=30)))
        s.commit()
        return flow.id


def outbox(app) -> list[MailOutbox]:
    with app.app_context(), Session(db.engine()) as s:
        return list(s.exec(select(MailOutbox).order_by(MailOutbox.id)))


def send(app, limit: int = 50):
    with app.app_context():
        return send_pending(limit=limit)


def queue(app, flow_id: int, *, commit: bool = True) -> int | None:
    """What the consent does in its transaction: queue the mail (then commit, or roll back)."""
    with app.app_context(), Session(db.engine(), expire_on_commit=False) as s:
        flow = s.get(Flow, flow_id)
        consent = s.exec(select(Consent).where(Consent.flow_id == flow_id)).one()
        client = s.exec(select(OAuthClient).where(OAuthClient.client_id == flow.client_id)).one()
        row = queue_completion_mail(s, tenant=app.extensions["tenants"][flow.tenant], flow=flow,
                                    consent=consent, client=client)
        if commit:
            s.commit()
            return row.id
        s.rollback()
        return None
