"""CSRF over HTTPS, as production serves the screens (issue 9).

On an https request Flask-WTF's strict check (WTF_CSRF_SSL_STRICT) wants, besides the token, a
`Referer` from our own origin. A browser sends one only if our own `Referrer-Policy` lets it: under
`no-referrer` it sends none, and every POST of ①–⑥ got 400 "The referrer header is missing." while
every test over plain http passed. These tests post the way a browser would under the policy the
page itself was served with, and check that the origin check still refuses other origins.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conftest import text_of
from webapp import messages

ORIGIN = "https://localhost"  # the test client's origin once it speaks https (PREFERRED_URL_SCHEME)
SCREEN_ONE = f"{ORIGIN}/amami/flow/account"
MISSING_REFERRER = "The referrer header is missing."
WRONG_REFERRER = "The referrer does not match the host."


@pytest.fixture
def app_config():
    return {"PREFERRED_URL_SCHEME": "https"}  # every request of the test client is an https one


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def referer_sent(policy_header: str, page_url: str, target_url: str) -> str | None:
    """The `Referer` a browser sends from `page_url` to `target_url` (both https) under the
    Referrer-Policy header `policy_header` (W3C Referrer Policy §8.3; the last known token wins)."""
    known = {"no-referrer", "no-referrer-when-downgrade", "same-origin", "origin", "strict-origin",
             "origin-when-cross-origin", "strict-origin-when-cross-origin", "unsafe-url"}
    tokens = [t.strip().lower() for t in policy_header.split(",") if t.strip().lower() in known]
    policy = tokens[-1] if tokens else "strict-origin-when-cross-origin"  # the browsers' default
    full, origin_only = page_url.split("#")[0], _origin(page_url) + "/"
    same = _origin(page_url) == _origin(target_url)
    return {
        "no-referrer": None,
        "no-referrer-when-downgrade": full,
        "unsafe-url": full,
        "same-origin": full if same else None,
        "origin": origin_only,
        "strict-origin": origin_only,
        "origin-when-cross-origin": full if same else origin_only,
        "strict-origin-when-cross-origin": full if same else origin_only,
    }[policy]


def post_account(amami, headers: dict):
    """① 次へ with the right account and a valid CSRF token, and the given request headers."""
    return amami.client.post("/amami/flow/account", headers=headers,
                             data={"csrf_token": amami.csrf, "branch": "115", "account_type": "1",
                                   "account_number": "1100026"})


def test_https_post_with_the_referer_our_policy_lets_a_browser_send_is_accepted(amami):
    screen = amami.start()
    assert screen.request.url == SCREEN_ONE
    referer = referer_sent(screen.headers["Referrer-Policy"], SCREEN_ONE, SCREEN_ONE)
    assert referer is not None, f"under {screen.headers['Referrer-Policy']!r} a browser sends no Referer to us"
    headers = {"Referer": referer, "Origin": ORIGIN}
    response = post_account(amami, headers)
    assert response.status_code == 303, text_of(response)[:300]
    assert response.headers["Location"].endswith("/amami/flow/customer")


def test_https_htmx_post_with_the_referer_our_policy_lets_a_browser_send_is_accepted(amami):
    screen = amami.start()
    referer = referer_sent(screen.headers["Referrer-Policy"], SCREEN_ONE, SCREEN_ONE)
    response = post_account(amami, {"Referer": referer, "Origin": ORIGIN, "HX-Request": "true"})
    assert response.status_code < 400, text_of(response)[:300]
    assert amami.get("flow/customer").status_code == 200  # on ②


def test_our_referrer_policy_sends_no_referrer_to_other_origins(amami):
    """The fintech app's redirect URI (⑥'s 303), the union's published terms: none learns our URLs."""
    policy = amami.start().headers["Referrer-Policy"]
    for elsewhere in ("https://app.example/cb", "https://www.example.jp/api-terms", "http://localhost/"):
        assert referer_sent(policy, SCREEN_ONE, elsewhere) is None, elsewhere


@pytest.mark.parametrize("headers, reason", [
    ({"Referer": "https://evil.example/amami/flow/account", "Origin": "https://evil.example"}, WRONG_REFERRER),
    ({"Referer": "https://localhost.evil.example/", "Origin": "https://localhost.evil.example"}, WRONG_REFERRER),
    ({"Referer": "http://localhost/amami/flow/account", "Origin": "http://localhost"}, WRONG_REFERRER),
    ({"Origin": "https://evil.example"}, MISSING_REFERRER),
    ({"Origin": "null"}, MISSING_REFERRER),
    ({}, MISSING_REFERRER),
], ids=["other-site", "lookalike-host", "plain-http", "origin-only", "null-origin", "nothing"])
def test_https_post_from_another_origin_is_refused_even_with_a_valid_token(amami, headers, reason, caplog):
    amami.start()
    response = post_account(amami, headers)
    assert response.status_code == 400
    assert messages.FORM_EXPIRED in text_of(response)
    assert reason in caplog.text  # refused for this reason (logged; the customer gets the plain message)
    assert amami.get("flow/customer").status_code != 200  # not on ②
    assert amami.get("flow/account").status_code == 200  # still on ①
