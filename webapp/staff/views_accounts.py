"""口座照会: find an account by 店番・科目・口座番号; its lock, consents, log and name; unlock, revoke."""
from __future__ import annotations

import re

from wtforms import SelectChoice
from flask import abort, g, redirect, render_template, request, url_for

from .. import db, fields, lockout, oplog
from ..corebanking import AccountKey
from ..oauth.consents import revoke_consent
from . import accounts
from .blueprint import audit, bp
from .forms import AccountSearchForm, ReasonForm, errors_text

UNLOCKED = "ロックを解除しました。お客様は本日中にもう一度お手続きいただけます。"
NOTHING_TO_UNLOCK = "この口座にロックの記録はありませんでした（解除の記録のみ残しました）。"
REVOKED = "連携を解除しました。アプリはこの口座の情報を取得できなくなりました。"
ALREADY_ENDED = "この連携はすでに終了しています。"


def _search_form() -> AccountSearchForm:
    form = AccountSearchForm(request.args)
    form.account_type.choices = [SelectChoice(t.code, f"{t.code} {t.name}") for t in g.tenant.account_types]
    return form


def _key(branch: str, account_type: str, number: str) -> AccountKey:
    """The account of the URL, or 404 (only well-formed numbers of this union's 科目)."""
    if not (re.fullmatch(r"[0-9]{3}", branch) and re.fullmatch(r"[0-9]{1,7}", number)
            and g.tenant.account_type_name(account_type)):
        abort(404)
    return AccountKey(g.tenant.id, branch, account_type, fields.padded_account_number(number))


def _account_url(key: AccountKey, **params) -> str:
    return url_for("staff.account", branch=key.branch, account_type=key.account_type, number=key.number, **params)


@bp.route("/accounts")
def account_search():
    form = _search_form()
    if request.args and form.validate():
        return redirect(url_for("staff.account", branch=form.branch.data, account_type=form.account_type.data,
                                number=form.padded_number))
    return render_template("staff/account_search.html", form=form, searched=bool(request.args))


@bp.route("/accounts/<branch>/<account_type>/<number>")
def account(branch, account_type, number):
    key = _key(branch, account_type, number)
    oplog.drain()  # the account API's latest calls, in the log shown below
    s = db.session()
    name, reachable = accounts.kana_name(key)
    notice = {"unlocked": UNLOCKED, "nothing": NOTHING_TO_UNLOCK, "revoked": REVOKED,
              "ended": ALREADY_ENDED}.get(request.args.get("done", ""))
    return render_template("staff/account.html", key=key, type_name=g.tenant.account_type_name(key.account_type),
                           name_kana=name, core_reachable=reachable, lock=accounts.lock_state(s, g.tenant, key),
                           consents=accounts.consents(s, key), log=accounts.recent_log(s, key),
                           form=ReasonForm(formdata=None), notice=notice, error=None)


def _reason_or_page(key: AccountKey):
    form = ReasonForm()
    if form.validate_on_submit():
        return form, None
    oplog.drain()  # the account API's latest calls, in the log shown below
    s = db.session()
    name, reachable = accounts.kana_name(key)
    error = errors_text(form)
    page = render_template("staff/account.html", key=key, type_name=g.tenant.account_type_name(key.account_type),
                           name_kana=name, core_reachable=reachable, lock=accounts.lock_state(s, g.tenant, key),
                           consents=accounts.consents(s, key), log=accounts.recent_log(s, key),
                           form=form, notice=None, error=error)
    return None, (page, 400)


@bp.route("/accounts/<branch>/<account_type>/<number>/unlock", methods=["POST"])
def unlock(branch, account_type, number):
    key = _key(branch, account_type, number)
    form, page = _reason_or_page(key)
    if form is None:
        return page
    s = db.session()
    found = lockout.unlock(s, key)
    audit(s, "unlock", "ok" if found else "fail", reason=form.reason.data,
          branch=key.branch, account_type=key.account_type, account_number=key.number)
    s.commit()
    return redirect(_account_url(key, done="unlocked" if found else "nothing"), code=303)


@bp.route("/accounts/<branch>/<account_type>/<number>/consents/<int:consent_id>/revoke", methods=["POST"])
def revoke(branch, account_type, number, consent_id):
    key = _key(branch, account_type, number)
    s = db.session()
    consent = accounts.find_consent(s, g.tenant.id, key, consent_id)
    if consent is None:
        abort(404)
    form, page = _reason_or_page(key)
    if form is None:
        return page
    if consent.revoked_at is not None:
        return redirect(_account_url(key, done="ended"), code=303)
    revoke_consent(s, consent)
    audit(s, "consent_revoked", reason=f"consent {consent.id}: {form.reason.data}", client_id=consent.client_id,
          branch=key.branch, account_type=key.account_type, account_number=key.number)
    s.commit()
    return redirect(_account_url(key, done="revoked"), code=303)
