"""``get_symbols``: the symbols the feed serves, which the dashboard's watch list starts from."""

from __future__ import annotations

from engine.config import AccountConfig, FeedConfig, SimulatedConfig
from tests.conftest import make_config, timeout
from tickdesk import Engine
from tickdesk.client import TickdeskClient


def test_get_symbols_lists_the_configured_symbols_in_order_without_a_token() -> None:
    served = ("SOLUSDT", "BTCUSDT", "XRPUSDT")
    cfg = make_config(feed=FeedConfig(symbols=served, simulated=SimulatedConfig(seed=3)),
                      accounts=(AccountConfig(name="alice", token="alice-token-123"),))
    with Engine(cfg, listen=False) as engine, engine.connect() as session:
        session.wait_for(lambda m: m["type"] == "CONNECTED", timeout=timeout(5))
        session.send({"action": "get_symbols", "id": "y"})
        reply = session.wait_for(lambda m: m.get("id") == "y", timeout=timeout(5))
        assert reply["type"] == "SYMBOLS"          # market data: no account needed
        assert reply["symbols"] == list(served)
        # every listed symbol can be subscribed
        for symbol in served:
            session.send({"action": "subscribe_ticker", "symbol": symbol, "id": symbol})
            assert session.wait_for(lambda m, s=symbol: m.get("id") == s,
                                    timeout=timeout(5))["type"] == "SUBSCRIBED"


def test_the_client_reads_the_served_symbols(engine: Engine) -> None:
    with TickdeskClient(engine.url) as client:
        assert client.get_symbols() == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
