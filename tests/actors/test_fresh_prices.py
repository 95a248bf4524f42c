"""A trade older than ``trading.max_tick_age_s`` sets no price (docs/trading.md,
"Prices that drive orders"): not the price a MARKET order fills at, not the
reference a placement is checked against, not the mark of a position.

The ticks are told straight to the OrderMonitorActor and the PortfolioActor
(what the FeedActor does) before the command that observes them is sent, so
each actor's mailbox holds the tick first: no waiting on timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.messages import TradeTick
from engine.config import Config, FeedConfig, IntervalsConfig, SimulatedConfig, StoreConfig
from engine.messages import Trade
from tickdesk.app import Engine

SYMBOL = "BTCUSDT"
WAIT = 5.0


@pytest.fixture
def engine() -> Iterator[Engine]:
    cfg = Config().with_overrides(
        store=StoreConfig(path=""),
        feed=FeedConfig(symbols=(SYMBOL,), simulated=SimulatedConfig(ticks_per_second=0.01)),
        intervals=IntervalsConfig(positions_s=3600, portfolio_s=3600),
    )
    running = Engine(cfg, listen=False).start()
    yield running
    running.stop()


def _ask(session: Any, rid: int, answer: str, **body: Any) -> dict[str, Any]:
    session.send({"id": rid, **body})
    while True:
        msg: dict[str, Any] = session.get(timeout=WAIT)
        if msg.get("id") == rid and msg["type"] in (answer, "ERROR"):
            assert msg["type"] == answer, msg
            return msg


def _tick(engine: Engine, price: Decimal, age_ms: int) -> None:
    now = engine.clock.now_ms()
    tick = TradeTick(Trade(SYMBOL, price, Decimal(1), now - age_ms, now - age_ms), now)
    engine.order_monitor.tell(tick)
    engine.portfolio.tell(tick)


def _market_fill(session: Any, rid: int) -> Decimal:
    rid_msg = {"action": "place_order", "symbol": SYMBOL, "side": "BUY", "type": "MARKET",
               "quantity": "0.01"}
    session.send({"id": rid, **rid_msg})
    while True:
        msg: dict[str, Any] = session.get(timeout=WAIT)
        if msg.get("id") == rid and msg.get("executionType") in ("TRADE", "REJECTED"):
            assert msg["executionType"] == "TRADE", msg
            return Decimal(str(msg["order"]["avgPrice"]))


def test_a_stale_trade_moves_no_fill_price_mark_or_placement_reference(engine: Engine) -> None:
    session = engine.connect()
    _ask(session, 1, "SUBSCRIBED", action="subscribe_ticker", symbol=SYMBOL)
    while True:  # the feed's first (fresh) trade
        msg = session.get(timeout=WAIT)
        if msg["type"] == "MARKET_UPDATE":
            fresh = Decimal(str(msg["price"]))
            break
    age = int(engine.config.trading.max_tick_age_s * 1000) * 2
    _tick(engine, fresh * 2, age)  # stale: ten seconds old
    assert _market_fill(session, 2) == fresh  # not the stale price
    positions = _ask(session, 3, "POSITION_UPDATE", action="get_positions")["positions"]
    assert Decimal(str(positions[0]["markPrice"])) == fresh
    # The placement reference is still the fresh price: a SELL stop at 1.5x it is
    # above the market and would trigger at once (at the stale 2x it would not).
    stop = _ask(session, 4, "ORDER_UPDATE", action="place_order", symbol=SYMBOL, side="SELL",
                type="STOP_LOSS", quantity="0.01", stopPrice=str(fresh * Decimal("1.5")))
    assert stop["order"]["rejectReason"] == "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY"
    # Control: the same trade, fresh, does move all three.
    _tick(engine, fresh * 2, 0)
    assert _market_fill(session, 5) == fresh * 2
    positions = _ask(session, 6, "POSITION_UPDATE", action="get_positions")["positions"]
    assert Decimal(str(positions[0]["markPrice"])) == fresh * 2
