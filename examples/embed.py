"""Embed tickdesk in a Python program: no network listener, one in-process session.

Run: python examples/embed.py
"""

from tickdesk import Config, Engine, StoreConfig

config = Config(store=StoreConfig(path=""))  # in-memory ledger for this demo

with Engine(config, listen=False) as engine:
    session = engine.connect()
    print(session.get(timeout=2)["type"])  # CONNECTED
    session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": 1})
    tick = session.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
    print("BTCUSDT", tick["price"])
    session.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                  "type": "MARKET", "quantity": "0.01", "id": "buy"})
    fill = session.wait_for(lambda m: m.get("executionType") == "TRADE")
    print("filled at", fill["order"]["avgPrice"], "fee", fill["order"]["fee"])
    session.send({"action": "get_portfolio", "id": "pf"})
    print(session.wait_for(lambda m: m.get("id") == "pf")["portfolio"])
