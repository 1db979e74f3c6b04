"""本日の状況 (the console's home): today's figures, and the account search at hand."""
from __future__ import annotations

from flask import g, render_template
from wtforms import SelectChoice

from .. import clock, db
from . import dashboard
from .blueprint import bp
from .forms import AccountSearchForm


@bp.route("/")
def home():
    form = AccountSearchForm(formdata=None)
    form.account_type.choices = [SelectChoice(t.code, f"{t.code} {t.name}") for t in g.tenant.account_types]
    return render_template("staff/home.html", day=dashboard.today(db.session(), g.tenant), form=form,
                           today=clock.today_jst())
