"""A prepared customer on a phone (390×844, touch), ① to ⑥ for each union: every tap target is at
least 44×44 CSS px (inputs 48 px high), every hint at least 14 px at 4.5:1 contrast, and the first
field of ① is on the first screen. The walk counts the customer's taps and keystrokes and writes
them with the smallest target and ①'s first field position to e2e/artifacts/ergonomics-*.json,
the figures issue 11's note reports.
"""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from conftest import ARTIFACTS, TENANTS, Customer, screenshot, title
from test_full_flow import pin_of

pytestmark = pytest.mark.parametrize("tenant", TENANTS)

MIN_TARGET = 44
MIN_INPUT_HEIGHT = 48
MIN_HINT_PX = 14
MIN_CONTRAST = 4.5

# Every visible control a finger may need: its box, or for a checkbox its label's box.
_TARGETS_JS = """() => {
  const out = [];
  const seen = new Set();
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, summary')) {
    let box = el;
    if (el.type === 'checkbox' || el.type === 'radio') box = el.closest('label') || el;
    if (seen.has(box)) continue;
    seen.add(box);
    const r = box.getBoundingClientRect();
    const style = getComputedStyle(box);
    if (r.width === 0 || r.height === 0 || style.visibility === 'hidden') continue;
    out.push({what: (box.tagName + ' ' + (box.innerText || box.name || box.id || '')).trim().slice(0, 40),
              tag: el.tagName, type: el.type || '', width: r.width, height: r.height});
  }
  return out;
}"""

_HINTS_JS = """() => {
  const rgb = c => c.match(/[\\d.]+/g).map(Number);
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll('.field-hint, .field-note, .note, .site-footer p, .site-footer span')]
    .filter(el => el.getBoundingClientRect().height > 0)
    .map(el => ({text: el.innerText.slice(0, 30), px: parseFloat(getComputedStyle(el).fontSize),
                 fg: rgb(getComputedStyle(el).color).slice(0, 3), bg: background(el)}));
}"""


def contrast(fg, bg) -> float:
    def luminance(rgb):
        def channel(c):
            c = c / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = map(channel, rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class Hands:
    """What the customer does, counted: a tap per press or field focused, two per drop-down (open,
    pick), a key per character typed."""

    def __init__(self, page: Page, tenant: str, javascript: bool):
        self.page, self.taps, self.keys = page, 0, 0
        self.tenant, self.javascript = tenant, javascript
        self.smallest: tuple[float, str, str] | None = None
        self.problems: list[str] = []

    def tap(self, locator) -> None:
        locator.click()
        self.taps += 1

    def type(self, locator, text: str) -> None:
        locator.click()
        locator.press_sequentially(text)
        self.taps += 1
        self.keys += len(text)

    def choose(self, locator, value: str) -> None:
        locator.select_option(value)
        self.taps += 2

    def check_screen(self, name: str, docs: str | None = None) -> None:
        if docs and self.javascript:
            screenshot(self.page, f"{self.tenant}-{docs}", docs=f"{self.tenant}-{docs}")
        for t in self.page.evaluate(_TARGETS_JS):
            side = min(t["width"], t["height"])
            if self.smallest is None or side < self.smallest[0]:
                self.smallest = (side, name, t["what"])
            if side < MIN_TARGET:
                self.problems.append(f"{name}: {t['what']!r} is {t['width']:.0f}×{t['height']:.0f}")
            if t["tag"] in ("INPUT", "SELECT") and t["type"] not in ("checkbox", "radio") \
                    and t["height"] < MIN_INPUT_HEIGHT:
                self.problems.append(f"{name}: input {t['what']!r} is {t['height']:.0f} px high")
        for h in self.page.evaluate(_HINTS_JS):
            if h["px"] < MIN_HINT_PX:
                self.problems.append(f"{name}: text {h['text']!r} is {h['px']} px")
            if contrast(h["fg"], h["bg"]) < MIN_CONTRAST:
                self.problems.append(f"{name}: text {h['text']!r} has contrast {contrast(h['fg'], h['bg']):.2f}")


def first_field_top(page: Page) -> float:
    return page.get_by_label("店番").bounding_box()["y"]


def test_a_prepared_customer_taps_big_targets_and_reads_clear_hints_from_1_to_6(
        page, start_flow, customers, tenant, javascript):
    c: Customer = customers[tenant]
    hands = Hands(page, tenant, javascript)
    start_flow(tenant)
    hands.check_screen("①", "1-account")
    field_y = first_field_top(page)
    field_bottom = field_y + page.get_by_label("店番").bounding_box()["height"]

    hands.type(page.get_by_label("店番"), c.branch)
    hands.choose(page.get_by_label("科目"), c.account_type)
    hands.type(page.get_by_label("口座番号"), c.number)
    hands.tap(page.get_by_role("button", name="次へ"))
    expect(title(page)).to_have_text("API連携認証（お客様情報入力）")
    hands.check_screen("②", "2-customer")

    year, month, day = c.birth_date.split("-")
    hands.type(page.get_by_label("お名前"), c.name_kana)
    hands.type(page.get_by_label("生年月日（西暦 年）"), year)
    hands.choose(page.get_by_label("生年月日（月）"), month)
    hands.choose(page.get_by_label("生年月日（日）"), day)
    hands.type(page.get_by_label("電話番号"), c.phone)
    hands.type(page.get_by_label(re.compile(r"メールアドレス$")), "taro@example.jp")
    hands.type(page.get_by_label("メールアドレス（確認用）"), "taro@example.jp")
    hands.tap(page.get_by_role("button", name="次へ"))
    expect(title(page)).to_have_text("API連携認証（電話番号の確認）")
    hands.check_screen("③", "3-phone")

    hands.tap(page.get_by_role("button", name="電話番号の決定"))
    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    hands.check_screen("④", "4-call")
    # The call itself: the customer taps the toll-free number (the sandbox's button stands in for
    # the phone's dialler and the carrier), then 確定する.
    hands.tap(page.get_by_role("button", name="（デモ）この番号から発信する"))
    expect(page.get_by_role("status")).to_contain_text("着信を確認しました。")
    hands.check_screen("④ 着信確認", "4-call-confirmed")
    hands.tap(page.get_by_role("button", name="確定する"))
    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")
    hands.check_screen("⑤", "5-pin")

    hands.type(page.get_by_label("キャッシュカードの暗証番号"), pin_of(c))
    hands.tap(page.get_by_role("button", name="次へ"))
    expect(title(page)).to_have_text("API連携認証（情報連携認可）")
    hands.check_screen("⑥", "6-consent")
    hands.tap(page.get_by_label("当信用組合のAPI利用規定を確認し、同意します。"))
    hands.tap(page.get_by_role("button", name="許可する"))
    page.wait_for_url("**/demo/callback**")

    report = {"tenant": tenant, "javascript": javascript, "taps": hands.taps, "keys": hands.keys,
              "smallest_target_px": round(hands.smallest[0], 1), "smallest_target": hands.smallest[1:],
              "first_field_y_on_1": round(field_y), "viewport_height": page.viewport_size["height"]}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"ergonomics-{tenant}-{'js' if javascript else 'nojs'}.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False))

    assert not hands.problems, "\n".join(hands.problems)
    assert field_bottom <= page.viewport_size["height"], f"① 店番 ends at y={field_bottom:.0f}: below the first screen"
