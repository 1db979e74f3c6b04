"""臨時メンテナンス: announce or cancel an ad hoc closure of the union's customer screens."""
from __future__ import annotations

import datetime as dt

from flask import g, redirect, render_template, request, url_for

from .. import clock, db
from .. import maintenance
from .blueprint import audit, bp
from .forms import MaintenanceForm, ReasonForm, errors_text, reason_for

ADDED = "臨時メンテナンスを登録しました。開始時刻からお客様の画面にメンテナンス中の案内が表示されます。"
CANCELLED = "臨時メンテナンスを取り消しました。"
ALREADY = "この臨時メンテナンスはすでに取り消されています。"
END_BEFORE_START = "終了日時は開始日時より後にしてください。"
END_PASSED = "終了日時が過ぎています。"


def _page(form, cancel_form, status=200, notice=None, error=None):
    s = db.session()
    return render_template("staff/maintenance.html", form=form, cancel_form=cancel_form, notice=notice, error=error,
                           upcoming=maintenance.upcoming(s, g.tenant.id), recent=maintenance.recent(s, g.tenant.id),
                           now=clock.now()), status


@bp.route("/maintenance", methods=["GET", "POST"], endpoint="maintenance")
def maintenance_page():
    form = MaintenanceForm()
    if request.method == "GET":
        notice = {"added": ADDED, "cancelled": CANCELLED, "already": ALREADY}.get(request.args.get("done", ""))
        return _page(form, ReasonForm(formdata=None), notice=notice)
    if not form.validate_on_submit():
        return _page(form, ReasonForm(formdata=None), 400)
    start = dt.datetime.combine(form.start_date.data, form.start_time.data, clock.JST)
    end = dt.datetime.combine(form.end_date.data, form.end_time.data, clock.JST)
    if end <= start or end <= clock.now():
        return _page(form, ReasonForm(formdata=None), 400, error=END_BEFORE_START if end <= start else END_PASSED)
    s = db.session()
    window = maintenance.add(s, g.tenant.id, start, end, form.reason.data, g.staff.account.id)
    audit(s, "maintenance_added", reason=f"window {window.id} {start:%Y-%m-%d %H:%M}～{end:%Y-%m-%d %H:%M}: "
                                         f"{form.reason.data}"[:200])
    s.commit()
    return redirect(url_for("staff.maintenance", done="added"), code=303)



@bp.route("/maintenance/<int:window_id>/cancel", methods=["POST"])
def cancel_maintenance(window_id: int):
    s = db.session()
    form = reason_for(maintenance.find(s, g.tenant.id, window_id))
    if not form.validate_on_submit():
        return _page(MaintenanceForm(formdata=None), form, 400, error=errors_text(form))
    if not maintenance.cancel(s, g.tenant.id, window_id, g.staff.account.id):
        return redirect(url_for("staff.maintenance", done="already"), code=303)
    audit(s, "maintenance_cancelled", reason=f"window {window_id}: {form.reason.data}"[:200])
    s.commit()
    return redirect(url_for("staff.maintenance", done="cancelled"), code=303)
