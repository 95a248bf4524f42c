"""Binance's stream paths over a real WebSocket on 127.0.0.1 (simulated feed):
raw and combined streams with Binance's payloads, live SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS with Binance's answers and errors, refusals at the upgrade."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import websocket

from tests.e2e.wsclient import WsClient
from tickdesk import Engine


def _base(engine: Engine) -> str:
    return f"ws://127.0.0.1:{engine.port}"


def _dec(text: str) -> Decimal:
    assert isinstance(text, str) and "." in text  # Binance writes decimals as strings
    return Decimal(text)


def test_raw_trade_stream_has_binance_trade_events(engine: Engine) -> None:
    c = WsClient(_base(engine) + "/ws/btcusdt@trade")
    try:
        events = [c.recv() for _ in range(3)]
    finally:
        c.close()
    for ev in events:
        assert set(ev) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
        assert ev["e"] == "trade" and ev["s"] == "BTCUSDT"
        assert _dec(ev["p"]) > 0 and _dec(ev["q"]) > 0
        assert isinstance(ev["t"], int) and isinstance(ev["m"], bool)
    ids = [ev["t"] for ev in events]
    assert ids == sorted(ids) and len(set(ids)) == 3  # every trade, in order


def test_agg_trade_and_book_ticker_streams(engine: Engine) -> None:
    c = WsClient(_base(engine) + "/ws/ethusdt@aggTrade")
    b = WsClient(_base(engine) + "/ws/ethusdt@bookTicker")
    try:
        agg = c.recv()
        book = b.recv()
    finally:
        c.close()
        b.close()
    assert set(agg) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"}
    assert agg["e"] == "aggTrade" and agg["s"] == "ETHUSDT" and agg["f"] == agg["l"] == agg["a"]
    assert set(book) == {"u", "s", "b", "B", "a", "A"}
    assert book["s"] == "ETHUSDT" and _dec(book["b"]) < _dec(book["a"])
    assert _dec(book["B"]) > 0 and _dec(book["A"]) > 0


def test_combined_stream_wraps_each_event_with_its_stream_name(engine: Engine) -> None:
    c = WsClient(_base(engine) + "/stream?streams=btcusdt@trade/ethusdt@bookTicker")
    try:
        seen: dict[str, dict[str, Any]] = {}
        while len(seen) < 2:
            msg = c.recv()
            assert set(msg) == {"stream", "data"}
            seen[msg["stream"]] = msg["data"]
    finally:
        c.close()
    assert seen["btcusdt@trade"]["e"] == "trade"
    assert seen["ethusdt@bookTicker"]["s"] == "ETHUSDT"


def test_live_subscribe_list_and_unsubscribe(engine: Engine) -> None:
    c = WsClient(_base(engine) + "/ws")
    try:
        c.send({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@aggTrade"], "id": 1})
        assert c.wait_for(lambda m: "id" in m) == {"result": None, "id": 1}
        c.wait_for(lambda m: m.get("e") == "trade")
        c.wait_for(lambda m: m.get("e") == "aggTrade")
        c.send({"method": "LIST_SUBSCRIPTIONS", "id": 2})
        assert c.wait_for(lambda m: m.get("id") == 2) == {
            "result": ["btcusdt@trade", "btcusdt@aggTrade"], "id": 2}
        c.send({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 3})
        assert c.wait_for(lambda m: m.get("id") == 3) == {"result": None, "id": 3}
        c.send({"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert c.wait_for(lambda m: m.get("id") == 4)["result"] == ["btcusdt@aggTrade"]
        # after the answer to 4, no more trade events (only aggTrade)
        for _ in range(5):
            assert c.recv().get("e") == "aggTrade"
    finally:
        c.close()


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", 3),
    ('{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 5, "x": 1}', 0),
    ('{"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 6}', 1),
    ('{"method": "SUBSCRIBE", "params": ["btcusdt@depth9"], "id": 7}', 2),
    ('{"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 8}', 2),
    ('{"method": "SUBSCRIBE", "params": ["btcusdt@kline_2m"], "id": 10}', 2),
    ('{"method": "FLY", "params": [], "id": 9}', 2),
])
def test_bad_requests_get_binance_errors_and_change_nothing(engine: Engine, frame: str,
                                                            code: int) -> None:
    c = WsClient(_base(engine) + "/ws")
    try:
        c.send_text(frame)
        err = c.recv()
        assert set(err) == {"error", "id"} and err["error"]["code"] == code
        assert isinstance(err["error"]["msg"], str) and err["error"]["msg"]
        c.send({"method": "LIST_SUBSCRIPTIONS", "id": 99})
        assert c.wait_for(lambda m: m.get("id") == 99) == {"result": [], "id": 99}
    finally:
        c.close()


@pytest.mark.parametrize(("path", "status"), [
    ("/ws/btcusdt@nothing", 400),
    ("/ws/dogeusdt@trade", 400),
    ("/ws/abc", 401),  # a listen key nobody created
    ("/stream?streams=btcusdt@trade/key1/key2", 400),
])
def test_bad_paths_are_refused_at_the_upgrade(engine: Engine, path: str, status: int) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(_base(engine) + path, timeout=5)
    assert info.value.status_code == status


def test_a_foreign_origin_is_refused_on_stream_paths_too(engine: Engine) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(_base(engine) + "/ws/btcusdt@trade", timeout=5,
                                    origin="http://evil.example")
    assert info.value.status_code == 403


def test_ticker_stream_and_ccxt_style_numbered_connection(engine: Engine) -> None:
    c = WsClient(_base(engine) + "/ws/0")  # ccxt: /ws/<n>, then SUBSCRIBE
    try:
        c.send({"method": "SUBSCRIBE", "params": ["btcusdt@ticker"], "id": 1})
        assert c.wait_for(lambda m: "id" in m) == {"result": None, "id": 1}
        t = c.wait_for(lambda m: m.get("e") == "24hrTicker")
    finally:
        c.close()
    assert t["s"] == "BTCUSDT" and _dec(t["c"]) > 0
    assert _dec(t["o"]) + _dec(t["p"]) == _dec(t["c"])  # open + change = last
    assert _dec(t["l"]) <= _dec(t["h"])
    assert _dec(t["b"]) <= _dec(t["a"])


def test_depth_diffs_rebuild_the_book_our_book_update_shows(engine: Engine) -> None:
    own = WsClient(engine.url)
    depth = WsClient(_base(engine) + "/ws/ethusdt@depth@100ms")  # the first subscriber
    try:
        own.send({"action": "subscribe_book", "symbol": "ETHUSDT"})
        books = {}
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        last_u = None
        for _ in range(8):
            ev = depth.recv()
            assert ev["e"] == "depthUpdate" and ev["s"] == "ETHUSDT"
            if last_u is not None:
                assert ev["U"] == last_u + 1  # contiguous, as a client syncing needs
            last_u = ev["u"]
            for side, levels in ((bids, ev["b"]), (asks, ev["a"])):
                for p, q in levels:
                    if Decimal(q) == 0:
                        side.pop(Decimal(p), None)
                    else:
                        side[Decimal(p)] = Decimal(q)
            books[ev["u"]] = (sorted(bids.items(), reverse=True), sorted(asks.items()))
        seen = 0
        while seen < 3:
            msg = own.recv()
            if msg.get("type") == "BOOK_UPDATE" and msg["seq"] in books:
                want_b, want_a = books[msg["seq"]]
                assert [(Decimal(str(p)), Decimal(str(q))) for p, q in msg["bids"]] == want_b
                assert [(Decimal(str(p)), Decimal(str(q))) for p, q in msg["asks"]] == want_a
                seen += 1
    finally:
        own.close()
        depth.close()


def test_kline_stream_shows_the_bar_the_engine_keeps(engine: Engine) -> None:
    c = WsClient(_base(engine) + "/ws/btcusdt@kline_1m")
    try:
        events = [c.recv() for _ in range(5)]
    finally:
        c.close()
    for ev in events:
        assert ev["e"] == "kline" and ev["s"] == "BTCUSDT" and ev["k"]["i"] == "1m"
        k = ev["k"]
        assert k["T"] == k["t"] + 60_000 - 1 and k["t"] % 60_000 == 0
        assert _dec(k["l"]) <= min(_dec(k["o"]), _dec(k["c"]))
        assert max(_dec(k["o"]), _dec(k["c"])) <= _dec(k["h"])
    counts = [ev["k"]["n"] for ev in events if ev["k"]["t"] == events[-1]["k"]["t"]]
    assert counts == sorted(counts)  # the current bar grows trade by trade
    # the bar the stream last showed is the bar Engine.klines (the REST view) holds,
    # or an older state of it
    last = events[-1]["k"]
    bars = [b for b in engine.klines("BTCUSDT", "1m") if b.open_time == last["t"]]
    assert bars and bars[0].trades >= last["n"] and bars[0].open == _dec(last["o"])
