"""get_fills and get_equity_history through a running Engine (in-process
sessions): what a client reads back is what was announced, with the realized
P&L and the equity computed here from the documented rules; the history
survives a restart on a database file.

Synchronisation is causal (tests/test_persistence.py's Client): the feed is
slowed to one pulse per 100 s and the test routes its own trades. The equity
sampler is driven by sending the PortfolioActor the Pulse its timer sends.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.messages import BookTick, Pulse, TradeTick
from actors.portfolio import PortfolioActor
from engine.config import Config, IntervalsConfig, TradingConfig
from engine.messages import BookTicker, Trade
from engine.money import Side
from engine.server.bus import InProcessBus
from engine.server.hub import Hub
from engine.store import Store
from engine.trading.history import EquityQuery
from tests.clock import FakeClock
from tests.conftest import memory_store_config
from tests.test_persistence import SYMBOL, Client, engines, start
from tests.test_persistence import quiet_config as _quiet_config
from tickdesk.app import Engine

__all__ = ["engines"]  # the fixture, re-used

FEE = Decimal(10) / Decimal(10000)


def quiet_config(path: str) -> Config:
    """The persistence tests' quiet engine, filling MARKET orders at the last
    trade (``fill_model = "full"``): these tests are about the history, and
    their expected prices are the trades they inject."""
    return _quiet_config(path).with_overrides(trading=TradingConfig(fill_model="full"))


def D(x: Any) -> Decimal:
    return Decimal(str(x))


def _round_trip(c: Client) -> tuple[Decimal, Decimal, list[dict[str, Any]]]:
    """BUY 0.1 at p, then SELL 0.04 at 2p: returns p, 2p and the two TRADE orders."""
    p = c.first_price()
    buy = c.place("TRADE", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.1",
                  clientOrderId="in")["order"]
    c.trade(p * 2)
    c.until(lambda m: m["type"] == "MARKET_UPDATE" and D(m["price"]) == p * 2)
    sell = c.place("TRADE", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.04",
                   clientOrderId="out")["order"]
    return p, p * 2, [buy, sell]


def _check_fills(fills: list[dict[str, Any]], p: Decimal, orders: list[dict[str, Any]]) -> None:
    buy, sell = orders
    newest, oldest = fills
    assert [f["orderId"] for f in fills] == [sell["orderId"], buy["orderId"]]
    assert newest["fillId"] > oldest["fillId"]
    assert (oldest["side"], oldest["clientOrderId"], D(oldest["quantity"])) == (
        "BUY", "in", Decimal("0.1"))
    assert D(oldest["price"]) == p and D(newest["price"]) == 2 * p
    # fee: quantity × price × 10 bps; realized on the SELL: (2p − p) × 0.04
    assert D(oldest["fee"]) == D(float(Decimal("0.1") * p * FEE))
    assert D(newest["fee"]) == D(float(Decimal("0.04") * 2 * p * FEE))
    assert D(oldest["realizedPnl"]) == 0
    assert D(newest["realizedPnl"]) == D(float(p * Decimal("0.04")))
    assert {f["feeAsset"] for f in fills} == {"USDT"}
    assert newest["time"] >= oldest["time"] > 0


def test_fills_and_equity_of_an_in_memory_engine(engines: list[Engine]) -> None:
    engine = start(engines, memory_store_config(quiet_config("")))
    c = Client(engine)
    p, last, orders = _round_trip(c)
    reply = c.request("get_fills", "FILLS")
    assert reply["nextBefore"] is None
    _check_fills(reply["fills"], p, orders)
    # paging: one at a time, with the cursor the server gives
    first = c.request("get_fills", "FILLS", limit=1)
    assert first["fills"] == reply["fills"][:1] and first["nextBefore"] is not None
    second = c.request("get_fills", "FILLS", limit=1, before=first["nextBefore"])
    assert second["fills"] == reply["fills"][1:] and second["nextBefore"] is None
    assert c.request("get_fills", "FILLS", symbol="ETHUSDT")["fills"] == []
    assert c.request("get_fills", "FILLS", since=reply["fills"][0]["time"] + 1)["fills"] == []
    c.session.send({"action": "get_fills", "limit": 5000, "id": "bad"})
    msg = c.session.get(timeout=5)
    while msg.get("id") != "bad":
        msg = c.session.get(timeout=5)
    assert (msg["type"], msg["code"]) == ("ERROR", "BAD_REQUEST") and "limit" in msg["message"]

    before = engine.clock.now_ms()
    engine.portfolio.tell(Pulse("equity"))
    history = c.request("get_equity_history", "EQUITY_HISTORY")["samples"]
    (sample,) = history
    assert before <= sample["time"] <= engine.clock.now_ms()
    # equity = start + realized − fees + unrealized at the mark (documented rules)
    fees = Decimal("0.1") * p * FEE + Decimal("0.04") * last * FEE
    realized = (last - p) * Decimal("0.04")
    unrealized = (last - p) * Decimal("0.06")
    assert D(sample["equity"]) == D(float(Decimal(10000) + realized - fees + unrealized))


def test_history_survives_a_restart(engines: list[Engine], store_path: str) -> None:
    first = start(engines, quiet_config(store_path))
    c = Client(first)
    p, _last, orders = _round_trip(c)
    first.portfolio.tell(Pulse("equity"))
    sampled = c.request("get_equity_history", "EQUITY_HISTORY")["samples"]
    announced = c.request("get_fills", "FILLS")["fills"]
    first.stop()

    second = start(engines, quiet_config(store_path))
    c2 = Client(second)
    after = c2.request("get_fills", "FILLS")["fills"]
    assert after == announced
    _check_fills(after, p, orders)
    assert c2.request("get_equity_history", "EQUITY_HISTORY")["samples"] == sampled
    c2.first_price()
    second.portfolio.tell(Pulse("equity"))
    samples = c2.request("get_equity_history", "EQUITY_HISTORY")["samples"]
    assert samples[:1] == sampled and len(samples) == 2
    assert samples[1]["time"] >= samples[0]["time"]
    second.stop()
    with Store(store_path) as store:
        assert [f.order_id for f in store.fills()] == [o["orderId"] for o in orders]


def test_the_equity_timer_is_configured() -> None:
    cfg = quiet_config("").with_overrides(intervals=IntervalsConfig(equity_s=30))
    assert cfg.intervals.equity_s == 30
    assert IntervalsConfig().equity_s == 60


def test_an_account_whose_equity_is_unknown_is_not_sampled() -> None:
    """Driven directly: the sampler of a PortfolioActor that is not started
    (no thread; no store, so the history is the bounded in-memory one)."""
    clock = FakeClock()
    actor = PortfolioActor(InProcessBus(Hub(), lambda _req: False), TradingConfig(),
                           ("alice", "bob"), clock.now_ms)
    actor._ledgers["alice"].apply_fill(SYMBOL, Side.BUY, Decimal("0.5"), Decimal(40000))
    sampled = actor.sample_equity(clock.now_ms())
    assert set(sampled) == {"bob"}  # alice holds BTCUSDT with no mark yet
    now = clock.now_ms()  # a fresh trade: a stale one would set no mark
    actor._on_tick(TradeTick(Trade(SYMBOL, Decimal(41000), Decimal(1), now, now), now))
    clock.advance(60)
    sampled = actor.sample_equity(clock.now_ms())
    fee = Decimal("0.5") * 40000 * FEE
    assert sampled["alice"].equity == 10000 - fee + (41000 - 40000) * Decimal("0.5")
    assert sampled["alice"].time == clock.now_ms()
    samples = actor._history.samples("alice", EquityQuery())
    assert [s.time for s in samples] == [clock.now_ms()]
    assert len(actor._history.samples("bob", EquityQuery())) == 2


def test_a_partly_filled_order_has_one_fill_per_part(engines: list[Engine]) -> None:
    """Fills at the book: a MARKET BUY 0.1 against an ask of 0.04 fills in two
    parts; the history has both, each with its own quantity, price and fee."""
    engine = start(engines, memory_store_config(_quiet_config("")))
    c = Client(engine)
    p = c.first_price()
    now = engine.clock.now_ms()
    book = BookTicker(SYMBOL, p - 10, Decimal(2), p, Decimal("0.04"), 10**12, now)
    assert engine.order_monitor.tell(BookTick(book, now))
    c.place("TRADE", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.1")
    done = c.until(lambda m: m["type"] == "ORDER_UPDATE" and m["order"]["status"] == "FILLED")
    parts = [m for m in c.updates if m["executionType"] == "TRADE"]
    assert len(parts) == 2 and parts[-1] is done
    fills = c.request("get_fills", "FILLS")["fills"]
    assert [f["orderId"] for f in fills] == [done["order"]["orderId"]] * 2
    assert [D(f["quantity"]) for f in reversed(fills)] == [D(m["lastQty"]) for m in parts]
    assert [D(f["price"]) for f in reversed(fills)] == [D(m["lastPrice"]) for m in parts]
    assert D(fills[-1]["quantity"]) == Decimal("0.04") and D(fills[-1]["price"]) == p
    assert sum(D(f["quantity"]) for f in fills) == Decimal("0.1")
    for f in fills:
        assert D(f["fee"]) == D(float(D(f["quantity"]) * D(f["price"]) * FEE))
        assert f["realizedPnl"] == 0
