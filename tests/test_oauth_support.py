"""Helpers for the ⑤ ⑥ and OAuth tests (no tests here): reaching ⑤ and ⑥, the client's side of OAuth.

③ ④ (the call) are tested by their own suite; here a flow that passed ② is moved to ⑤ in the
database, so these tests do not depend on how the call is made.
"""
from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy import update
from sqlmodel import Session, select

from conftest import QUIET_TIME, text_of
from webapp import clock, db
from webapp.flow.models import Flow

# RFC 7636 Appendix B (conftest's default challenge has a typo, so the tests pass this one)
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
REDIRECT_URI = "https://app.example/cb"


def latest_flow(app) -> Flow:
    with app.app_context(), Session(db.engine()) as s:
        return s.exec(select(Flow).order_by(Flow.id.desc())).first()


def set_step(app, step: str) -> None:
    """Stand the latest flow at `step` (as if ③ ④ had been passed)."""
    flow = latest_flow(app)
    with app.app_context(), Session(db.engine()) as s:
        s.execute(update(Flow).where(Flow.id == flow.id).values(step=step, updated_at=clock.now()))
        s.commit()


def at_pin(actions, **start):
    actions.start(**{"code_challenge": CHALLENGE, **start})
    actions.account()
    response = actions.customer()
    assert response.status_code == 303, text_of(response)[:800]
    set_step(actions.app, "pin")
    return actions.get("flow/pin")


def pin(actions, value: str | None = None, **kw):
    return actions.post("flow/pin", {"pin": actions_pin(actions) if value is None else value}, **kw)


def actions_pin(actions) -> str:
    from conftest import DEMO

    return DEMO[actions.tenant]["pin"]


def at_consent(actions, **start):
    at_pin(actions, **start)
    response = pin(actions)
    assert response.status_code == 303, text_of(response)[:800]
    return actions.get("flow/consent")


def allow(actions, agree: bool = True, **kw):
    return actions.post("flow/consent", {"agree": "y"} if agree else {}, **kw)


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorized(actions, **start) -> dict:
    """Walk ①–⑥ and 許可する; the query of the redirect to the client (code, state, iss)."""
    at_consent(actions, **start)
    response = allow(actions)
    assert response.status_code == 303, text_of(response)[:800]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return query(location)


def basic(client_id: str, secret: str) -> dict:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def token_request(actions, data: dict, auth: str = "basic", creds: dict | None = None, tenant: str | None = None):
    creds = creds or actions.oauth_client
    headers = {}
    data = dict(data)
    if auth == "basic":
        headers = basic(creds["client_id"], creds["client_secret"])
    elif auth == "post":
        data.update(client_id=creds["client_id"], client_secret=creds["client_secret"])
    return actions.client.post(f"/{tenant or actions.tenant}/oauth/token", data=data, headers=headers)


def exchange(actions, code: str, verifier: str = VERIFIER, **kw):
    return token_request(actions, {"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT_URI, "code_verifier": verifier}, **kw)


def refresh(actions, refresh_token: str, **kw):
    return token_request(actions, {"grant_type": "refresh_token", "refresh_token": refresh_token}, **kw)


def tokens(actions) -> dict:
    """A fresh authorization, exchanged: the token response."""
    code = authorized(actions)["code"]
    response = exchange(actions, code)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def endpoint(actions, name: str, token: str, creds: dict | None = None, hint: str | None = None, auth="basic"):
    creds = creds or actions.oauth_client
    data = {"token": token} | ({"token_type_hint": hint} if hint else {})
    headers = basic(creds["client_id"], creds["client_secret"]) if auth == "basic" else {}
    if auth == "post":
        data.update(client_id=creds["client_id"], client_secret=creds["client_secret"])
    return actions.client.post(f"/{actions.tenant}/oauth/{name}", data=data, headers=headers)


def introspect(actions, token: str, **kw) -> dict:
    response = endpoint(actions, "introspect", token, **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def later(seconds: float = 0, days: float = 0) -> None:
    clock.set_now(QUIET_TIME + dt.timedelta(seconds=seconds, days=days))
