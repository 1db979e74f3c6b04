"""The axe-core helper (e2e/a11y.py) does find what it is there to find: a screen with an image
without alt text and an unlabelled field fails the audit, a clean one passes."""
from __future__ import annotations

from urllib.parse import quote

from a11y import axe_violations

BROKEN = ('<!doctype html><html lang="ja"><title>t</title><main><h1>見出し</h1>'
          '<img src="x.png"><input type="text"></main></html>')
CLEAN = '<!doctype html><html lang="ja"><title>t</title><main><h1>見出し</h1><p>本文</p></main></html>'


def test_axe_reports_violations_and_passes_a_clean_screen(page):
    page.goto("data:text/html;charset=utf-8," + quote(BROKEN))
    found = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "label"} <= found
    page.goto("data:text/html;charset=utf-8," + quote(CLEAN))
    assert axe_violations(page) == []
