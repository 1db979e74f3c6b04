"""① SOA201 ご利用口座情報入力: which account. Format only; core banking is asked on ②."""
from __future__ import annotations

from flask import g, get_flashed_messages, request

from ..render import render_blank, render_page
from .blueprint import bp
from .forms import AccountForm, missing_required
from .steps import client_vary, finish_step, flow_step


@bp.route("/account", methods=["GET", "POST"])
@flow_step("account", with_client=True)
def account():
    flow = g.flow
    alert = _alert() if request.method == "GET" else None  # from ② (error 1), with the entries kept
    entered = flow.branch is not None or flow.account_type is not None or flow.account_number is not None
    if request.method == "GET" and alert is None and not entered:
        return render_blank("flow/account.html", lambda: AccountForm(g.tenant), vary=client_vary(g.client),
                            client=g.client, missing=False, alert=None)
    form = AccountForm(g.tenant, data={"branch": flow.branch, "account_type": flow.account_type,
                                       "account_number": flow.account_number})
    if form.validate_on_submit():
        return finish_step(flow, branch=form.branch.data, account_type=form.account_type.data,
                           account_number=form.padded_number)
    return render_page("flow/account.html", form=form, client=g.client,
                       missing=missing_required(form), alert=alert or _alert())


def _alert():
    """A message carried over from ② (error 1 sends the customer back here)."""
    shown = get_flashed_messages(category_filter=["alert"])
    return {"message": shown[0]} if shown else None
