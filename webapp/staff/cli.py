"""`flask --app webapp staff …`: staff accounts of each union's console (CONTRACT §9)."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlmodel import select

from .. import clock, db, oplog
from . import auth
from .models import ROLES, StaffAccount

staff_cli = AppGroup("staff", help="Staff accounts of each union's console (/{tenant}/staff/).")


def _setup_url(tenant: str, token: str) -> str:
    return f"{current_app.config['BASE_URL']}/{tenant}/staff/setup/{token}"


def _normal_email(email: str) -> str:
    email = email.strip()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--email")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _tenant(tenant: str) -> str:
    if tenant not in current_app.extensions["tenants"]:
        raise click.BadParameter(f"unknown tenant {tenant!r}", param_hint="--tenant")
    return tenant


@staff_cli.command("add")
@click.option("--tenant", required=True, help="the union's id, e.g. amami")
@click.option("--email", required=True, help="the staff member's address (their login name)")
@click.option("--role", type=click.Choice(ROLES), required=True, help="admin may also manage fintech apps")
def add(tenant, email, role):
    """Create a staff account; prints {"setup_url"}: a one-time link (24 h) to set the password and TOTP."""
    tenant, email = _tenant(tenant), _normal_email(email)
    s = db.session()
    if _account(s, tenant, email):
        raise click.UsageError(f"{email} already has an account at {tenant}; `flask staff reset` issues a new link")
    account = StaffAccount(tenant=tenant, email=email, role=role, created_at=clock.now())
    s.add(account)
    s.flush()
    _new_setup_link(s, tenant, account, "staff_added", role)


def _account(s, tenant: str, email: str) -> StaffAccount | None:
    return s.exec(select(StaffAccount).where(StaffAccount.tenant == tenant, StaffAccount.email == email)).first()


def _new_setup_link(s, tenant: str, account: StaffAccount, event: str, detail: str | None = None) -> None:
    """Log `event` with the staff id, then print {"setup_url"}: a one-time link (24 h)."""
    oplog.record(s, tenant=tenant, screen="STAFF", event=event, result="ok", detail=detail).staff_id = account.id
    token = auth.issue_setup_link(s, account)
    click.echo(json.dumps({"setup_url": _setup_url(tenant, token)}))


@staff_cli.command("reset")
@click.option("--tenant", required=True)
@click.option("--email", required=True)
def reset(tenant, email):
    """A new setup link for a staff member (lost phone or password): their password, TOTP and
    sessions stop at once; prints {"setup_url"}."""
    tenant, email = _tenant(tenant), _normal_email(email)
    s = db.session()
    account = _account(s, tenant, email)
    if account is None:
        raise click.UsageError(f"no staff account {email} at {tenant}")
    account.password_hash, account.enrolled_at, account.disabled_at = None, None, None
    account.failures, account.locked_until = 0, None
    auth.end_sessions(s, account.id)
    _new_setup_link(s, tenant, account, "staff_reset")


@staff_cli.command("disable")
@click.option("--tenant", required=True)
@click.option("--email", required=True)
def disable(tenant, email):
    """Close a staff account (they left): its sessions end at once."""
    tenant, email = _tenant(tenant), _normal_email(email)
    s = db.session()
    account = _account(s, tenant, email)
    if account is None:
        raise click.UsageError(f"no staff account {email} at {tenant}")
    account.disabled_at = clock.now()
    s.add(account)
    auth.end_sessions(s, account.id)
    oplog.record(s, tenant=tenant, screen="STAFF", event="staff_disabled", result="ok").staff_id = account.id
    s.commit()
    click.echo("disabled")
