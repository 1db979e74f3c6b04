"""連携中のアプリ (CONTRACT §10): `/{tenant}/my/links`, the customer's own view of the apps linked
to an account, and 「連携を解除する」.

- The customer proves who they are with the flow's own identity steps (① ② ③ ④ ⑤), in a flow of
  purpose `links` (no client): 「本人確認へ進む」 starts it, and after ⑤ the flow stands on its last
  step, this page. No other credential exists: the page is the flow's step, reached only by the
  browser holding that flow's handle, and it ends with the flow (「終了する」, or the flow's idle
  and absolute limits, FLOW_IDLE_SECONDS / FLOW_MAX_SECONDS).
- The list: every live consent of the proven account (oauth.consents.live_links).
- 「連携を解除する」: first 「…との連携を解除してよろしいですか」 (a dialog with htmx, a page without),
  then `confirm=yes` ends the consent and its tokens at once and queues the notice to the address
  given at ② of this session, in one transaction with its log row. Only a consent of the proven
  account can be ended: any other id (another account's, ended, unknown, or not ASCII digits at all)
  gets the page again with 404 and nothing is touched.
"""
from __future__ import annotations

import re

from flask import flash, g, get_flashed_messages, redirect, request, url_for
from flask_wtf import FlaskForm

from .. import db, messages, oplog
from ..mail import kick
from ..oauth.consents import find_link, live_links, revoke_for_customer
from ..render import go, render_page
from . import state
from .blueprint import my_bp
from .identity import account_key
from .models import LINKS
from .state import STEPS
from .steps import end_flow, flow_step, screen_url

_DONE = "links-done"
_CONSENT_ID = re.compile(r"[0-9]{1,18}")  # flash category of what the last action did


def _links_flow():
    flow = state.load()
    return flow if flow is not None and flow.purpose == LINKS else None


def _page(flow, form, *, status: int = 200, alert: str | None = None):
    g.screen_id, g.screen_title = STEPS["links"].screen_id, STEPS["links"].title
    done = get_flashed_messages(category_filter=[_DONE])
    oplog.drain()  # each app's last call, up to the one just answered
    return render_page("my/links.html", status, form=form, flow=flow,
                       links=live_links(db.session(), account_key(flow)),
                       account_type_name=g.tenant.account_type_name(flow.account_type),
                       done=done[0] if done else None, alert=alert)


@my_bp.route("/links", methods=["GET"])
def links():
    flow = _links_flow()
    if flow is None:
        g.screen_id, g.screen_title = STEPS["links"].screen_id, STEPS["links"].title
        done = get_flashed_messages(category_filter=[_DONE])
        return render_page("my/start.html", form=FlaskForm(), done=done[0] if done else None)
    if flow.step != "links":
        return redirect(screen_url(flow), code=303)
    return _page(flow, FlaskForm())


@my_bp.route("/links/start", methods=["POST"])
def start():
    """「本人確認へ進む」: a links flow from ①."""
    if FlaskForm().validate_on_submit():
        state.start(g.tenant.id, None, None, {}, purpose=LINKS)
        return go(url_for(STEPS[state.FIRST_STEP].endpoint))
    return go(url_for("my.links"))


@my_bp.route("/links/<path:consent_id>/revoke", methods=["POST"])
@flow_step("links")
def revoke(consent_id: str):
    flow = g.flow
    form = FlaskForm()  # CSRF only
    if not form.validate_on_submit():
        return go(url_for("my.links"))
    s = db.session()
    # ASCII digits only: Flask's int converter (and int()) would read '１' as 1
    number = int(consent_id) if _CONSENT_ID.fullmatch(consent_id) else None
    link = find_link(s, account_key(flow), number) if number is not None else None
    if link is None:
        oplog.record(s, tenant=flow.tenant, screen=STEPS["links"].screen_id, event="consent_revoke",
                     result="refused", flow=flow, detail=f"not this account's live consent {number}")
        s.commit()
        return _page(flow, form, status=404, alert=messages.LINK_NOT_FOUND)
    if request.form.get("confirm") != "yes":
        return render_page("my/revoke_confirm.html", form=form, link=link, back_url=url_for("my.links"))
    state.touch(flow)
    outbox_id = revoke_for_customer(s, flow, g.tenant, link)
    if outbox_id is not None:
        oplog.record(s, tenant=flow.tenant, screen=STEPS["links"].screen_id, event="consent_revoked",
                     result="ok", flow=flow, client_id=link.consent.client_id, detail=f"consent {link.consent.id}")
    s.commit()
    if outbox_id is not None:
        kick(outbox_id)
    flash(messages.LINK_REVOKED.format(app=link.app_name), _DONE)
    return go(url_for("my.links"))


@my_bp.route("/links/end", methods=["POST"])
@flow_step("links")
def finish():
    """「終了する」: the session ends here; the page needs ① … ⑤ again."""
    if FlaskForm().validate_on_submit():
        end_flow(g.flow, "finished", event="links_finished")
        flash(messages.LINKS_FINISHED, _DONE)
    return go(url_for("my.links"))
