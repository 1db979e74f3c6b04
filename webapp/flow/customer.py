"""② SOA202 お客様情報入力: who you are, checked against the core banking record.

Birth date and phone are checked; the name only goes to the operation log (FAQ 2-Q4) and the
email only receives the completion notice (FAQ 2-Q5). Each check first reserves a lockout slot.
"""
from __future__ import annotations

import phonenumbers
from flask import flash, g, request

from ..corebanking import AccountCheck, core
from ..render import render_blank, render_page
from .blueprint import bp
from .forms import CustomerForm, missing_required
from .identity import check_with_lockout, standing_lock
from .steps import back_to, finish_step, flow_step


def e164(national: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(national, "JP"), phonenumbers.PhoneNumberFormat.E164)


@bp.route("/customer", methods=["GET", "POST"])
@flow_step("customer")
def customer():
    flow = g.flow
    alert = None if request.method == "POST" else standing_lock(flow)
    if alert is None and request.method == "GET":
        return render_blank("flow/customer.html", CustomerForm, text=_account_shown(flow), missing=False, alert=None)
    form = CustomerForm()
    if form.validate_on_submit():
        result, alert = check_with_lockout(
            flow, "identity_check", lambda key: core().check_identity(key, form.birth_date, form.phone.data).check,
            entries={"name_kana": form.name_kana.data, "email": form.email.data})
        if result is AccountCheck.OK:
            return finish_step(flow, phone_e164=e164(form.phone.data))
        if result is AccountCheck.NOT_SERVICEABLE:
            # The account itself is wrong: back to ① with the message, the entries kept.
            flash(alert["message"], "alert")
            return back_to(flow, "account")
    return render_page("flow/customer.html", form=form, **_account_shown(flow), missing=missing_required(form),
                       alert=alert)


def _account_shown(flow) -> dict:
    """The ① entries ② shows above its form."""
    return {"branch": flow.branch, "account_type_name": g.tenant.account_type_name(flow.account_type),
            "account_number": flow.account_number}
