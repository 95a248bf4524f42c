"""The desk, as a trader uses it: the dashboard in Debian's Chromium at a laptop's
1400x900 and a phone's 390x844 (chart, book, tape, fills, equity, the ticket's costs,
the watch list from the server, shortcuts, and the phone layout's rules).

Driven by Playwright for Python as ``test_dashboard.py`` does (its browser helpers are
reused); every wait is bounded (``expect``, ``wait_for_function``), none is a sleep.
With ``TICKDESK_SCREENSHOT_DIR=docs`` the screenshot test keeps both layouts there.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from engine.config import FeedConfig, ServerConfig, SimulatedConfig
from tests.conftest import make_config, timeout

# (test_dashboard skips the module, and so this one, when chromium is missing)
from tests.e2e.test_dashboard import CHROMIUM, CHROMIUM_ARGS, Dash, ms
from tickdesk import Engine

DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
LAYOUTS = [pytest.param(DESKTOP, id="1400x900"), pytest.param(PHONE, id="390x844")]

#: Every element a finger or a pointer acts on, as the page draws it.
TAP_TARGETS_JS = """() => {
  const sel = 'a[href], button, input:not([type=radio]):not([type=checkbox]), select, ' +
              'textarea, label.side span, label.filter, tr[data-symbol]';
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest('[hidden]')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;          // not rendered
    if (getComputedStyle(el).visibility === 'hidden') continue;
    if (r.width < 44 || r.height < 44) {
      out.push(`${el.tagName.toLowerCase()}#${el.id || ''}.${el.className || ''} ` +
               `"${(el.textContent || el.value || '').trim().slice(0, 20)}" ` +
               `${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  return out;
}"""


class Desk(Dash):
    """A dashboard page that also counts every console error and failed request."""

    def __init__(self, page: Any) -> None:
        super().__init__(page)
        page.on("requestfailed", lambda req: self.problems.append(f"request failed: {req.url}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error" or "Content Security Policy" in msg.text:
            self.problems.append(f"console {msg.type}: {msg.text}")

    def inspect(self) -> dict[str, Any]:
        info: dict[str, Any] = self.page.evaluate("tickdesk.desk()")
        return info

    def wait_js(self, expression: str, seconds: float = 10) -> None:
        """Wait (bounded) until ``expression`` is true in the page (passed as a
        function: the page's CSP forbids evaluating strings)."""
        self.page.wait_for_function(f"() => ({expression})", timeout=ms(seconds))

    def no_horizontal_overflow(self) -> None:
        width = self.page.evaluate("document.documentElement.scrollWidth")
        inner = self.page.evaluate("window.innerWidth")
        assert width <= inner, f"the page is {width} px wide in a {inner} px window"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_desk(browser: Browser, viewport: dict[str, int]) -> Iterator[Desk]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    context.set_default_timeout(ms(10))
    expect.set_options(timeout=ms(10))
    try:
        yield Desk(context.new_page())
    finally:
        context.close()


@pytest.fixture(params=LAYOUTS)
def desk(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Desk]:
    yield from open_desk(browser, request.param)


@pytest.fixture
def laptop(browser: Browser) -> Iterator[Desk]:
    yield from open_desk(browser, DESKTOP)


def number(text: str) -> float:
    """A number as the page prints it (thousands commas, a unicode minus)."""
    found = re.search(r"[−-]?[0-9][0-9,]*(?:\.[0-9]+)?", text)
    assert found, text
    return float(found.group(0).replace(",", "").replace("−", "-"))


def market_fills(engine: Engine, count: int, symbol: str = "ETHUSDT") -> list[dict[str, Any]]:
    """``count`` market buys through an in-process session of the same (open-mode)
    account; returns the account's fills as the server lists them, newest first."""
    with engine.connect() as session:
        session.send({"action": "subscribe_ticker", "symbol": symbol, "id": "s"})
        session.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout=timeout(5))
        for i in range(count):
            session.send({"action": "place_order", "symbol": symbol, "side": "BUY",
                          "type": "MARKET", "quantity": "0.01", "id": f"o{i}"})
            session.wait_for(lambda m, i=i: m.get("id") == f"o{i}"
                             and m.get("executionType") == "TRADE", timeout=timeout(5))
        session.send({"action": "get_fills", "limit": 1000, "id": "f"})
        reply = session.wait_for(lambda m: m.get("id") == "f", timeout=timeout(5))
    fills: list[dict[str, Any]] = reply["fills"]
    return fills


# ------------------------------------------------------------------ both layouts


def test_the_chart_renders_and_moves(engine: Engine, desk: Desk) -> None:
    desk.open(engine)
    expect(desk.status()).to_have_text("REAL-TIME")
    expect(desk.page.locator("#chart-symbol")).to_have_text("BTCUSDT")   # the first watched
    canvas = desk.page.locator("#chart canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200
    desk.wait_js("tickdesk.desk().klines === 'loaded' && tickdesk.desk().bars >= 1")
    first = desk.inspect()["last"]
    # It moves: the candle follows the trades, and the drawn image changes.
    desk.page.evaluate("window.before = tickdesk.chartImage()")
    desk.wait_js("tickdesk.chartImage() !== window.before")
    desk.wait_js(f"tickdesk.desk().last.close !== {first['close']}"
                 f" || tickdesk.desk().last.time !== {first['time']}")
    # The attribution the licence asks for is on the chart.
    expect(desk.page.locator("#chart a#tv-attr-logo")).to_be_visible()
    # Another interval: asks again, still draws.
    desk.page.click('#chart-intervals button[data-interval="5m"]')
    expect(desk.page.locator('#chart-intervals button[data-interval="5m"]')).to_have_attribute(
        "aria-pressed", "true")
    desk.wait_js("tickdesk.desk().interval === '5m' && tickdesk.desk().bars >= 1")
    desk.no_horizontal_overflow()
    desk.assert_no_problems()


def test_the_chart_starts_from_the_engines_klines_and_shows_earlier_fills(
        engine: Engine, laptop: Desk) -> None:
    fills = market_fills(engine, 2, symbol="BTCUSDT")          # before the page opens
    with engine.connect() as session:
        session.send({"action": "get_klines", "symbol": "BTCUSDT", "interval": "1m",
                      "id": "k"})
        klines = session.wait_for(lambda m: m.get("id") == "k", timeout=timeout(5))["klines"]
    assert klines, "the engine has built no 1m bar yet"
    laptop.open(engine)
    laptop.wait_js("tickdesk.desk().klines === 'loaded'")
    shown = laptop.page.evaluate("tickdesk.desk().firstBars")
    # the page's first candles are the engine's, opens and times as the server sent them
    for bar, row in zip(shown, klines, strict=False):
        assert bar["time"] * 1000 == row[0] and bar["open"] == float(row[1])
    laptop.wait_js(f"tickdesk.desk().markers >= {len(fills)}")   # one arrow per earlier fill
    laptop.assert_no_problems()


def test_an_order_from_the_ticket_appears_in_orders_fills_and_on_the_chart(
        engine: Engine, desk: Desk) -> None:
    page = desk.page
    desk.open(engine)
    expect(desk.status()).to_have_text("REAL-TIME")
    desk.place(type="MARKET", side="BUY", quantity="0.01")
    expect(desk.result()).to_contain_text("filled")
    expect(page.locator("#order-rows tr").filter(has_text="MARKET")).to_contain_text("FILLED")
    fill_row = page.locator("#fill-rows tr")
    expect(fill_row).to_have_count(1)
    expect(fill_row).to_contain_text("BTCUSDT")
    expect(fill_row).to_contain_text("BUY")
    desk.wait_js("tickdesk.desk().markers >= 1")          # the fill, on its candle
    # A working order is a price line; cancelling it takes the line away.
    desk.place(type="LIMIT", side="BUY", quantity="0.01", t_price="50000")
    expect(desk.result()).to_contain_text("accepted as order #")
    desk.wait_js("tickdesk.desk().priceLines === 1")
    row = page.locator("#order-rows tr").filter(has_text="LIMIT")
    cancel = row.get_by_role("button", name="Cancel")
    cancel.scroll_into_view_if_needed()
    box = cancel.bounding_box()
    width = page.evaluate("window.innerWidth")
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    cancel.click()
    expect(row).to_contain_text("CANCELED")
    desk.wait_js("tickdesk.desk().priceLines === 0")
    desk.no_horizontal_overflow()
    desk.assert_no_problems()


def test_book_tape_and_equity_fill_in(engine: Engine, desk: Desk) -> None:
    page = desk.page
    desk.open(engine)
    expect(desk.status()).to_have_text("REAL-TIME")
    asks = page.locator("#book-asks tr:not([hidden])")
    bids = page.locator("#book-bids tr:not([hidden])")
    expect(asks).to_have_count(5)                    # the simulated market quotes 5 a side
    expect(bids).to_have_count(5)
    # (both read in one task: the book changes 20 times a second)
    ask_text, bid_text = page.evaluate("""() => [
        document.querySelector('#book-asks tr:not([hidden]):last-child td').textContent,
        document.querySelector('#book-bids tr:not([hidden]) td').textContent]""")
    assert number(bid_text) < number(ask_text)
    # depth bars: the deepest level of the fuller side is the whole width
    depths = page.evaluate("[...document.querySelectorAll('#book-bids tr:not([hidden]), "
                           "#book-asks tr:not([hidden])')].map(r => "
                           "parseFloat(r.style.getPropertyValue('--depth')))")
    assert max(depths) == 100 and min(depths) > 0
    expect(page.locator("#book-spread")).to_contain_text("spread")
    expect(page.locator("#tape-rows tr").first).to_be_attached()
    desk.wait_js("tickdesk.desk().tape >= 3")
    expect(page.locator("#tape-rows tr").first.locator("td").nth(1)).not_to_have_text("—")
    desk.wait_js("tickdesk.desk().equityPoints >= 2")      # live points every 2 s at most
    expect(page.locator("#equity-last")).to_have_text(re.compile(r"^10,000\.00$"))
    desk.no_horizontal_overflow()
    desk.assert_no_problems()


def test_the_ticket_shows_bid_ask_notional_fee_and_filters(engine: Engine, desk: Desk) -> None:
    page = desk.page
    desk.open(engine)
    expect(desk.status()).to_have_text("REAL-TIME")
    expect(page.locator("#ticket-filters")).to_contain_text("step 0.000001")
    expect(page.locator("#t-ask-price")).not_to_have_text("—")
    page.fill("#t-quantity", "0.5")
    page.select_option("#t-type", "LIMIT")
    page.fill("#t-price", "80000")
    # notional and fee from the documented rule: quantity x price, fee_bps = 10 of it
    expect(page.locator("#t-notional")).to_have_text("40,000.00 USDT")
    expect(page.locator("#t-fee")).to_have_text("40.00 USDT (10 bps)")
    expect(page.locator("#ticket-warn")).to_have_text("")
    page.fill("#t-quantity", "0.0000001")               # below BTCUSDT's LOT_SIZE minimum
    expect(page.locator("#ticket-warn")).to_contain_text("quantity below 0.000001 (LOT_SIZE)")
    expect(page.locator("#ticket-warn")).to_contain_text("notional below 10")
    page.fill("#t-quantity", "0.0100005")               # not a multiple of the step
    expect(page.locator("#ticket-warn")).to_contain_text("not a multiple of 0.000001")
    # the bid button puts the bid in the limit price
    page.fill("#t-quantity", "0.01")
    page.select_option("#t-type", "MARKET")
    expect(page.locator("#t-bid")).to_be_visible()
    # (clicked and read in one task: the bid moves 20 times a second)
    price, bid = page.evaluate("""() => { document.getElementById('t-bid').click();
        return [document.getElementById('t-price').value,
                tickdesk.state.watch.get('BTCUSDT').last.bid]; }""")
    assert float(price) == bid
    expect(page.locator("#t-type")).to_have_value("LIMIT")     # a price makes it a limit
    desk.no_horizontal_overflow()
    desk.assert_no_problems()


# ------------------------------------------------------------------ the phone


def test_phone_nothing_overflows_and_every_target_is_44_px(engine: Engine,
                                                           browser: Browser) -> None:
    for phone in open_desk(browser, PHONE):
        page = phone.page
        phone.open(engine)
        expect(phone.status()).to_have_text("REAL-TIME")
        phone.place(type="MARKET", side="BUY", quantity="0.01")
        expect(page.locator("#position-rows tr")).to_have_count(1)
        phone.place(type="LIMIT", side="BUY", quantity="0.01", t_price="50000")
        expect(page.locator("#order-rows tr")).to_have_count(2)
        expect(page.locator("#fill-rows tr")).to_have_count(1)
        for type_ in ("MARKET", "STOP_LOSS_LIMIT", "OCO", "BRACKET"):   # every field shown
            page.select_option("#t-type", type_)
            phone.no_horizontal_overflow()
            assert page.evaluate(TAP_TARGETS_JS) == [], type_
        # every section is reachable from the bar of links at the top
        for link, section in (("Orders", "#sec-orders"), ("Fills", "#sec-fills"),
                              ("Book", "#sec-book"), ("Chart", "#sec-chart")):
            page.locator(".jump").get_by_role("link", name=link).click()
            expect(page.locator(section)).to_be_in_viewport()
        phone.assert_no_problems()


# ------------------------------------------------------------------ the laptop


def test_fill_history_pages_and_downloads_as_csv(engine: Engine, laptop: Desk) -> None:
    page = laptop.page
    reference = market_fills(engine, 27)                      # the server's own list
    laptop.open(engine)
    expect(laptop.status()).to_have_text("REAL-TIME")
    rows = page.locator("#fill-rows tr")
    expect(rows).to_have_count(25)
    ids = [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.fill)")]
    assert ids == [f["fillId"] for f in reference[:25]]        # newest first
    page.click("#fills-older")
    expect(rows).to_have_count(2)
    assert [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.fill)")] == [
        f["fillId"] for f in reference[25:]]
    expect(page.locator("#fills-older")).to_be_disabled()
    page.click("#fills-newer")
    expect(rows).to_have_count(25)
    with page.expect_download(timeout=ms(10)) as info:
        page.click("#fills-csv")
    path = info.value.path()
    table = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert [int(r["fillId"]) for r in table] == sorted(f["fillId"] for f in reference)
    by_id = {f["fillId"]: f for f in reference}
    for r in table:
        f = by_id[int(r["fillId"])]
        assert float(r["price"]) == f["price"] and float(r["quantity"]) == f["quantity"]
        assert float(r["fee"]) == f["fee"] and r["symbol"] == "ETHUSDT" and r["side"] == "BUY"
    assert info.value.suggested_filename == "tickdesk-fills-default.csv"
    laptop.assert_no_problems()


def test_the_watch_list_starts_from_the_servers_symbols_and_is_remembered(
        laptop: Desk) -> None:
    page = laptop.page
    served = ("SOLUSDT", "XRPUSDT", "BTCUSDT")
    cfg = make_config(feed=FeedConfig(symbols=served, simulated=SimulatedConfig(seed=5,
                                                                              ticks_per_second=20)))
    with Engine(cfg) as engine:
        laptop.open(engine)
        rows = page.locator("#watch-rows tr")
        expect(rows).to_have_count(3)
        assert rows.evaluate_all("rs => rs.map(r => r.dataset.symbol)") == list(served)
        expect(laptop.price("XRPUSDT")).not_to_have_text("—")
        expect(page.locator("#chart-symbol")).to_have_text("SOLUSDT")
        page.get_by_role("button", name="Remove XRPUSDT").click()
        expect(rows).to_have_count(2)
        page.reload()
        expect(laptop.status()).to_have_text("REAL-TIME")
        expect(rows).to_have_count(2)                 # remembered, not the server's again
        assert rows.evaluate_all("rs => rs.map(r => r.dataset.symbol)") == ["SOLUSDT", "BTCUSDT"]
    laptop.assert_no_problems()


def test_keyboard_shortcuts(engine: Engine, laptop: Desk) -> None:
    page = laptop.page
    laptop.open(engine)
    expect(laptop.status()).to_have_text("REAL-TIME")
    expect(page.locator("#chart-symbol")).to_have_text("BTCUSDT")
    page.keyboard.press("j")
    expect(page.locator("#chart-symbol")).to_have_text("ETHUSDT")
    expect(page.locator("#t-symbol")).to_have_value("ETHUSDT")
    page.keyboard.press("k")
    expect(page.locator("#chart-symbol")).to_have_text("BTCUSDT")
    page.keyboard.press("4")
    laptop.wait_js("tickdesk.desk().interval === '1h'")
    page.keyboard.press("s")
    expect(page.locator("#t-submit")).to_have_text(re.compile("^Sell BTCUSDT"))
    expect(page.locator("#t-quantity")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("l")
    expect(page.locator("#t-type")).to_have_value("LIMIT")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()
    page.keyboard.press("/")
    expect(page.locator("#watch-symbol")).to_be_focused()
    page.keyboard.type("j")                       # typing in a field is not a shortcut
    expect(page.locator("#chart-symbol")).to_have_text("BTCUSDT")
    laptop.assert_no_problems()


def test_screenshots_of_both_layouts(browser: Browser, tmp_path: Path) -> None:
    keep = os.environ.get("TICKDESK_SCREENSHOT_DIR")
    for name, viewport in (("dashboard.png", DESKTOP), ("dashboard-phone.png", PHONE)):
        with Engine(make_config()) as engine:     # a fresh account for each picture
            market_fills(engine, 3, symbol="BTCUSDT")
            take_screenshot(engine, browser, viewport, tmp_path / name, keep)


def take_screenshot(engine: Engine, browser: Browser, viewport: dict[str, int], out: Path,
                    keep: str | None) -> None:
    """Trade a little from the page, then photograph it (kept in ``keep`` if given)."""
    for shot in open_desk(browser, viewport):
        page = shot.page
        shot.open(engine)
        expect(shot.status()).to_have_text("REAL-TIME")
        shot.place(type="LIMIT", side="BUY", quantity="0.02", t_price="85000")
        expect(shot.result()).to_contain_text("accepted")
        shot.place(type="MARKET", side="SELL", symbol="ETHUSDT", quantity="0.5")
        expect(page.locator("#position-rows tr")).to_have_count(2)
        shot.place(type="MARKET", side="BUY", symbol="BTCUSDT", quantity="0.01")
        expect(shot.result()).to_contain_text("filled")
        page.click('#watch-rows tr[data-symbol="BTCUSDT"]')
        page.select_option("#t-type", "LIMIT")
        page.fill("#t-quantity", "0.05")
        page.fill("#t-price", "85500")
        shot.wait_js("tickdesk.desk().tape >= 8 && tickdesk.desk().markers >= 1")
        sparks = page.locator("#watch-rows polyline.up, #watch-rows polyline.down")
        expect(sparks).to_have_count(4)
        page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
        expect(page.locator("#sec-chart")).to_be_in_viewport()
        data = page.screenshot(full_page=viewport is DESKTOP)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
        out.write_bytes(data)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(out, Path(keep) / out.name)
        shot.assert_no_problems()


def test_after_a_restart_the_book_tape_and_chart_come_back(laptop: Desk) -> None:
    page = laptop.page
    first = Engine(make_config()).start()
    port = first.port
    try:
        laptop.open(first)
        expect(laptop.status()).to_have_text("REAL-TIME")
        expect(page.locator("#book-bids tr:not([hidden])")).to_have_count(5)
        laptop.wait_js("tickdesk.desk().tape >= 1")
    finally:
        first.stop()
    expect(laptop.status()).to_have_text("DISCONNECTED")
    page.evaluate("window.tapeBefore = document.querySelector('#tape-rows tr').textContent")
    second = Engine(make_config(server=ServerConfig(port=port))).start()
    try:
        expect(laptop.status()).to_have_text("REAL-TIME", timeout=ms(20))
        # the book subscription and the candles were asked for again on the new socket
        laptop.wait_js("document.querySelector('#tape-rows tr').textContent !== window.tapeBefore")
        expect(page.locator("#book-bids tr:not([hidden])")).to_have_count(5)
        laptop.wait_js("tickdesk.desk().bars >= 1 && tickdesk.desk().klines !== 'loading'")
    finally:
        second.stop()
    # (the browser reports each refused reconnect attempt: expected while it was down)
    assert [p for p in laptop.problems if "WebSocket connection to" not in p] == []
