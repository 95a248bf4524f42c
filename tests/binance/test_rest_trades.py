"""GET /api/v3/trades, /historicalTrades and /aggTrades against a daemon fed by a
scripted (fake) Binance upstream: the answers are the trades the test pushed
(ids, prices, quantities, times, maker flags, order), cut by limit / fromId /
time, bounded at 1000 per symbol; the ids are the @trade stream's; Binance's
errors; python-binance reads them."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from binance.client import Client

from tests.binance.helpers import (
    ALICE_KEY,
    ALICE_SECRET,
    Pushed,
    Rest,
    push_trades,
    upstream_daemon,
)
from tests.conftest import wait_until
from tests.e2e.wsclient import WsClient


def _row(t: Pushed) -> dict[str, Any]:
    """Binance's /trades row, written from Binance's documented shape."""
    return {"id": t.agg_id, "price": f"{t.price:.8f}", "qty": f"{t.qty:.8f}",
            "quoteQty": f"{(t.price * t.qty):.8f}", "time": t.time,
            "isBuyerMaker": t.buyer_is_maker, "isBestMatch": True}


def _agg(t: Pushed) -> dict[str, Any]:
    return {"a": t.agg_id, "p": f"{t.price:.8f}", "q": f"{t.qty:.8f}", "f": t.agg_id,
            "l": t.agg_id, "T": t.time, "m": t.buyer_is_maker, "M": True}


def _routed(rest: Rest, count: int) -> None:
    wait_until(lambda: len(rest.public("GET", "/api/v3/trades", symbol="BTCUSDT",
                                       limit=1000).json()) == count, 10, f"{count} trades")


def test_rest_trades_are_the_pushed_trades() -> None:
    with upstream_daemon() as (eng, upstream):
        rest = Rest(eng.port)
        assert rest.public("GET", "/api/v3/trades", symbol="BTCUSDT").json() == []
        start = int(time.time() * 1000)
        pushed = push_trades(upstream, 5000, 30, start)
        _routed(rest, 30)
        r = rest.public("GET", "/api/v3/trades", symbol="BTCUSDT")
        assert r.status_code == 200
        # Binance's weights (its docs: trades 25, aggTrades 4, historicalTrades 25)
        paths = rest.public("GET", "/openapi.json").json()["paths"]
        assert [paths[p]["get"]["x-weight"] for p in (
            "/api/v3/trades", "/api/v3/aggTrades", "/api/v3/historicalTrades")] == [25, 4, 25]
        assert r.json() == [_row(t) for t in pushed]  # default limit 500: all, oldest first
        assert rest.public("GET", "/api/v3/trades", symbol="BTCUSDT", limit=5).json() == [
            _row(t) for t in pushed[-5:]]
        # aggTrades: from an id, in a time window, the newest by default
        agg = rest.public("GET", "/api/v3/aggTrades", symbol="BTCUSDT", fromId=5010, limit=4)
        assert agg.json() == [_agg(t) for t in pushed[10:14]]
        window = rest.public("GET", "/api/v3/aggTrades", symbol="BTCUSDT",
                             startTime=pushed[3].time, endTime=pushed[8].time).json()
        assert window == [_agg(t) for t in pushed[3:9]]
        assert rest.public("GET", "/api/v3/aggTrades", symbol="BTCUSDT", limit=2).json() == [
            _agg(t) for t in pushed[-2:]]
        # historicalTrades needs the API key
        assert rest.public("GET", "/api/v3/historicalTrades", symbol="BTCUSDT").status_code == 401
        hist = rest.keyed("GET", "/api/v3/historicalTrades", symbol="BTCUSDT", fromId=5020,
                          limit=3)
        assert hist.json() == [_row(t) for t in pushed[20:23]]
        for path, bad, code in (
                ("/api/v3/trades", {"symbol": "XRPUSDT"}, -1121),
                ("/api/v3/trades", {}, -1102),
                ("/api/v3/trades", {"symbol": "BTCUSDT", "limit": "0"}, -1130),
                ("/api/v3/trades", {"symbol": "BTCUSDT", "limit": "1001"}, -1130),
                ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "fromId": "x"}, -1130),
                ("/api/v3/aggTrades", {"symbol": "BTCUSDT", "startTime": "20",
                                       "endTime": "10"}, -1128)):
            resp = rest.public("GET", path, **bad)
            assert resp.status_code == 400 and resp.json()["code"] == code, (path, bad)
        # the stream names the next trade as REST does
        ws = WsClient(f"ws://127.0.0.1:{eng.port}/ws/btcusdt@trade")
        try:
            wait_until(lambda: eng.hub.has_stream("btcusdt@trade"), 5, "the subscription")
            (last,) = push_trades(upstream, 5030, 1, start + 1_000)
            event = ws.recv()
        finally:
            ws.close()
        _routed(rest, 31)
        newest = rest.public("GET", "/api/v3/trades", symbol="BTCUSDT", limit=1).json()
        assert newest == [_row(last)] and event["t"] == newest[0]["id"] == 5030
        assert Decimal(event["p"]) == Decimal(newest[0]["price"])
        client = Client(ALICE_KEY, ALICE_SECRET, ping=False)
        client.API_URL = f"http://127.0.0.1:{eng.port}/api"
        try:
            recent = client.get_recent_trades(symbol="BTCUSDT", limit=3)
            assert [t["id"] for t in recent] == [5028, 5029, 5030]
            aggs = client.get_aggregate_trades(symbol="BTCUSDT", fromId=5001, limit=2)
            assert aggs == [_agg(t) for t in pushed[1:3]]
        finally:
            client.close_connection()


def test_the_ring_keeps_the_newest_1000_per_symbol() -> None:
    with upstream_daemon() as (eng, upstream):
        rest = Rest(eng.port)
        pushed = push_trades(upstream, 1, 1010, int(time.time() * 1000))
        wait_until(lambda: rest.public("GET", "/api/v3/trades", symbol="BTCUSDT", limit=1)
                   .json() == [_row(pushed[-1])], 20, "the last trade routed")
        kept = rest.public("GET", "/api/v3/trades", symbol="BTCUSDT", limit=1000).json()
        assert kept == [_row(t) for t in pushed[10:]]  # the 10 oldest were dropped
        oldest = rest.public("GET", "/api/v3/aggTrades", symbol="BTCUSDT", fromId=1,
                             limit=1).json()
        assert oldest == [_agg(pushed[10])]
