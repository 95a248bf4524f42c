"""Durability through the actors: stop an Engine, start another on the same
database, and everything announced is there and keeps working.

Synchronisation is causal, never by sleeping: the simulated feed is slowed
to one pulse per 100 s, so the only trades are its first one per symbol (sent
before it answers a ``subscribe_ticker`` snapshot) and the ones the test
routes through the FeedActor itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.messages import AccountRequest, TradeTick
from actors.supervisor import AwaitStarted
from engine.config import (
    Config,
    FeedConfig,
    IntervalsConfig,
    SimulatedConfig,
    StoreConfig,
    SupervisorConfig,
)
from engine.messages import Trade
from engine.protocol.enums import Action
from engine.store import Store
from tests.conftest import memory_store_config
from tickdesk.app import Engine, LocalSession

SYMBOL = "BTCUSDT"
WAIT = 5.0


def quiet_config(path: str) -> Config:
    return Config().with_overrides(
        store=StoreConfig(path=path),
        feed=FeedConfig(symbols=(SYMBOL,), simulated=SimulatedConfig(ticks_per_second=0.01)),
        intervals=IntervalsConfig(positions_s=3600, portfolio_s=3600),
    )


class Client:
    """A LocalSession with request/answer helpers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.session: LocalSession = engine.connect()
        self.ids = iter(range(1, 10_000))
        self.announced: dict[int, dict[str, Any]] = {}  # last ORDER_UPDATE order per id
        self.updates: list[dict[str, Any]] = []

    def _note(self, msg: dict[str, Any]) -> None:
        if msg["type"] == "ORDER_UPDATE":
            self.updates.append(msg)
            self.announced[msg["order"]["orderId"]] = msg["order"]

    def request(self, action: str, answer: str, **body: Any) -> dict[str, Any]:
        rid = next(self.ids)
        self.session.send({"action": action, "id": rid, **body})
        while True:
            msg = self.session.get(timeout=WAIT)
            self._note(msg)
            if msg.get("id") == rid and msg["type"] in (answer, "ERROR"):
                assert msg["type"] == answer, msg
                return msg

    def place(self, expect: str = "NEW", **body: Any) -> dict[str, Any]:
        """Place an order and wait for its event with executionType ``expect``."""
        rid = next(self.ids)
        self.session.send({"action": "place_order", "id": rid, **body})
        return self.until(lambda m: m.get("id") == rid and m["type"] == "ORDER_UPDATE"
                          and m["executionType"] == expect)

    def until(self, predicate: Any) -> dict[str, Any]:
        while True:
            msg = self.session.get(timeout=WAIT)
            self._note(msg)
            assert msg["type"] != "ERROR", msg
            if predicate(msg):
                return msg

    def first_price(self) -> Decimal:
        """Subscribe; the snapshot comes after the feed's first trade was routed."""
        self.request("subscribe_ticker", "SUBSCRIBED", symbol=SYMBOL)
        snap = self.until(lambda m: m["type"] == "MARKET_UPDATE")
        return Decimal(str(snap["price"]))

    def trade(self, price: Decimal) -> None:
        now = self.engine.clock.now_ms()
        self.engine.feed.tell(TradeTick(Trade(SYMBOL, price, Decimal(1), now, now), now))

    def state(self) -> dict[str, Any]:
        """What a client can ask for that does not depend on the mark price."""
        orders = self.request("get_orders", "ORDERS", status="all")["orders"]
        pf = self.request("get_portfolio", "PORTFOLIO_UPDATE")["portfolio"]
        pos = self.request("get_positions", "POSITION_UPDATE")["positions"]
        keep = ("balance", "realizedPnl", "fees", "positionsCount", "openOrdersCount")
        return {
            "orders": orders,
            "portfolio": {k: pf[k] for k in keep},
            "positions": [{k: p[k] for k in ("symbol", "side", "quantity", "entryPrice",
                                             "realizedPnl")} for p in pos],
        }


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop()


def start(engines: list[Engine], config: Config) -> Engine:
    engine = Engine(config, listen=False).start()
    engines.append(engine)
    return engine


def test_restart_restores_everything_and_orders_keep_working(
    engines: list[Engine], store_path: str
) -> None:
    first = start(engines, quiet_config(store_path))
    c = Client(first)
    p = c.first_price()
    c.place("TRADE", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.05")
    # The two SELLs together reserve the whole position (docs/trading.md, Reservations).
    c.place(symbol=SYMBOL, side="SELL", type="LIMIT", quantity="0.02", price=str(p * 2))
    trailing = c.place(symbol=SYMBOL, side="SELL", type="STOP_LOSS", quantity="0.03",
                       trailingDelta=700)["order"]["orderId"]
    c.request("place_oco", "ORDER_UPDATE", symbol=SYMBOL, side="SELL", quantity="0.01",
              above={"type": "LIMIT_MAKER", "price": str(p * 3)},
              below={"type": "STOP_LOSS", "stopPrice": str((p / 3).quantize(Decimal("0.01")))})
    c.trade(p * Decimal("1.02"))  # the trailing stop moves up: AMENDED
    amended = c.until(lambda m: m["type"] == "ORDER_UPDATE"
                      and m["executionType"] == "AMENDED")["order"]
    assert Decimal(str(amended["trailingExtreme"])) == p * Decimal("1.02")
    before = c.state()
    assert {o["orderId"]: o for o in before["orders"]} == c.announced
    first.stop()

    second = start(engines, quiet_config(store_path))
    c2 = Client(second)
    # The simulated market resumes from the last stored price (p x 1.02, the close
    # of the newest stored kline), one step of its walk away, instead of its seed's
    # first trade; that step triggers nothing and changes nothing.
    resumed = c2.first_price()
    assert resumed != p
    assert abs(resumed - p * Decimal("1.02")) < p / 100
    after = c2.state()
    assert after == before
    # The restored trailing stop still works, and ids go on from where they were.
    c2.trade(p * Decimal("1.02") * Decimal("0.92"))
    fired = c2.until(lambda m: m["type"] == "ORDER_UPDATE" and m["executionType"] == "TRADE")
    assert fired["order"]["orderId"] == trailing
    new = c2.place("TRADE", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.01")
    assert new["order"]["orderId"] > max(c.announced)
    portfolio = c2.request("get_portfolio", "PORTFOLIO_UPDATE")["portfolio"]
    assert portfolio["positionsCount"] == 1
    second.stop()
    with Store(store_path) as store:
        fills = store.fills()
    assert [f.order_id for f in fills] == [1, trailing, new["order"]["orderId"]]


def test_order_monitor_restart_reloads_the_book(engines: list[Engine]) -> None:
    """With store.path "" nothing touches the disk, yet after the
    OrderMonitorActor crashes, the Supervisor's new generation reloads the
    book from the engine's in-memory store."""
    cfg = memory_store_config(quiet_config(""))
    cfg = cfg.with_overrides(supervisor=SupervisorConfig(backoff_min_s=0.001, backoff_max_s=0.01))
    engine = start(engines, cfg)
    c = Client(engine)
    p = c.first_price()
    half = (p / 2).quantize(Decimal("0.01"))  # on BTCUSDT's tick (PRICE_FILTER)
    c.place(symbol=SYMBOL, side="BUY", type="LIMIT", quantity="0.1", price=str(half))
    before = c.state()
    old = engine.order_monitor.ref
    assert old is not None
    # A handler that blows up (a request the decoder cannot have made) kills the actor.
    engine.order_monitor.tell(AccountRequest("default", c.session, None, Action.GET_ORDERS,
                                             {}, None))  # type: ignore[arg-type]
    deadline = time.monotonic() + WAIT
    while engine.order_monitor.ref in (None, old):
        assert time.monotonic() < deadline, "the order monitor was not restarted"
        # A round trip through the Supervisor, which does the restart.
        engine._supervisor.ask(AwaitStarted(), timeout=WAIT)  # type: ignore[union-attr]
    assert c.state() == before
