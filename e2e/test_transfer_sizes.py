"""What a customer's phone downloads, measured in the browser (issue 9): screen ① in a fresh
browser at most 25 KB on the wire, each later screen (②–⑥, in the same browser) at most 6 KB of
new bytes, the stylesheets, script and logo never fetched or revalidated again.

Bytes are Chromium's own count (CDP `Network.loadingFinished.encodedDataLength`: response headers
plus the body as sent, compressed or not), the figure DevTools shows as "transferred". A screen's
bytes are everything received from the click that leads to it until it is shown and the network is
quiet; ④'s call and its status polls (every 2 s, as many as the wait takes) are counted apart. The
figures are printed and written to e2e/artifacts/transfer.txt.
"""
from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import Page, expect

from conftest import (ARTIFACTS, TENANTS, enter_account, enter_customer, start_flow_in, title)
from test_full_flow import CALL_SEEN, pin_of

FIRST_SCREEN_BUDGET = 25_000
LATER_SCREEN_BUDGET = 6_000


@pytest.fixture
def javascript() -> bool:
    """Measured as most customers see it: with JavaScript (htmx)."""
    return True


@dataclasses.dataclass
class Response:
    url: str
    status: int = 0
    bytes: int = 0
    from_cache: bool = False
    encoding: str = ""


class TransferMeter:
    """Every response the page receives, with its bytes on the wire, from Chromium's network events."""

    def __init__(self, page: Page):
        self.page = page
        self.received: list[Response] = []  # in the order the requests were sent
        self._by_id: dict[str, Response] = {}
        self._counted = 0
        self.screens: list[tuple[str, list[Response]]] = []
        self.waits: list[tuple[str, list[Response]]] = []
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.on("Network.requestWillBeSent", self._sent)
        self.cdp.on("Network.requestServedFromCache", self._from_cache)
        self.cdp.on("Network.responseReceived", self._received)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.send("Network.enable")

    def _sent(self, e):
        hop, earlier = e.get("redirectResponse"), self._by_id.get(e["requestId"])
        if hop and earlier:  # a redirect keeps the request id: the hop's own bytes stay with its URL
            earlier.status, earlier.bytes = hop["status"], int(hop.get("encodedDataLength", 0))
        self._by_id[e["requestId"]] = response = Response(e["request"]["url"])
        self.received.append(response)

    def _response(self, e) -> Response:
        if e["requestId"] not in self._by_id:
            self._sent({"requestId": e["requestId"], "request": {"url": "?"}})
        return self._by_id[e["requestId"]]

    def _from_cache(self, e):
        self._response(e).from_cache = True

    def _received(self, e):
        r = self._response(e)
        r.url, r.status = e["response"]["url"], e["response"]["status"]
        r.encoding = next((v for k, v in e["response"]["headers"].items() if k.lower() == "content-encoding"), "")
        r.from_cache = r.from_cache or e["response"].get("fromDiskCache", False)

    def _finished(self, e):
        self._response(e).bytes = int(e["encodedDataLength"])

    def screen(self, name: str) -> list[Response]:
        """Close a screen's account: the responses to the requests sent since the last account closed."""
        return self._close(self.screens, name)

    def wait(self, name: str) -> list[Response]:
        """Close the account of what a screen did while the customer stayed on it (④'s polls)."""
        return self._close(self.waits, name)

    def _close(self, accounts: list, name: str) -> list[Response]:
        self.page.wait_for_load_state("networkidle")
        self.page.evaluate("0")  # let the CDP events already sent reach us
        new, self._counted = self.received[self._counted:], len(self.received)
        accounts.append((name, new))
        return new

    def report(self) -> str:
        lines = []
        for name, responses in [*self.screens, *self.waits]:
            lines.append(f"{name}: {total(responses):,} bytes in {sum(1 for r in responses if r.bytes)} responses")
            for r in responses:
                origin_path = r.url.split("/", 3)[-1].split("?")[0]
                how = "cache" if r.from_cache else r.encoding
                lines.append(f"    {r.bytes:>7,}  {r.status or '-'}  {how:<5}  /{origin_path}")
        return "\n".join(lines)


def total(responses: list[Response]) -> int:
    return sum(r.bytes for r in responses)


def assets(responses: list[Response]) -> list[Response]:
    return [r for r in responses if "/static/" in r.url or r.url.endswith(".css")]


@pytest.mark.parametrize("tenant", TENANTS)
def test_first_screen_fits_25kb_and_each_later_screen_6kb(page, live_server, fintech_apps, customers, tenant):
    c = customers[tenant]
    meter = TransferMeter(page)

    start_flow_in(page, live_server, fintech_apps[tenant])
    first = meter.screen("① SOA201 (fresh browser)")
    enter_account(page, c)
    expect(title(page)).to_have_text("API連携認証（お客様情報入力）")
    meter.screen("② SOA202")
    enter_customer(page, c)
    expect(title(page)).to_have_text("API連携認証（電話番号の確認）")
    meter.screen("③ SOA208")
    page.get_by_role("button", name="電話番号の決定").click()
    expect(title(page)).to_have_text("API連携認証（電話番号認証）")
    meter.screen("④ SOA209")
    page.get_by_role("button", name="（デモ）この番号から発信する").click()
    expect(page.get_by_role("status")).to_contain_text(CALL_SEEN)
    meter.wait("(on ④: the demo call and the status polls until it is seen)")
    page.get_by_role("button", name="確定する").click()
    expect(title(page)).to_have_text("API連携認証（キャッシュカード暗証番号認証）")
    meter.screen("⑤ SOA211")
    page.get_by_label("キャッシュカードの暗証番号").fill(pin_of(c))
    page.get_by_role("button", name="次へ").click()
    expect(title(page)).to_have_text("API連携認証（情報連携認可）")
    meter.screen("⑥ SOA206")

    report = f"{tenant} (JavaScript on)\n{meter.report()}\n"
    print("\n" + report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "transfer.txt").open("a" if tenant != TENANTS[0] else "w", encoding="utf-8") as f:
        f.write(report + "\n")

    assert assets(first), "the first screen loaded no stylesheet or script: the meter saw nothing"
    assert total(first) <= FIRST_SCREEN_BUDGET, f"① took {total(first):,} bytes:\n{meter.report()}"
    for name, responses in meter.screens[1:]:
        assert total(responses) <= LATER_SCREEN_BUDGET, f"{name} took {total(responses):,} bytes:\n{meter.report()}"
    for name, responses in meter.screens[1:] + meter.waits:
        refetched = [r for r in assets(responses) if r.bytes or not r.from_cache]
        assert not refetched, f"{name} fetched or revalidated cached assets again: {refetched}"
