"""連携アプリ (role admin only): list, register (the secret shown once), disable."""
from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from .. import db
from ..oauth.cli import redirect_uri_allowed, register_client
from . import apps
from .blueprint import admin_only, audit, bp
from .forms import ClientForm, ReasonForm, errors_text, reason_for

BAD_URI = "戻り先URIは https:// で始まる完全なURI（# を含まないもの）を1行に1つ入力してください。"
DISABLED = "連携アプリを停止しました。このアプリのトークンはすべて無効になり、新たな連携もできません。"
ALREADY = "この連携アプリはすでに停止されています。"


def _page(form: ClientForm, status: int = 200, **context):
    return render_template("staff/apps.html", form=form, reason_form=ReasonForm(formdata=None),
                           apps=apps.listing(db.session(), g.tenant.id), **context), status


@bp.route("/apps", methods=["GET", "POST"], endpoint="apps")
@admin_only
def apps_page():
    form = ClientForm()
    if request.method == "GET":
        notice = {"disabled": DISABLED, "already": ALREADY}.get(request.args.get("done", ""))
        return _page(form, notice=notice)
    if not form.validate_on_submit():
        return _page(form, 400)
    uris = [line.strip() for line in form.redirect_uris.data.splitlines() if line.strip()]
    if not uris or len(uris) > 10 or not all(len(u) <= 2000 and redirect_uri_allowed(u) for u in uris):
        form.redirect_uris.errors = [BAD_URI]
        return _page(form, 400)
    s = db.session()
    client_id, secret = register_client(s, g.tenant.id, form.name.data, form.operator.data, uris)
    audit(s, "client_registered", reason=form.reason.data, client_id=client_id)
    s.commit()
    # Shown on this answer only (no redirect: the secret never goes into a URL, and is never stored).
    return _page(ClientForm(formdata=None), registered={"client_id": client_id, "client_secret": secret,
                                                       "name": form.name.data})



@bp.route("/apps/<client_id>/disable", methods=["POST"])
@admin_only
def disable_app(client_id: str):
    s = db.session()
    form = reason_for(apps.find(s, g.tenant.id, client_id))
    if not form.validate_on_submit():
        return _page(ClientForm(formdata=None), 400, error=errors_text(form))
    revoked = apps.disable(s, g.tenant.id, client_id)
    if revoked is None:
        return redirect(url_for("staff.apps", done="already"), code=303)
    audit(s, "client_disabled", reason=f"{revoked} tokens: {form.reason.data}"[:200], client_id=client_id)
    s.commit()
    return redirect(url_for("staff.apps", done="disabled"), code=303)
