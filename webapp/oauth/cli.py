"""`flask --app webapp clients …`: register fintech apps (CONTRACT §4)."""
from __future__ import annotations

import hashlib
import json
import secrets
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup

from .. import clock, db
from .models import OAuthClient

clients_cli = AppGroup("clients", help="Fintech apps (OAuth clients) of each union.")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.fragment or not parts.netloc or parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not (local or current_app.config["SANDBOX"])):
        raise click.BadParameter(f"{uri}: an absolute https URI without fragment is required "
                                 "(http only for localhost or in sandbox mode)", param_hint="--redirect-uri")
    return uri


@clients_cli.command("add")
@click.option("--tenant", required=True, help="the union's id, e.g. amami")
@click.option("--name", required=True, help="the app's name shown to customers")
@click.option("--operator", required=True, help="the company operating the app (shown on ① and ⑥)")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
def add(tenant, name, operator, redirect_uris):
    """Register a client; prints {"client_id", "client_secret"} as JSON (the secret is shown only once)."""
    if tenant not in current_app.extensions["tenants"]:
        raise click.BadParameter(f"unknown tenant {tenant!r}", param_hint="--tenant")
    uris = [_check_redirect_uri(u) for u in redirect_uris]
    client_id = secrets.token_urlsafe(18)
    client_secret = secrets.token_urlsafe(32)
    s = db.session()
    s.add(OAuthClient(client_id=client_id, client_secret_hash=hash_secret(client_secret), tenant=tenant,
                      name=name, operator=operator, redirect_uris=uris, created_at=clock.now()))
    s.commit()
    click.echo(json.dumps({"client_id": client_id, "client_secret": client_secret}))
