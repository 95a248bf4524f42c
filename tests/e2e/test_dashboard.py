"""The dashboard in headless Chromium, driven by Playwright for Python.

Uses Debian's Chromium at ``/usr/bin/chromium`` (``.ci/run`` installs it;
``playwright install`` is never used). Every wait is bounded (Playwright's
``expect`` and ``wait_for_*``), none is a sleep. Set ``TICKDESK_SCREENSHOT_DIR``
to keep a copy of the screenshot the last test takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium "
                "(apt-get install chromium; .ci/run does it)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from actors.supervisor import FeedStatusReport  # noqa: E402
from engine.config import (  # noqa: E402
    AccountConfig,
    FeedConfig,
    IntervalsConfig,
    ServerConfig,
    SimulatedConfig,
)
from engine.protocol.symbols import SYMBOL_PATTERN  # noqa: E402
from tests.conftest import make_config, timeout  # noqa: E402
from tickdesk import Engine  # noqa: E402

#: As the machine notes say: no network chatter, no sandbox (root), no GPU.
#: Playwright gives every launch a new, empty profile (--user-data-dir).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def ms(seconds: float) -> float:
    """A Playwright timeout (ms), scaled like every other test timeout."""
    return timeout(seconds) * 1000


class Dash:
    """A page of the dashboard plus what it reported (uncaught errors, CSP violations)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        text = msg.text
        if "Content Security Policy" in text or "Uncaught" in text:
            self.problems.append(f"console: {text}")

    def open(self, engine: Engine) -> None:
        self.page.goto(f"http://127.0.0.1:{engine.port}/")

    def status(self) -> Any:
        return self.page.locator("#status")

    def price(self, symbol: str) -> Any:
        return self.page.locator(f'#watch-rows tr[data-symbol="{symbol}"] .price')

    def place(self, *, type: str = "MARKET", side: str = "BUY", symbol: str = "BTCUSDT",
              quantity: str = "0.01", **inputs: str) -> None:
        """Fill the ticket and submit it; ``inputs`` maps an input id to its text."""
        page = self.page
        page.fill("#t-symbol", symbol)
        page.click(f"#ticket label.side.{side.lower()}")
        page.select_option("#t-type", type)
        page.fill("#t-quantity", quantity)
        for input_id, value in inputs.items():
            if input_id.endswith("_type"):
                page.select_option("#" + input_id[:-5].replace("_", "-") + "-type", value)
            else:
                page.fill("#" + input_id.replace("_", "-"), value)
        page.click("#t-submit")

    def result(self) -> Any:
        return self.page.locator("#ticket-result")

    def assert_no_problems(self) -> None:
        assert not self.problems, self.problems


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def dash(browser: Browser) -> Iterator[Dash]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(ms(10))
    expect.set_options(timeout=ms(10))
    try:
        yield Dash(context.new_page())
    finally:
        context.close()


def test_realtime_prices_and_a_market_order_from_the_ticket(engine: Engine, dash: Dash) -> None:
    dash.open(engine)
    expect(dash.status()).to_have_text("REAL-TIME")
    expect(dash.status()).to_have_attribute("data-state", "realtime")
    price = dash.price("BTCUSDT")
    expect(price).not_to_have_text("—")
    first = price.inner_text()
    expect(price).not_to_have_text(first)              # prices move
    expect(dash.page.locator("#rtt")).to_have_text(re.compile(r"^[0-9.]+ ms$"))  # ping/PONG
    expect(dash.page.locator("#account")).to_have_text("default")

    dash.place(type="MARKET", side="BUY", quantity="0.01")
    expect(dash.result()).to_contain_text("order #")
    expect(dash.result()).to_have_attribute("data-kind", "ok")
    order_row = dash.page.locator("#order-rows tr").filter(has_text="MARKET")
    expect(order_row).to_have_count(1)
    expect(order_row).to_contain_text("FILLED")
    expect(dash.page.locator("#activity")).to_contain_text("TRADE")
    position = dash.page.locator("#position-rows tr").filter(has_text="BTCUSDT")
    expect(position).to_contain_text("LONG")
    expect(position).to_contain_text("0.01")
    expect(dash.page.locator('#portfolio dd[data-key="fees"]')).not_to_have_text("—")
    expect(dash.page.locator('#portfolio dd[data-key="positionsCount"]')).to_have_text("1")
    dash.assert_no_problems()


def test_rejections_and_errors_are_shown(engine: Engine, dash: Dash) -> None:
    dash.open(engine)
    expect(dash.status()).to_have_text("REAL-TIME")
    # A LIMIT_MAKER buy far above the market (about 86000) would match at once.
    dash.place(type="LIMIT_MAKER", side="BUY", quantity="0.0001", t_price="100000")
    expect(dash.result()).to_contain_text("rejected — ORDER_WOULD_MATCH_IMMEDIATELY")
    expect(dash.result()).to_have_attribute("data-kind", "error")
    expect(dash.page.locator("#activity")).to_contain_text("ORDER_WOULD_MATCH_IMMEDIATELY")
    # A bad quantity is an ERROR naming the field.
    dash.place(type="MARKET", quantity="0")
    expect(dash.result()).to_contain_text("BAD_REQUEST")
    expect(dash.result()).to_contain_text("quantity")
    # An OCO whose prices are on the wrong sides is REJECTED as a list.
    dash.place(type="OCO", side="SELL", quantity="0.01",
               oco_above_type="LIMIT_MAKER", oco_above_price="70000",
               oco_below_type="STOP_LOSS", oco_below_stop="100000")
    expect(dash.result()).to_contain_text("OCO_BAD_PRICES")
    dash.assert_no_problems()


def test_open_orders_lists_and_the_cancel_button(engine: Engine, dash: Dash) -> None:
    dash.open(engine)
    expect(dash.status()).to_have_text("REAL-TIME")
    dash.place(type="LIMIT", side="BUY", quantity="0.01", t_price="50000")
    expect(dash.result()).to_contain_text("accepted as order #")
    row = dash.page.locator("#order-rows tr").filter(has_text="LIMIT")
    expect(row).to_contain_text("NEW")
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_contain_text("CANCELED")
    expect(row.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(dash.page.locator("#activity")).to_contain_text("CANCELED")
    # Lists: a bracket with a resting LIMIT entry, then a trailing stop.
    dash.place(type="BRACKET", side="BUY", quantity="0.01", br_entry_type="LIMIT",
               br_entry_price="50000", br_tp_price="60000", br_sl_stop="45000")
    expect(dash.result()).to_contain_text("BRACKET #")
    expect(dash.page.locator("#order-rows tr").filter(has_text="BRACKET")).to_have_count(3)
    dash.place(type="TRAILING_STOP", side="SELL", quantity="0.001", t_delta="500")
    expect(dash.result()).to_contain_text("accepted as order #")
    expect(dash.page.locator("#order-rows tr").filter(has_text="TRAILING_STOP")).to_contain_text(
        "(500 bps)")
    dash.assert_no_problems()


def test_watch_list_add_and_remove(engine: Engine, dash: Dash) -> None:
    dash.open(engine)
    expect(dash.status()).to_have_text("REAL-TIME")
    rows = dash.page.locator("#watch-rows tr")
    expect(rows).to_have_count(4)
    dash.page.get_by_role("button", name="Remove SOLUSDT").click()
    expect(dash.page.locator('#watch-rows tr[data-symbol="SOLUSDT"]')).to_have_count(0)
    dash.page.fill("#watch-symbol", "solusdt")
    dash.page.press("#watch-symbol", "Enter")
    expect(dash.price("SOLUSDT")).not_to_have_text("—")
    dash.page.fill("#watch-symbol", "NOPEUSDT")
    dash.page.press("#watch-symbol", "Enter")
    expect(dash.page.locator("#notice")).to_contain_text("NOPEUSDT removed")
    expect(dash.page.locator('#watch-rows tr[data-symbol="NOPEUSDT"]')).to_have_count(0)
    # the page checks symbols by the rule the daemon serves with it
    dash.page.fill("#watch-symbol", "btc-usdt")
    dash.page.press("#watch-symbol", "Enter")
    expect(dash.page.locator("#notice")).to_contain_text(
        f'"btc-usdt" is not a symbol ({SYMBOL_PATTERN})')
    expect(dash.page.locator('#watch-rows tr[data-symbol="BTC-USDT"]')).to_have_count(0)
    dash.assert_no_problems()


def test_partial_when_the_feed_is_not_up(engine: Engine, dash: Dash) -> None:
    dash.open(engine)
    expect(dash.status()).to_have_text("REAL-TIME")
    engine._feed_status_changed(FeedStatusReport("RECONNECTING", 2, 1000, "test"))
    expect(dash.status()).to_have_text("PARTIAL")
    expect(dash.status()).to_have_attribute("data-state", "partial")
    expect(dash.page.locator("#feed")).to_contain_text("RECONNECTING")
    engine._feed_status_changed(FeedStatusReport("UP", 0, None, None))
    expect(dash.status()).to_have_text("REAL-TIME")


def test_partial_when_no_update_for_3_seconds(dash: Dash) -> None:
    quiet = make_config(feed=FeedConfig(simulated=SimulatedConfig(seed=7, ticks_per_second=0.05)),
                        intervals=IntervalsConfig(positions_s=600, portfolio_s=600))
    with Engine(quiet) as engine:
        dash.open(engine)
        expect(dash.page.locator("#feed")).to_contain_text("UP")
        expect(dash.status()).to_have_text("PARTIAL")
        expect(dash.page.locator("#status-detail")).to_contain_text("no fresh data")


def test_reconnects_after_a_restart_on_the_same_port(dash: Dash) -> None:
    first = Engine(make_config()).start()
    port = first.port
    try:
        dash.open(first)
        expect(dash.status()).to_have_text("REAL-TIME")
        dash.place(type="MARKET", quantity="0.002")
        expect(dash.page.locator("#order-rows tr")).to_have_count(1)
        expect(dash.page.locator("#position-rows tr")).to_have_count(1)
        dash.page.evaluate("window.sameDocument = 'yes'")
    finally:
        first.stop()
    expect(dash.status()).to_have_text("DISCONNECTED")
    expect(dash.status()).to_have_attribute("data-state", "disconnected")
    expect(dash.page.locator("#status-detail")).to_contain_text("retry in")
    second = Engine(make_config(server=ServerConfig(port=port))).start()
    try:
        expect(dash.status()).to_have_text("REAL-TIME", timeout=ms(20))
        assert dash.page.evaluate("window.sameDocument") == "yes"   # no reload
        price = dash.price("ETHUSDT")
        before = price.inner_text()
        expect(price).not_to_have_text(before)                    # resubscribed
        expect(dash.page.locator("#activity")).to_contain_text("RECONNECTED")
        # The new engine (no store) has a fresh account: the page re-fetched it.
        expect(dash.page.locator("#order-rows tr")).to_have_count(0)
        expect(dash.page.locator("#position-rows tr")).to_have_count(0)
        dash.place(type="MARKET", quantity="0.001")
        expect(dash.page.locator("#position-rows tr")).to_have_count(1)
    finally:
        second.stop()
    dash.assert_no_problems()


def _sent_actions(page: Page) -> list[str]:
    """Record the action of every command the page sends over its WebSockets."""
    sent: list[str] = []

    def on_socket(ws: Any) -> None:
        def on_frame(payload: Any) -> None:
            m = re.search(r'"action":"([a-z_]+)"', str(payload))
            if m:
                sent.append(m.group(1))
        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)
    return sent


@pytest.mark.parametrize("token", [None, "alice-token-123"], ids=["open", "token"])
def test_a_reconnect_restores_the_subscriptions_without_subscribing_again(
        dash: Dash, token: str | None) -> None:
    accounts = (AccountConfig(name="alice", token=token),) if token else ()
    with Engine(make_config(accounts=accounts)) as eng:
        if token:  # signed in, so the session is alice's
            dash.page.goto(f"http://127.0.0.1:{eng.port}/?token={token}")
            expect(dash.page.locator("#account")).to_have_text("alice")
        else:
            dash.open(eng)
        expect(dash.status()).to_have_text("REAL-TIME")
        expect(dash.page.locator("#book-bids tr:not([hidden])").first).to_be_visible()
        sent = _sent_actions(dash.page)
        for ch in eng.hub.channels():  # the server drops the connection
            ch.close(1001, "dropped by the test")
        expect(dash.page.locator("#activity")).to_contain_text("restored by the server",
                                                              timeout=ms(20))
        expect(dash.status()).to_have_text("REAL-TIME")
        price = dash.price("ETHUSDT")
        before = price.inner_text()
        expect(price).not_to_have_text(before)           # market data goes on
        assert "resume" in sent
        assert "subscribe_ticker" not in sent and "subscribe_book" not in sent, sent
        if token:
            assert "auth" in sent
    dash.assert_no_problems()


def test_account_state_is_fetched_again_after_an_internal_error(engine: Engine,
                                                              dash: Dash) -> None:
    with engine.connect() as session:
        session.send({"action": "place_order", "symbol": "ETHUSDT", "side": "BUY",
                      "type": "LIMIT", "quantity": 0.1, "price": 1000, "id": 1})
        assert session.wait_for(lambda m: m.get("id") == 1,
                                timeout=timeout(5))["executionType"] == "NEW"
    monitor = engine.order_monitor.ref
    engine.order_monitor.set(None)        # as while the supervisor restarts it
    try:
        dash.open(engine)
        expect(dash.page.locator("#activity")).to_contain_text("INTERNAL")
    finally:
        engine.order_monitor.set(monitor)
    expect(dash.page.locator("#order-rows tr").filter(has_text="LIMIT")).to_have_count(1)


def test_reconnect_delays_double_from_half_a_second_to_30_s_with_jitter(
        engine: Engine, dash: Dash) -> None:
    dash.open(engine)
    samples = dash.page.evaluate(
        "[...Array(12).keys()].map(a => [...Array(200)].map(() => tickdesk.backoffDelay(a)))")
    for attempt, delays in enumerate(samples):
        base = min(30_000, 500 * 2 ** attempt)
        assert all(base * 0.8 - 1 <= d <= min(30_000, base * 1.2 + 1) for d in delays), attempt
        assert len(set(delays)) > 10, f"attempt {attempt}: no jitter"


def test_asks_for_a_token_when_the_server_needs_one(dash: Dash) -> None:
    alice = AccountConfig(name="alice", token="alice-token-123")
    with Engine(make_config(accounts=(alice,))) as engine:
        dash.open(engine)
        expect(dash.status()).to_have_text("REAL-TIME")
        form = dash.page.locator("#auth-form")
        expect(form).to_be_visible()
        expect(dash.page.locator("#account")).to_have_text("token needed")
        dash.page.fill("#auth-token", "wrong-token-000")
        dash.page.press("#auth-token", "Enter")
        expect(dash.page.locator("#auth-error")).to_contain_text("refused")
        dash.page.fill("#auth-token", alice.token)
        dash.page.press("#auth-token", "Enter")
        expect(form).to_be_hidden()
        expect(dash.page.locator("#account")).to_have_text("alice")
        expect(dash.page.locator('#portfolio dd[data-key="balance"]')).to_have_text("10,000.00")
        # The token is kept for this tab's session: a reload signs in by itself.
        dash.page.reload()
        expect(dash.page.locator("#account")).to_have_text("alice")
        expect(form).to_be_hidden()
    dash.assert_no_problems()


def test_the_printed_url_with_a_token_signs_in_and_hides_the_token(dash: Dash) -> None:
    alice = AccountConfig(name="alice", token="alice-token-123")
    with Engine(make_config(accounts=(alice,))) as engine:
        dash.page.goto(f"http://127.0.0.1:{engine.port}/?token={alice.token}")
        expect(dash.page.locator("#account")).to_have_text("alice")
        expect(dash.page.locator("#auth-form")).to_be_hidden()
        assert "token" not in dash.page.url
    dash.assert_no_problems()
