"""① SOA201 ご利用口座情報入力: which account. Format only; core banking is asked on ②."""
from __future__ import annotations

from flask import g, get_flashed_messages, url_for

from .. import db, oplog
from .forms import AccountForm, missing_required
from .render import go, screen
from .state import NEXT, advance, flow_step
from .views import bp


def _client():
    from ..oauth.models import OAuthClient

    return OAuthClient.by_id(g.flow.client_id)


@bp.route("/account", methods=["GET", "POST"])
@flow_step("account")
def account():
    flow = g.flow
    form = AccountForm(g.tenant, data={"branch": flow.branch, "account_type": flow.account_type,
                                       "account_number": flow.account_number})
    if form.validate_on_submit():
        if advance(flow, NEXT["account"], branch=form.branch.data, account_type=form.account_type.data,
                   account_number=form.padded_number):
            s = db.session()
            oplog.record(s, tenant=flow.tenant, screen="SOA201", event="account_entered", result="ok", flow=flow)
            s.commit()
        return go(url_for("flow.customer"))
    return screen("account", "account_form", form=form, client=_client(),
                  missing=missing_required(form), alert=_alert())


def _alert():
    """A message carried over from ② (error 1 sends the customer back here)."""
    shown = get_flashed_messages(category_filter=["alert"])
    return {"message": shown[0]} if shown else None
