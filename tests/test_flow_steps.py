"""The step machine and the one page-or-partial renderer, as a customer and the operation log see them.

- Each step, once done, leaves its log row with its own screen id, and the browser goes on to the
  next screen in the manual's order (①②③④⑤⑥), whichever view finished the step.
- An htmx request gets the partial of the page a browser would get (`flow/x.html` →
  `flow/partials/x.html`), with `Vary: HX-Request`; the service-wide notice follows the same rule.
"""
from __future__ import annotations

import contextlib

from flask import template_rendered

from conftest import text_of
from test_callauth_support import call_from_registered_phone, log_rows, to_call_screen
from test_oauth_support import REDIRECT_URI, allow, pin
from webapp.render import partial_of


@contextlib.contextmanager
def templates_rendered(app):
    """The names of the templates rendered meanwhile, not those they include (the union's override
    or the common one). The blank screens kept so far are dropped (render_blank), so a screen's page
    is rendered, as for its first customer."""
    app.extensions.pop("blank_pages", None)
    names = []

    def remember(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(remember, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(remember, app)


def test_each_finished_step_logs_its_screen_id_and_leads_to_the_next_screen(amami):
    page = to_call_screen(amami)  # ① ② ③ done, ④ shown
    assert call_from_registered_phone(amami, page).status_code == 200
    confirmed = amami.post("flow/call", {})
    assert confirmed.status_code == 303 and confirmed.headers["Location"].endswith("/amami/flow/pin")
    amami.get("flow/pin")
    entered = pin(amami)
    assert entered.status_code == 303 and entered.headers["Location"].endswith("/amami/flow/consent")
    amami.get("flow/consent")
    granted = allow(amami)
    assert granted.status_code == 303 and granted.headers["Location"].startswith(REDIRECT_URI + "?code=")

    done = [(r.screen, r.event) for r in log_rows(amami.app)
            if r.result == "ok" and r.event in {"account_entered", "identity_check", "phone_confirmed",
                                                 "call_confirm", "pin_check", "consented"}]
    assert done == [("SOA201", "account_entered"), ("SOA202", "identity_check"), ("SOA208", "phone_confirmed"),
                    ("SOA209", "call_confirm"), ("SOA211", "pin_check"), ("SOA206", "consented")]


def test_a_screen_asked_out_of_order_is_logged_on_that_screen_and_sends_to_the_current_one(amami):
    amami.start()
    response = amami.get("flow/pin")
    assert response.status_code == 303 and response.headers["Location"].endswith("/amami/flow/account")
    refused = [(r.screen, r.detail) for r in log_rows(amami.app) if r.event == "out_of_order"]
    assert refused == [("SOA211", "at account")]


def test_the_partial_of_a_page_stands_beside_it_under_partials():
    assert partial_of("flow/account.html") == "flow/partials/account.html"
    assert partial_of("notice.html") == "partials/notice.html"


def test_a_browser_gets_the_page_and_htmx_its_partial(amami):
    amami.start()
    with templates_rendered(amami.app) as names:
        page = amami.get("flow/account")
    assert page.status_code == 200 and names == ["flow/account.html"]
    assert "<html" in text_of(page)

    with templates_rendered(amami.app) as names:
        partial = amami.get("flow/account", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and names == ["flow/partials/account.html"]
    assert "<html" not in text_of(partial) and text_of(partial).lstrip().startswith('<div id="screen"')
    assert "HX-Request" in partial.headers["Vary"] and "HX-Request" in page.headers["Vary"]


def test_a_boosted_htmx_request_gets_the_whole_page(amami):
    amami.start()
    with templates_rendered(amami.app) as names:
        amami.get("flow/account", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert names[0] == "flow/account.html"


def test_the_notice_follows_the_same_rule(amami):
    with templates_rendered(amami.app) as names:
        page = amami.get("flow/no-such-screen")
    assert page.status_code == 404 and names[0] == "notice.html"
    with templates_rendered(amami.app) as names:
        partial = amami.get("flow/no-such-screen", headers={"HX-Request": "true"})
    assert partial.status_code == 404 and names[0] == "partials/notice.html"
    assert "ページが見つかりません。" in text_of(partial) and "<html" not in text_of(partial)


def test_a_step_move_leaves_the_flow_clean_so_no_later_flush_writes_it_again(app, amami):
    """The move is one guarded UPDATE; the flow object then holds the new values as committed state
    (a later flush must not write them again without the move's WHERE guards)."""
    from sqlmodel import select

    from webapp import db
    from webapp.flow import state
    from webapp.flow.models import Flow

    to_call_screen(amami)
    with app.app_context():
        s = db.session()
        flow = s.exec(select(Flow).where(Flow.step == "call")).one()
        assert state.move(s, flow, "pin") is not None
        assert flow.step == "pin" and flow not in s.dirty and not s.dirty
        s.commit()
        assert s.exec(select(Flow.step).where(Flow.id == flow.id)).one() == "pin"
