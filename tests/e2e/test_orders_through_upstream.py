"""Orders worked by trades that arrive from a (fake) Binance upstream, seen by a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import FeedConfig, StoreConfig
from tests.conftest import make_config
from tests.e2e.wsclient import WsClient
from tests.fakes.binance_rest import FakeBinanceRest, binance_config
from tests.fakes.binance_upstream import FakeBinanceUpstream
from tickdesk import Engine


@pytest.fixture
def upstream(binance_rest: FakeBinanceRest) -> Iterator[FakeBinanceUpstream]:
    with FakeBinanceUpstream(known_symbols={"BTCUSDT"}) as fake:
        yield fake


def test_trailing_stop_example_5_through_the_live_feed(upstream: FakeBinanceUpstream,
                                                       tmp_path: Path) -> None:
    feed = FeedConfig(source="binance", symbols=("BTCUSDT",),
                      binance=binance_config(upstream.base_url, stall_timeout_s=60))
    engine = Engine(make_config(feed=feed, store=StoreConfig(path=str(tmp_path / "t.db"))))
    engine.start()
    client = WsClient(engine.url)
    try:
        client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
        client.reply("s")
        assert upstream.wait_until(lambda: upstream.subscribers("btcusdt@aggTrade") == 1)

        def push_and_see(price: str) -> None:
            upstream.push_trade("BTCUSDT", price, "0.5")
            client.wait_for(lambda m: m["type"] == "MARKET_UPDATE" and m["price"] == float(price))

        # the first trade since the start waits for the next one to vouch for it
        upstream.push_trade("BTCUSDT", "40000", "0.5")
        push_and_see("40000")
        client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "SELL",
                     "type": "STOP_LOSS", "quantity": "0.1", "trailingDelta": 700, "id": "t"})
        new = client.reply("t")
        assert new["executionType"] == "NEW", new
        events = []
        for price in ("42000", "39500", "45500", "42315"):
            upstream.push_trade("BTCUSDT", price, "0.5")
        while not events or events[-1]["executionType"] != "TRADE":
            m = client.wait_for(lambda m: m["type"] == "ORDER_UPDATE")
            events.append(m)
        kinds = [e["executionType"] for e in events]
        assert kinds[-2:] == ["TRIGGERED", "TRADE"]
        amended = [e["order"] for e in events if e["executionType"] == "AMENDED"]
        assert [a["trailingExtreme"] for a in amended] == [42000.0, 45500.0]
        assert [a["currentStopPrice"] for a in amended] == [39060.0, 42315.0]
        fill = events[-1]["order"]
        assert fill["status"] == "FILLED" and fill["avgPrice"] == 42315.0
        client.send({"action": "get_positions", "id": "p"})
        (pos,) = client.reply("p")["positions"]
        assert (pos["side"], pos["quantity"], pos["entryPrice"]) == ("SHORT", 0.1, 42315.0)
    finally:
        client.close()
        engine.stop()
