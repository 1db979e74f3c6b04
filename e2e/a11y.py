"""axe-core (vendor/axe-core/axe.min.js, 4.10.3, MPL-2.0, from `npm pack axe-core@4.10.3`) on a
screen the browser tests reached: `assert_no_axe_violations(page)`.

The screens' Content-Security-Policy rightly refuses a script it does not know, and a page with
JavaScript off cannot run one at all; so axe runs in a sibling browser context: the same phone, the
same cookies (the flow's handle), JavaScript on and CSP bypassed, opening the URL `page` is at.
The audit is of the screen as the server renders it there: call it on a screen whose GET changes
nothing. axe.run is started and then waited for with a timeout, never awaited blindly (a hung
evaluate would hang the suite).
"""
from __future__ import annotations

import pathlib

from playwright.sync_api import Page

AXE = pathlib.Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
PHONE_KEYS = ("viewport", "device_scale_factor", "is_mobile", "has_touch", "locale", "timezone_id")


def axe_violations(page: Page, *, timeout_ms: int = 30_000) -> list[dict]:
    """axe-core's violations on the screen at `page.url`: [{id, impact, help, nodes: [target…]}]."""
    from conftest import PHONE

    context = page.context.browser.new_context(**{k: PHONE[k] for k in PHONE_KEYS}, java_script_enabled=True,
                                                bypass_csp=True, ignore_https_errors=True,
                                                storage_state=page.context.storage_state())
    try:
        audit = context.new_page()
        audit.set_default_timeout(timeout_ms)
        audit.goto(page.url)
        audit.add_script_tag(path=str(AXE))
        audit.evaluate("""() => {
            window.__axeResult = null;
            axe.run(document, {resultTypes: ["violations"]})
               .then(r => { window.__axeResult = r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                                         nodes: v.nodes.map(n => n.target.join(" "))})); })
               .catch(e => { window.__axeResult = [{id: "axe-error", impact: "critical", help: String(e), nodes: []}]; });
        }""")
        audit.wait_for_function("window.__axeResult !== null", timeout=timeout_ms)
        return audit.evaluate("window.__axeResult")
    finally:
        context.close()


def assert_no_axe_violations(page: Page, *, timeout_ms: int = 30_000) -> None:
    violations = axe_violations(page, timeout_ms=timeout_ms)
    assert violations == [], "axe-core violations on " + page.url + ":\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'][:5])}" for v in violations)
