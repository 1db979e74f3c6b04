"""Staff sign-in: setup link (password + TOTP enrolment), password, code, sign-out."""
from __future__ import annotations

from flask import g, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlmodel import select

from .. import db, fields, messages, oplog
from ..extensions import limiter
from . import auth
from .blueprint import TIMED_OUT, bp, set_cookie
from .forms import CodeForm, LoginForm, SetupForm
from .models import StaffAccount

BAD_LOGIN = "メールアドレスまたはパスワードが正しくありません。"
BAD_CODE = messages.STAFF_BAD_CODE.format(digits=fields.TOTP_CODE.max_length)
LOCKED = "ログインに続けて失敗したため、このアカウントは一時的にロックされています。{until} 以降に再度お試しください。"
TIMEOUT = "一定時間操作がなかったか、ログインから8時間が経過したため、ログアウトしました。再度ログインしてください。"
LINK_GONE = "このリンクは無効です（使用済み、または有効期限の24時間を過ぎています）。管理者に新しいリンクの発行を依頼してください。"
SET_UP = "パスワードと認証アプリの登録が完了しました。ログインしてください。"


def _login_limit() -> str:
    return str(auth.setting("STAFF_LOGIN_RATE_LIMIT"))


def _log(s, event: str, result: str, account: StaffAccount | None, detail: str | None = None) -> None:
    row = oplog.record(s, tenant=g.tenant.id, screen="STAFF", event=event, result=result, detail=detail)
    row.staff_id = account.id if account else None


def _locked_message(s, account: StaffAccount) -> str:
    until = auth.locked_until(s, account.id)
    from .. import clock

    when = until.astimezone(clock.JST).strftime("%H:%M") if until else "しばらく"
    return LOCKED.format(until=when)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form = LoginForm()
    error = TIMEOUT if request.args.get("reason") == TIMED_OUT else None
    notice = SET_UP if request.args.get("reason") == "setup" else None
    if g.staff is not None and g.staff.signed_in:
        return redirect(url_for("staff.home"))
    if form.validate_on_submit():
        s = db.session()
        email = form.email.data
        if "@" in email:
            local, domain = email.rsplit("@", 1)
            email = f"{local}@{domain.lower()}"
        account = s.exec(select(StaffAccount).where(
            StaffAccount.tenant == g.tenant.id, StaffAccount.email == email,
            StaffAccount.disabled_at.is_(None), StaffAccount.password_hash.is_not(None))).first()
        if account is None:
            auth.password_matches(None, form.password.data)  # the same work as for a real account
            _log(s, "staff_login", "fail", None, "unknown")
            s.commit()
            error = BAD_LOGIN
        elif not auth.reserve_attempt(s, account):
            _log(s, "staff_login", "locked", account)
            s.commit()
            error = _locked_message(s, account)
        elif not auth.password_matches(account.password_hash, form.password.data):
            _log(s, "staff_login", "fail", account, "password")
            s.commit()
            error = BAD_LOGIN
        else:
            auth.give_back_attempt(s, account)
            if g.staff is not None:
                auth.end_session(s, g.staff.session.id)
            token = auth.start_session(s, account)
            s.commit()
            set_cookie(token)
            return redirect(url_for("staff.code"), code=303)
    return render_template("staff/login.html", form=form, error=error, notice=notice)


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def code():
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        s = db.session()
        account = g.staff.account
        if not auth.reserve_attempt(s, account):
            auth.end_session(s, g.staff.session.id)
            _log(s, "staff_login_code", "locked", account)
            s.commit()
            set_cookie(None)
            return render_template("staff/login.html", form=LoginForm(formdata=None),
                                   error=_locked_message(s, account), notice=None)
        if not auth.accept_totp(s, account, form.code.data):
            _log(s, "staff_login_code", "fail", account)
            s.commit()
            error = BAD_CODE
        else:
            auth.clear_failures(s, account)
            token = auth.promote_session(s, g.staff)
            _log(s, "staff_login", "ok", account)
            s.commit()
            set_cookie(token)
            return redirect(url_for("staff.home"), code=303)
    return render_template("staff/code.html", form=form, error=error)


@bp.route("/logout", methods=["POST"])
def logout():
    s = db.session()
    if g.staff is not None:
        auth.end_session(s, g.staff.session.id)
        _log(s, "staff_logout", "ok", g.staff.account)
        s.commit()
    set_cookie(None)
    return redirect(url_for("staff.login"), code=303)


@bp.route("/setup/<token>", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def setup(token: str):
    s = db.session()
    found = auth.find_setup(s, g.tenant.id, token)
    if found is None:
        return render_template("staff/setup_gone.html", message=LINK_GONE), 404
    link, account = found
    form = SetupForm()
    error = None
    if form.validate_on_submit():
        if auth.complete_setup(s, link, account, form.password.data, form.code.data):
            _log(s, "staff_enrolled", "ok", account)
            s.commit()
            return redirect(url_for("staff.login", reason="setup"), code=303)
        error = BAD_CODE
    uri = auth.provisioning_uri(account.totp_secret, account.email, f"{g.tenant.name} 職員コンソール")
    import segno  # here: only a staff member's enrolment draws a QR code (~1 MB of every worker otherwise)

    qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, title="認証アプリ登録用QRコード"))
    return render_template("staff/setup.html", form=form, error=error, account=account, qr=qr,
                           secret=auth.grouped(account.totp_secret))
