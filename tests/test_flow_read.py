"""The screens' flow read (state.load, state.load_with_client) is a Core SELECT whose rows become
detached objects (issue 13): they must hold what an ORM read of the same rows holds."""
from sqlmodel import Session, select

from webapp import db
from webapp.flow import state
from webapp.flow.models import Flow
from webapp.oauth.models import OAuthClient

COLUMNS_OF = {Flow: [c.key for c in Flow.__table__.c], OAuthClient: [c.key for c in OAuthClient.__table__.c]}


def _read_as_the_browser(app, client, tenant="amami"):
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    with app.test_request_context(f"/{tenant}/flow/account", headers={"Cookie": f"{cookie.key}={cookie.value}"}):
        from flask import g

        g.tenant = app.extensions["tenants"][tenant]
        try:
            return state.load(), state.load_with_client()
        finally:
            db.session().close()


def test_the_flow_and_its_client_hold_what_the_orm_reads(app, client, amami):
    amami.start()
    assert amami.account().status_code == 303  # some columns set, some still NULL
    flow, (same_flow, app_client) = _read_as_the_browser(app, client)
    with Session(app.extensions["db_engine"]) as s:
        stored = s.exec(select(Flow)).one()
        stored_client = s.exec(select(OAuthClient).where(OAuthClient.client_id == stored.client_id)).one()
        for loaded in (flow, same_flow):
            assert {k: getattr(loaded, k) for k in COLUMNS_OF[Flow]} == {k: getattr(stored, k) for k in COLUMNS_OF[Flow]}
        assert {k: getattr(app_client, k) for k in COLUMNS_OF[OAuthClient]} == \
            {k: getattr(stored_client, k) for k in COLUMNS_OF[OAuthClient]}
    assert flow.branch and flow.oauth_request["scope"] == "accounts" and flow.name_kana is None
    assert flow.created_at.tzinfo is not None  # aware, as UTCDateTime gives it
    assert flow.step == "customer" and app_client.operator


def test_a_flow_with_no_app_reads_with_no_client(app, client, amami):
    amami.start()
    with Session(app.extensions["db_engine"]) as s:
        s.exec(select(Flow)).one().client_id = None
        s.commit()
    flow, (same_flow, app_client) = _read_as_the_browser(app, client)
    assert flow is not None and same_flow.id == flow.id and app_client is None


def test_no_flow_for_a_browser_without_one(app, client, amami):
    client.get("/amami/faq")
    with app.test_request_context("/amami/flow/account"):
        from flask import g

        g.tenant = app.extensions["tenants"]["amami"]
        assert state.load() is None and state.load_with_client() == (None, None)
