"""The sandbox demo: each union's demo customers, its demo app, and the launcher pages.

- `<tenant>.json` here are sandbox files (CONTRACT §3) written by `generate.py`; `flask sandbox
  demo-setup` loads them and registers two demo apps per union, redirecting to
  `{BASE_URL}/demo/callback`: `demo-<tenant>` (client_secret_basic, Bearer tokens) and
  `demo-<tenant>-fapi2` (FAPI 2.0: PAR, private_key_jwt, DPoP). Running it again changes nothing.
- `views.py` is the launcher (`/demo/`), registered only when SANDBOX is on: it plays the fintech
  app, so anyone can walk through API連携認証 without writing a client.
"""
from __future__ import annotations

import functools
import json
import pathlib

from flask import current_app
from sqlmodel import Session, select

from .. import clock
from ..oauth.cli import hash_secret
from ..oauth.models import OAuthClient
from . import client

DATA_DIR = pathlib.Path(__file__).parent
CLIENT_NAME = "しんくみアプリwith CRECO（デモ）"
CLIENT_OPERATOR = "アイ・ティ・リアライズ株式会社"


def tenants_with_data() -> list[str]:
    """The configured unions that have a demo file, in configuration order."""
    return [t for t in current_app.extensions["tenants"] if (DATA_DIR / f"{t}.json").is_file()]


def data_files() -> list[pathlib.Path]:
    return [DATA_DIR / f"{t}.json" for t in tenants_with_data()]


@functools.cache
def _accounts(path: pathlib.Path) -> tuple[dict, ...]:
    with path.open(encoding="utf-8") as f:
        accounts = json.load(f)["accounts"]
    return tuple({k: v for k, v in a.items() if k != "transactions"} for a in accounts)


def customers(tenant: str) -> tuple[dict, ...]:
    """The demo accounts of `tenant` as in its file (without transactions): what to type on the screens."""
    return _accounts(DATA_DIR / f"{tenant}.json")


def ensure_clients(s: Session) -> list[OAuthClient]:
    """Make sure each union has its demo apps, as configured now (BASE_URL, SECRET_KEY); no commit."""
    rows = []
    for tenant in tenants_with_data():
        common = dict(tenant=tenant, name=CLIENT_NAME, operator=CLIENT_OPERATOR, redirect_uris=[client.redirect_uri()],
                      revoked_at=None)
        rows.append(_ensure(s, client.client_id(tenant), dict(
            common, client_secret_hash=hash_secret(client.client_secret(tenant)), profile="oauth2", jwks=None)))
        rows.append(_ensure(s, client.fapi2_client_id(tenant), dict(
            common, client_secret_hash="", profile=client.FAPI2, jwks=client.public_jwks(tenant))))
    s.flush()
    return rows


def _ensure(s: Session, client_id: str, values: dict) -> OAuthClient:
    row = s.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    if row is None:
        row = OAuthClient(client_id=client_id, created_at=clock.now(), **values)
        s.add(row)
    else:
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
    return row


def instructions() -> str:
    """What a new user needs: the page to open and the customers to type, for every union."""
    unions = current_app.extensions["tenants"]
    lines = ["", f"Open {current_app.config['BASE_URL']}/demo/ and press 「デモアプリから連携を開始」.", ""]
    for tenant in tenants_with_data():
        union = unions[tenant]
        lines.append(f"{union.name} ({tenant}): demo customers")
        for a in customers(tenant):
            type_name = union.account_type_name(a["type"]) or a["type"]
            lines.append(f"  店番 {a['branch']}  科目 {type_name}  口座番号 {a['number']}  お名前 {a['name_kana']}  "
                         f"生年月日 {a['birth_date']}  電話番号 {a['phone']}  暗証番号 {a['pin']}")
            if a.get("note"):
                lines.append(f"      {a['note']}")
        lines.append("")
    lines.append("At ④ (電話番号認証) the sandbox simulates the call from the registered phone "
                 "(the screen's button, or `flask --app webapp telephony simulate-call`).")
    return "\n".join(lines)
