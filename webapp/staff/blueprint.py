"""The staff console of each union, under /{tenant}/staff/ (CONTRACT §9), in the union's brand.

Every request passes `_guard`: a staff session of another union gets 403 on every staff URL (the
login and setup pages included); a page other than login/setup needs a signed-in session
(password and code); admin-only pages check the role. The staff session is its own cookie and row
(webapp/staff/auth.py), never the customer flow's session data.
"""
from __future__ import annotations

import functools

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from .. import db, oplog, tenants
from . import auth

bp = Blueprint("staff", __name__, url_prefix="/<tenant>/staff")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)

COOKIE = "renkei-staff"
OPEN = {"staff.login", "staff.setup", "staff.logout"}  # reachable without a signed-in session
TIMED_OUT = "timeout"


def cookie_name() -> str:
    # __Host-: Secure, Path=/, host-only, so no other site or path can plant or read it (ASVS 3.3).
    return ("__Host-" if current_app.config["SESSION_COOKIE_SECURE"] else "") + COOKIE


def set_cookie(value: str | None) -> None:
    """Set (or, with None, delete) the staff cookie on this request's response."""
    g.staff_cookie = value


@bp.after_request
def _write_cookie(response):
    if "staff_cookie" in g:
        secure = current_app.config["SESSION_COOKIE_SECURE"]
        if g.staff_cookie is None:
            response.delete_cookie(cookie_name(), path="/", secure=secure, httponly=True, samesite="Strict")
        else:
            response.set_cookie(cookie_name(), g.staff_cookie, path="/", secure=secure, httponly=True,
                                samesite="Strict")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def _guard():
    s = db.session()
    current, timed_out = auth.load_session(s, request.cookies.get(cookie_name()))
    g.staff = current
    if current is not None and current.account.tenant != g.tenant.id:
        abort(403)
    if request.endpoint in OPEN:
        return None
    if request.endpoint == "staff.code":
        if current is None or current.signed_in:
            return redirect(url_for("staff.login" if current is None else "staff.home"))
        return None
    if current is None or not current.signed_in:
        if timed_out:
            set_cookie(None)
        return redirect(url_for("staff.login", reason=TIMED_OUT if timed_out else None))
    auth.touch(s, current)
    s.commit()
    return None


def admin_only(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.staff is None or g.staff.account.role != "admin":
            abort(403)
        return view(*args, **kwargs)
    return wrapped


def audit(s, event: str, result: str = "ok", *, reason: str | None = None, **fields):
    """One operation-log row for a staff action, with the staff id (in the caller's transaction)."""
    row = oplog.record(s, tenant=g.tenant.id, screen="STAFF", event=event, result=result, detail=reason, **fields)
    row.staff_id = g.staff.account.id if g.staff else None
    return row


@bp.errorhandler(403)
def _forbidden(e):
    g.staff = None  # no menu of a union this staff member does not belong to
    return render_template("staff/forbidden.html"), 403


@bp.record_once
def _defaults(state) -> None:
    for name, value in auth.DEFAULTS.items():
        state.app.config.setdefault(name, value)


@bp.app_template_filter("jst")
def _jst(value, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An aware UTC datetime as JST for staff pages."""
    from .. import clock

    return clock.as_utc(value).astimezone(clock.JST).strftime(fmt) if value else ""


@bp.context_processor
def _staff_context():
    return {"staff": g.get("staff")}

