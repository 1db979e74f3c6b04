"""A screen before the customer has typed anything is rendered once per union and kept
(render.render_blank, issue 13): ①, ②, ③, ⑤ and ⑥ on their GET, ④ and its polled status area
while the call is awaited.

What a customer gets from a kept page must be what rendering the screen afresh gives, byte for byte
apart from the CSRF token; a kept page never holds a customer's own values nor a token, and each
customer's page carries that customer's values and that customer's token.
"""
from __future__ import annotations

import datetime as dt
import random
import re

import pytest
from flask_wtf import FlaskForm
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import text

from conftest import CSRF_RE, DEMO, QUIET_TIME, FlowActions, add_account, make_app, text_of
from webapp import clock, db, messages
from webapp.callauth import service
from webapp.callauth.service import masked_phone
from webapp.render import render_blank

CSRF_VALUE = re.compile(r'(name="csrf_token" value=")[^"]+(")')
NUMBER = re.compile(r'<span class="call-number">([^<]+)</span>')

# A second customer of each union, with other values wherever a screen shows one (a 貯蓄預金 at 奄美).
SECOND = {
    "amami": dict(branch="120", account_type="4", number="7654321", name_kana="ﾆﾊﾞﾝ ｼﾞﾛｳ",
                  birth_date=dt.date(1990, 12, 31), phone="08022224444", pin="9876"),
    "maruhachi": dict(branch="305", account_type="1", number="0098765", name_kana="ﾆﾊﾞﾝ ﾊﾅｺ",
                      birth_date=dt.date(1969, 2, 3), phone="09055556666", pin="2468"),
}
KEPT = 14  # ① ② ③ ④ ⑤ ⑥, each as a page and as htmx's partial, and ④'s poll, pressed and not


def same_app_customer(first: FlowActions) -> FlowActions:
    """Another customer of `first`'s union, through the same app (the same client, so the same kept
    pages), in a browser of their own."""
    other = FlowActions.__new__(FlowActions)
    other.app, other.client, other.tenant = first.app, first.app.test_client(), first.tenant
    other.oauth_client, other.csrf = first.oauth_client, None
    return other


def walk(f: FlowActions, c: dict, start: dt.datetime) -> dict[str, tuple[str, str]]:
    """Customer `c` from ① to ⑥ from `start` on, each screen's GETs kept as (HTML, CSRF token), as a
    page and as htmx's partial; ④ 37 s into its window."""
    pages = {}
    clock.set_now(start)

    def both(name, path):
        for suffix, headers in (("", {}), (" htmx", {"HX-Request": "true"})):
            response = f.get(path, headers=headers)
            assert response.status_code == 200, (name, text_of(response)[:300])
            pages[name + suffix] = (text_of(response), CSRF_RE.search(text_of(response)).group(1))

    f.start()
    both("①", "flow/account")
    assert f.account(branch=c["branch"], account_type=c["account_type"], number=c["number"]).status_code == 303
    both("②", "flow/customer")
    assert f.post("flow/customer", f.customer_data(
        name_kana=c["name_kana"], birth_year=str(c["birth_date"].year), birth_month=f"{c['birth_date'].month:02d}",
        birth_day=f"{c['birth_date'].day:02d}", phone=c["phone"])).status_code == 303
    both("③", "flow/phone")
    assert f.post("flow/phone", {}).status_code == 303
    f.get("flow/call")  # opens the window
    clock.set_now(start + dt.timedelta(seconds=37))
    both("④", "flow/call")
    for name, query in (("④ poll", ""), ("④ poll pressed", "?pressed=1")):
        response = f.get("flow/call/status" + query, headers={"HX-Request": "true"})
        assert response.status_code == 200 and "Set-Cookie" not in response.headers
        pages[name] = (text_of(response), None)
    f.post("flow/call/demo", {})
    assert f.post("flow/call", {}).status_code == 303
    both("⑤", "flow/pin")
    assert f.post("flow/pin", {"pin": c["pin"]}).status_code == 303
    both("⑥", "flow/consent")
    return pages


def two_customers(app, tenant: str, monkeypatch) -> dict[str, dict]:
    """The demo customer, then a second one of the same union six minutes later (another deadline)."""
    for c in (DEMO[tenant], SECOND[tenant]):
        add_account(app, tenant, **c)
    first = FlowActions(app, app.test_client(), tenant)
    monkeypatch.setattr(service, "_rng", random.Random(13))  # the same pool numbers in every app
    walked = {"first": walk(first, DEMO[tenant], QUIET_TIME)}
    monkeypatch.setattr(service, "_rng", random.Random(14))  # another pool number than the first's, freed by now
    walked["second"] = walk(same_app_customer(first), SECOND[tenant], QUIET_TIME + dt.timedelta(minutes=6))
    return walked


def without_token(html: str) -> str:
    return CSRF_VALUE.sub(r"\1…\2", html)


def test_a_kept_page_is_the_page_rendered_afresh_with_each_customers_values_and_token(tmp_path, monkeypatch):
    """Two customers of each union through one app (maruhachi overrides ⑥'s notes), against the same
    in an app that keeps nothing."""
    kept_app = make_app(f"sqlite:///{tmp_path / 'kept'}.sqlite3")
    # templates auto-reloading, as in debug: every page rendered with its values, none kept
    fresh_app = make_app(f"sqlite:///{tmp_path / 'fresh'}.sqlite3", TEMPLATES_AUTO_RELOAD=True)
    pages = {}
    for name, app in (("kept", kept_app), ("fresh", fresh_app)):
        pages[name] = {t: two_customers(app, t, monkeypatch) for t in ("amami", "maruhachi")}
    kept, fresh = pages["kept"], pages["fresh"]

    assert len(kept_app.extensions["blank_pages"]) == 2 * KEPT  # each union's second customer got its first's
    assert "blank_pages" not in fresh_app.extensions
    for tenant in kept:
        for who in ("first", "second"):
            assert list(kept[tenant][who]) == list(fresh[tenant][who])
            for name, (html, _token) in kept[tenant][who].items():
                assert without_token(html) == without_token(fresh[tenant][who][name][0]), (tenant, who, name)
                assert "\x00" not in html

        # each page shows its own customer's account and phone, and carries its own session's token
        for who, c in (("first", DEMO[tenant]), ("second", SECOND[tenant])):
            other = SECOND[tenant] if who == "first" else DEMO[tenant]
            summary = kept[tenant][who]["②"][0]
            type_name = {"1": "普通預金", "4": "貯蓄預金"}[c["account_type"]]
            assert f"店番 {c['branch']} {type_name} {c['number']}</p>" in summary and other["number"] not in summary
            assert masked_phone(_e164(c["phone"])) in kept[tenant][who]["③"][0]
            call = kept[tenant][who]["④"][0]
            assert masked_phone(_e164(c["phone"])) in call and 'data-seconds-left="83"' in call
            assert messages.CALL_DEADLINE.format(clock="14:02" if who == "first" else "14:08") in call
        calls = [kept[tenant][who]["④"][0] for who in ("first", "second")]
        assert NUMBER.search(calls[0]).group(1) != NUMBER.search(calls[1]).group(1)
        for name in kept[tenant]["first"]:
            if "poll" not in name:
                assert kept[tenant]["first"][name][1] != kept[tenant]["second"][name][1], name
    assert "丸八信用組合" in kept["maruhachi"]["second"]["①"][0] and "奄美" not in kept["maruhachi"]["second"]["①"][0]


def _e164(national: str) -> str:
    from webapp.flow.customer import e164

    return e164(national)


def test_a_kept_page_holds_no_customers_values_and_no_token(tmp_path, monkeypatch):
    app = make_app(f"sqlite:///{tmp_path / 'kept'}.sqlite3")
    pages = two_customers(app, "amami", monkeypatch)
    tokens = {token for walked in pages.values() for _html, token in walked.values() if token}
    values = [c[k] for c in (DEMO["amami"], SECOND["amami"]) for k in ("branch", "number")]
    values += [masked_phone(_e164(c["phone"])) for c in (DEMO["amami"], SECOND["amami"])]
    values += [NUMBER.search(walked["④"][0]).group(1) for walked in pages.values()]
    assert len(values) == 8 and len(set(values)) == 8
    for key, page in app.extensions["blank_pages"].items():
        if "call_status" not in key[0]:
            assert CSRF_RE.findall(page) and set(CSRF_RE.findall(page)) == {"\x00csrf_token\x00"}, key
        assert not any(token in page for token in tokens), key
        assert not any(f">{value}<" in page or f" {value} " in page for value in values), key


def test_a_renamed_client_gets_pages_naming_its_new_operator(amami):
    amami.start()
    assert "アイ・ティ・リアライズ株式会社に提供する" in text_of(amami.get("flow/account"))
    with amami.app.app_context():
        s = db.session()
        s.execute(text("UPDATE oauth_client SET operator = :o WHERE client_id = :c"),
                  {"o": "改名後<株式会社>", "c": amami.oauth_client["client_id"]})
        s.commit()
    again = FlowActions.__new__(FlowActions)
    again.app, again.client, again.tenant = amami.app, amami.app.test_client(), "amami"
    again.oauth_client, again.csrf = amami.oauth_client, None
    page = text_of(again.start())
    assert "改名後&lt;株式会社&gt;に提供する" in page and "アイ・ティ・リアライズ" not in page


def test_a_screen_with_entries_or_an_alert_is_the_customers_own_and_the_blank_one_stays_blank(amami):
    """② sends the customer back to ① with its alert and the entries kept (error 1): that ① is the
    customer's own, rendered, and the blank ① another customer gets stays blank."""
    blank = without_token(text_of(amami.start()))
    amami.account(number="9999999")  # no such account
    amami.get("flow/customer")
    back = amami.post("flow/customer", amami.customer_data())
    assert back.status_code == 303 and back.headers["Location"].endswith("/amami/flow/account")
    own = text_of(amami.get("flow/account"))
    assert 'value="9999999"' in own and '<div class="alert">' in own
    other = same_app_customer(amami)
    assert without_token(text_of(other.start())) == blank
    assert 'value="9999999"' not in blank and '<div class="alert">' not in blank


def test_the_page_keeps_what_the_template_writes_and_escapes_each_value_as_jinja_does(app):
    app.jinja_env.loader = ChoiceLoader([DictLoader({"t/one.html": (
        '<p title="{{ who }}">{{ who }}</p><p>{{ n }}</p>{{ fixed }}'
        '<input type="hidden" name="csrf_token" value="{{ form.csrf_token.current_token }}">')}),
        app.jinja_env.loader])
    answers = {}
    for who in ("<b>&amp;\"'", "Ｔａｒｏ", ""):
        for kept in (True, False):
            app.jinja_env.auto_reload = not kept
            with app.test_request_context("/"):
                body = render_blank("t/one.html", FlaskForm, text={"who": who, "n": 7}, fixed="同じ")
                answers[who, kept] = without_token(body.get_data(as_text=True))
                assert body.headers["Vary"] == "HX-Request"
    for who in ("<b>&amp;\"'", "Ｔａｒｏ", ""):
        assert answers[who, True] == answers[who, False]
    assert answers["<b>&amp;\"'", True].startswith(
        '<p title="&lt;b&gt;&amp;amp;&#34;&#39;">&lt;b&gt;&amp;amp;&#34;&#39;</p><p>7</p>同じ')


def test_what_late_builds_is_in_the_page_and_worked_out_only_when_it_is_rendered(app):
    """`late` (④'s status lines and poll URL) is called when the page is rendered, not for a kept page's
    later answers; with templates auto-reloading, on every answer, as the rest of the page is rendered."""
    app.jinja_env.loader = ChoiceLoader([DictLoader({"t/late.html": "<p>{{ fixed }} {{ built }}</p>"}),
                                         app.jinja_env.loader])
    calls = []

    def late():
        calls.append(1)
        return {"built": "後で"}

    for kept, expected_calls in ((True, 1), (False, 3)):
        calls.clear()
        app.jinja_env.auto_reload = not kept
        app.extensions.pop("blank_pages", None)
        for _ in range(3):
            with app.test_request_context("/"):
                body = render_blank("t/late.html", FlaskForm, fixed="先に", late=late).get_data(as_text=True)
            assert body == "<p>先に 後で</p>"
        assert len(calls) == expected_calls
