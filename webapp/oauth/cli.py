"""`flask --app webapp clients …`: register fintech apps (CONTRACT §4)."""
from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup

from sqlmodel import select

from .. import clock, db, oplog
from ..fields import padded_account_number
from ..webhooks.targets import url_problem
from .client_keys import KeysUnavailable, public_key_set
from .models import Consent, OAuthClient, secret_hash
from .server import FAPI2

clients_cli = AppGroup("clients", help="Fintech apps (OAuth clients) of each union.")
consents_cli = AppGroup("consents", help="Customers' authorizations (認可) of fintech apps (staff).")

hash_secret = secret_hash  # the name other modules (webapp/demo) import


def redirect_uri_allowed(uri: str) -> bool:
    """An absolute https URI without fragment (http only for localhost or in sandbox mode)."""
    parts = urlsplit(uri)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    return not (parts.fragment or not parts.netloc or parts.scheme not in ("https", "http") or (
        parts.scheme == "http" and not (local or current_app.config["SANDBOX"])))


def _check_redirect_uri(uri: str) -> str:
    if not redirect_uri_allowed(uri):
        raise click.BadParameter(f"{uri}: an absolute https URI without fragment is required "
                                 "(http only for localhost or in sandbox mode)", param_hint="--redirect-uri")
    return uri


def _check_webhook_url(uri: str | None) -> str | None:
    """The app's webhook URL (webapp/webhooks): https to a public host; http only to localhost in sandbox mode."""
    if uri is None:
        return None
    problem = url_problem(uri, sandbox=bool(current_app.config["SANDBOX"]))
    if problem:
        raise click.BadParameter(f"{uri}: {problem}", param_hint="--webhook-url")
    return uri


def register_client(s, tenant: str, name: str, operator: str, redirect_uris: list[str],
                    webhook_url: str | None = None) -> tuple[str, str]:
    """Add a client (in the caller's transaction); returns (client_id, client_secret). The secret is
    stored only hashed: this is the one time anyone sees it. Used by `clients add` and the staff console."""
    client_id = secrets.token_urlsafe(18)
    client_secret = secrets.token_urlsafe(32)
    s.add(OAuthClient(client_id=client_id, client_secret_hash=secret_hash(client_secret), tenant=tenant,
                      name=name, operator=operator, redirect_uris=list(redirect_uris), webhook_url=webhook_url,
                      created_at=clock.now()))
    return client_id, client_secret


def register_fapi2_client(s, tenant: str, name: str, operator: str, redirect_uris: list[str], *,
                          jwks: dict | None = None, jwks_uri: str | None = None,
                          webhook_url: str | None = None) -> str:
    """Add a FAPI 2.0 client (in the caller's transaction): no secret, its public keys by value or
    by reference; returns the client_id."""
    client_id = secrets.token_urlsafe(18)
    s.add(OAuthClient(client_id=client_id, client_secret_hash="", tenant=tenant, name=name, operator=operator,
                      redirect_uris=list(redirect_uris), profile=FAPI2, jwks=jwks, jwks_uri=jwks_uri,
                      webhook_url=webhook_url, created_at=clock.now()))
    return client_id


def _read_jwks_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        public_key_set(data)
    except (OSError, ValueError, KeysUnavailable) as e:
        raise click.BadParameter(f"{path}: a JWK Set of public keys is required ({e})", param_hint="--jwks-file")
    return data


@clients_cli.command("add")
@click.option("--tenant", required=True, help="the union's id, e.g. amami")
@click.option("--name", required=True, help="the app's name shown to customers")
@click.option("--operator", required=True, help="the company operating the app (shown on ① and ⑥)")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--profile", type=click.Choice(["oauth2", FAPI2]), default="oauth2", show_default=True,
              help="fapi2: FAPI 2.0 Security Profile (private_key_jwt, PAR, DPoP), no secret")
@click.option("--jwks-file", default=None, help="fapi2: a file holding the client's JWK Set (public keys)")
@click.option("--jwks-uri", default=None, help="fapi2: the https URL of the client's JWK Set")
@click.option("--webhook-url", default=None, help="where the union POSTs signed events (consent revoked); https")
def add(tenant, name, operator, redirect_uris, profile, jwks_file, jwks_uri, webhook_url):
    """Register a client; prints {"client_id", "client_secret"} as JSON (the secret is shown only
    once), or {"client_id"} for a FAPI 2.0 client (--profile fapi2 with --jwks-file or --jwks-uri)."""
    if tenant not in current_app.extensions["tenants"]:
        raise click.BadParameter(f"unknown tenant {tenant!r}", param_hint="--tenant")
    uris = [_check_redirect_uri(u) for u in redirect_uris]
    webhook_url = _check_webhook_url(webhook_url)
    if profile != FAPI2:
        if jwks_file or jwks_uri:
            raise click.BadParameter("only a fapi2 client has a JWK Set", param_hint="--profile")
        s = db.session()
        client_id, client_secret = register_client(s, tenant, name, operator, uris, webhook_url)
        s.commit()
        click.echo(json.dumps({"client_id": client_id, "client_secret": client_secret}))
        return
    if bool(jwks_file) == bool(jwks_uri):
        raise click.BadParameter("a fapi2 client needs exactly one of --jwks-file and --jwks-uri", param_hint="--jwks-file")
    jwks = _read_jwks_file(jwks_file) if jwks_file else None
    problem = jwks_uri and url_problem(jwks_uri, sandbox=bool(current_app.config["SANDBOX"]))
    if problem:  # the webhooks' rule: fetched from the union's servers, it must not point inside
        raise click.BadParameter(f"{jwks_uri}: {problem}", param_hint="--jwks-uri")
    s = db.session()
    client_id = register_fapi2_client(s, tenant, name, operator, uris, jwks=jwks, jwks_uri=jwks_uri,
                                      webhook_url=webhook_url)
    s.commit()
    click.echo(json.dumps({"client_id": client_id}))


@clients_cli.command("set-webhook")
@click.option("--client-id", required=True)
@click.option("--url", default=None, help="the new webhook URL (https)")
@click.option("--clear", is_flag=True, help="remove the webhook URL: the app gets no more events")
def set_webhook(client_id, url, clear):
    """Set or clear an app's webhook URL. Events already queued still go to the URL they were queued for."""
    if (url is None) == (not clear):
        raise click.UsageError("give either --url URL or --clear")
    url = _check_webhook_url(url)
    s = db.session()
    client = s.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    if client is None:
        raise click.BadParameter(f"unknown client {client_id!r}", param_hint="--client-id")
    client.webhook_url = url
    s.commit()
    click.echo(f"webhook URL of {client_id}: {url or 'none'}")


@clients_cli.command("list")
@click.option("--tenant", default=None, help="only this union's clients")
def list_clients(tenant):
    """One JSON object per line: client_id, tenant, name, operator, redirect_uris, webhook_url, created_at,
    revoked_at."""
    query = select(OAuthClient).order_by(OAuthClient.id)
    if tenant:
        query = query.where(OAuthClient.tenant == tenant)
    for c in db.session().exec(query):
        click.echo(json.dumps({"client_id": c.client_id, "tenant": c.tenant, "name": c.name,
                               "operator": c.operator, "redirect_uris": c.redirect_uris, "profile": c.profile,
                               "webhook_url": c.webhook_url,
                               "created_at": c.created_at.isoformat(),
                               "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None},
                              ensure_ascii=False))


def _consent_line(c: Consent) -> str:
    return json.dumps({"id": c.id, "tenant": c.tenant, "client_id": c.client_id, "branch": c.branch,
                       "account_type": c.account_type, "account_number": c.account_number, "scope": c.scope,
                       "granted_at": c.granted_at.isoformat(), "expires_at": c.expires_at.isoformat(),
                       "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None}, ensure_ascii=False)


def _account_consents(tenant, branch, account_type, number, client_id, live_only):
    query = select(Consent).where(Consent.tenant == tenant, Consent.branch == branch, Consent.account_type == account_type,
                                  Consent.account_number == padded_account_number(number))
    if client_id:
        query = query.where(Consent.client_id == client_id)
    if live_only:
        query = query.where(Consent.revoked_at.is_(None), Consent.expires_at > clock.now())
    return list(db.session().exec(query.order_by(Consent.id)))


@consents_cli.command("list")
@click.option("--tenant", required=True)
@click.option("--branch", required=True)
@click.option("--type", "account_type", required=True)
@click.option("--number", required=True)
def list_consents(tenant, branch, account_type, number):
    """An account's authorizations, one JSON object per line."""
    for c in _account_consents(tenant, branch, account_type, number, None, live_only=False):
        click.echo(_consent_line(c))


@consents_cli.command("revoke")
@click.option("--tenant", required=True)
@click.option("--branch", required=True)
@click.option("--type", "account_type", required=True)
@click.option("--number", required=True)
@click.option("--client-id", default=None, help="only this app's authorization (default: every app's)")
def revoke_consents(tenant, branch, account_type, number, client_id):
    """End an account's live authorizations at once (the customer asked the union, ⑥ ご注意):
    every token issued under them stops working."""
    from .consents import revoke_consent

    s = db.session()
    found = _account_consents(tenant, branch, account_type, number, client_id, live_only=True)
    for c in found:
        revoke_consent(s, c)
        oplog.record(s, tenant=tenant, screen="ADMIN", event="consent_revoked", result="ok", client_id=c.client_id,
                     branch=c.branch, account_type=c.account_type, account_number=c.account_number,
                     detail=f"consent {c.id}")
    s.commit()
    click.echo(f"revoked {len(found)} authorization(s)")
