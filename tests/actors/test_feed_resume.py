"""A simulated feed resumes from the last prices: the stored ones at start, its
own on a restart of the FeedActor, never its seed's start again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.messages import SendSnapshot
from engine.config import FeedConfig, SimulatedConfig
from tests.conftest import make_config, wait_until
from tickdesk import Engine


class _Exploding:
    """A channel whose delivery fails: sending it a snapshot crashes the FeedActor."""

    def deliver(self, _out: Any) -> bool:
        raise RuntimeError("injected crash")


def _feed_restarts(engine: Engine) -> int:
    return {r.name: r.restarts for r in engine.children.records()}["feed"]


def test_the_feed_resumes_from_given_prices_and_from_its_own_after_a_restart() -> None:
    # One step a symbol when a generation starts, then none for 100 s: every price
    # seen here is the first step of a generation.
    cfg = make_config(feed=FeedConfig(symbols=("BTCUSDT", "ETHUSDT"),
                                      simulated=SimulatedConfig(seed=7, ticks_per_second=0.01)))
    engine = Engine(cfg, listen=False)
    engine.feed_shared.keep_prices({"BTCUSDT": Decimal("12345.67")})  # as a store would
    engine.start()
    try:
        session = engine.connect()
        for sym in ("BTCUSDT", "ETHUSDT"):
            session.send({"action": "subscribe_ticker", "symbol": sym})

        def price(sym: str) -> Decimal:
            m = session.wait_for(lambda m: m["type"] == "MARKET_UPDATE" and m["symbol"] == sym)
            return Decimal(str(m["price"]))

        first = price("BTCUSDT")
        assert abs(first - Decimal("12345.67")) < Decimal("123")  # within 1 %: resumed
        assert abs(price("ETHUSDT") - 3200) < 32  # no stored price: its usual start

        before = _feed_restarts(engine)
        engine.feed.tell(SendSnapshot(_Exploding(), "BTCUSDT"))  # type: ignore[arg-type]
        wait_until(lambda: _feed_restarts(engine) > before, what="the feed restarted")
        again = price("BTCUSDT")
        # From where it was (a step away), not a replay of the seed's walk from the
        # start price, which would print exactly ``first`` again.
        assert again != first
        assert abs(again - first) < first / 100
        assert engine.feed_shared.last_prices()["BTCUSDT"] == first
        session.close()
    finally:
        engine.stop()
