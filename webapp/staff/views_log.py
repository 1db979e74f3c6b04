"""操作ログ: search the union's operation log, page by page, and export it as CSV."""
from __future__ import annotations

from urllib.parse import quote

from flask import Response, g, render_template, request, stream_with_context, url_for

from .. import clock, db, oplog
from . import logsearch
from .blueprint import audit, bp
from .forms import LogSearchForm


def _query(form: LogSearchForm) -> logsearch.Query:
    account = tuple(form.account.data.split("-")) if form.account.data else None
    return logsearch.Query(tenant=g.tenant.id, date_from=form.date_from.data, date_to=form.date_to.data,
                           account=account, event=form.event.data or None, client_id=form.client_id.data or None,
                           result=form.result.data or None)


def _filters() -> dict:
    return {k: v for k, v in request.args.items() if k != "after" and v}


@bp.route("/log")
def log_search():
    form = LogSearchForm(request.args)
    rows, next_cursor = [], None
    valid = form.validate()
    if valid:
        oplog.drain()  # the account API's latest calls too
        rows, next_cursor = logsearch.search(db.session(), _query(form), logsearch.decode_cursor(request.args.get("after")))
    filters = _filters()
    return render_template(
        "staff/log.html", form=form, log=rows, valid=valid, first_page=not request.args.get("after"),
        next_url=url_for("staff.log_search", **filters, after=next_cursor) if next_cursor else None,
        first_url=url_for("staff.log_search", **filters), csv_url=url_for("staff.log_export", **filters))


@bp.route("/log.csv")
def log_export():
    form = LogSearchForm(request.args)
    if not form.validate():
        return render_template("staff/log.html", form=form, log=[], valid=False, first_page=True, next_url=None,
                               first_url=url_for("staff.log_search"), csv_url=None), 400
    query = _query(form)
    oplog.drain()
    s = db.session()
    audit(s, "log_exported", reason=" ".join(f"{k}={v}" for k, v in _filters().items())[:200] or None)
    s.commit()
    name = f"操作ログ_{g.tenant.id}_{clock.now_jst():%Y%m%d%H%M%S}.csv"
    response = Response(stream_with_context(logsearch.export_csv(db.engine(), query)), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f"attachment; filename=\"oplog.csv\"; filename*=UTF-8''{quote(name)}"
    return response
