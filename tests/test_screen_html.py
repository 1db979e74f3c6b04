"""The customer screens send the same HTML as the plain templates did (issue 13).

The templates were made cheaper to render (fewer macro calls and attribute lookups, no filter chain
over a form without errors, a select's options from `render.options`); `reference_templates/` keeps
the plain versions they replaced, and the pages, base.html, flow/layout.html and the partials as they
were before the pages extended base.html directly and took their macros from `macros`. Every
screen, as a page and as an htmx partial, empty, with field errors, with the 「エラー」 dialog and
with an identity alert, for a union with template overrides and one without, is rendered by an app
with today's templates and by one whose loader finds the reference versions first: the two must
be identical, byte for byte, apart from the CSRF token.
"""
from __future__ import annotations

import pathlib
import random
import re

import pytest
from jinja2 import ChoiceLoader, FileSystemLoader

from conftest import DEMO, FlowActions, add_account, make_app
from webapp.callauth import service

REFERENCE = pathlib.Path(__file__).parent / "reference_templates"
CSRF_VALUE = re.compile(r'(name="csrf_token" value=")[^"]+(")')


def screens(app, tenant: str) -> dict[str, str]:
    """Every screen state a customer of `tenant` meets on the way ①→⑥: name → status and HTML."""
    for t, c in DEMO.items():
        add_account(app, t, **c)
    f = FlowActions(app, app.test_client(), tenant)
    pages = {}

    def keep(name, response):
        pages[name] = f"{response.status_code}\n" + CSRF_VALUE.sub(r"\1…\2", response.get_data(as_text=True))

    def both(name, path):
        keep(name, f.get(path))
        keep(name + " htmx", f.get(path, headers={"HX-Request": "true"}))

    f.start()
    both("①", "flow/account")
    empty = {"branch": "", "account_type": "", "account_number": ""}
    keep("① empty", f.post("flow/account", empty))
    keep("① empty htmx", f.post("flow/account", empty, htmx=True))
    keep("① wrong", f.post("flow/account", {"branch": "1a<", "account_type": "9", "account_number": "１２３"}))
    keep("① wrong htmx", f.post("flow/account", {"branch": "1", "account_type": "1", "account_number": "12345678"},
                                 htmx=True))
    f.account()
    both("②", "flow/customer")
    keep("② empty", f.post("flow/customer", {}))
    keep("② empty htmx", f.post("flow/customer", {}, htmx=True))
    keep("② wrong", f.post("flow/customer", f.customer_data(birth_month="02", birth_day="30", name_kana="abc<",
                                                            email_confirm="x@example.jp")))
    keep("② future htmx", f.post("flow/customer", f.customer_data(birth_year="2099"), htmx=True))
    keep("② mismatch", f.post("flow/customer", f.customer_data(phone="09099998888")))
    both("② after a mismatch", "flow/customer")
    assert f.post("flow/customer", f.customer_data()).status_code == 303
    both("③", "flow/phone")
    f.post("flow/phone", {})
    both("④", "flow/call")
    keep("④ pressed early", f.post("flow/call", {}))
    f.post("flow/call/demo", {})
    both("④ call seen", "flow/call")
    assert f.post("flow/call", {}).status_code == 303
    both("⑤", "flow/pin")
    keep("⑤ empty", f.post("flow/pin", {"pin": ""}))
    keep("⑤ wrong htmx", f.post("flow/pin", {"pin": "12a"}, htmx=True))
    keep("⑤ wrong PIN", f.post("flow/pin", {"pin": "0000"}))
    both("⑤ after a wrong PIN", "flow/pin")
    assert f.post("flow/pin", {"pin": DEMO[tenant]["pin"]}).status_code == 303
    both("⑥", "flow/consent")
    keep("⑥ not ticked", f.post("flow/consent", {}))
    keep("⑥ not ticked htmx", f.post("flow/consent", {}, htmx=True))
    keep("⑥ 拒否する", f.post("flow/cancel", {}))  # without JavaScript: the confirmation page
    keep("⑥ 拒否する htmx", f.post("flow/cancel", {}, htmx=True))
    return pages


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])  # maruhachi overrides a partial
def test_every_screen_sends_the_html_of_the_reference_templates(tmp_path, monkeypatch, tenant):
    rendered = {}
    for kind in ("today", "reference"):
        app = make_app(f"sqlite:///{tmp_path / kind}.sqlite3")
        if kind == "reference":
            app.jinja_env.loader = ChoiceLoader([FileSystemLoader(REFERENCE), app.jinja_loader])
        monkeypatch.setattr(service, "_rng", random.Random(13))  # the same pool numbers in both
        rendered[kind] = screens(app, tenant)
    assert list(rendered["today"]) == list(rendered["reference"])
    for name, html in rendered["today"].items():
        assert html == rendered["reference"][name], name
    assert len(rendered["today"]) == 35


def test_a_posted_value_that_is_no_choice_selects_nothing_and_is_not_kept():
    from wtforms import SelectChoice

    from webapp.render import _option_tags, options

    choices = [SelectChoice("", "--"), SelectChoice("01"), SelectChoice("02", "二月<")]
    assert options(choices, "02") == ('<option value="">--</option><option value="01">01</option>'
                                      '<option value="02" selected>二月&lt;</option>')
    unchosen = options(choices, None)
    assert " selected" not in unchosen
    kept = _option_tags.cache_info().currsize
    for junk in ("03", "0" * 5000, "<script>", "1"):
        assert options(choices, junk) == unchosen
    assert _option_tags.cache_info().currsize == kept
