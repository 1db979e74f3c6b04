"""本日の状況 (the console's home)."""
from __future__ import annotations

from flask import render_template

from .blueprint import bp


@bp.route("/")
def home():
    return render_template("staff/home.html")
