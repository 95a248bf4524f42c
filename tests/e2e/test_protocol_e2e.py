"""End to end over 127.0.0.1 with websocket-client: the protocol as a client sees it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
import websocket

from tests.e2e.wsclient import WsClient
from tickdesk import Engine


@pytest.fixture
def client(engine: Engine) -> Iterator[WsClient]:
    c = WsClient(engine.url)
    yield c
    c.close()


def test_connected_first(client: WsClient) -> None:
    hello = client.recv()
    assert hello["type"] == "CONNECTED"
    assert hello["protocol"] == 1 and hello["server"].startswith("tickdesk/")
    assert hello["account"] == "default"
    assert hello["feed"]["feed"] == "simulated"
    assert isinstance(hello["timestamp"], int)


def test_subscribe_streams_market_updates_with_increasing_seq(client: WsClient) -> None:
    client.send({"action": "subscribe_ticker", "symbol": "btcusdt", "id": "s1"})
    sub = client.reply("s1")
    assert sub["type"] == "SUBSCRIBED" and sub["symbol"] == "BTCUSDT"
    seqs = []
    for _ in range(6):
        m = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
        assert m["symbol"] == "BTCUSDT" and m["price"] > 0
        assert {"priceChange", "priceChangePercent", "high", "low", "volume", "bid", "ask",
                "eventTime", "seq", "timestamp"} <= m.keys()
        seqs.append(m["seq"])
    # The snapshot may repeat the seq of the first live update; otherwise +1 per state.
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(seqs))
    assert seqs[-1] > seqs[0]


def test_unsubscribe_stops_that_symbol(client: WsClient) -> None:
    client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
    client.send({"action": "subscribe_ticker", "symbol": "ETHUSDT"})
    client.wait_for(lambda m: m["type"] == "MARKET_UPDATE" and m["symbol"] == "BTCUSDT")
    client.send({"action": "unsubscribe_ticker", "symbol": "BTCUSDT", "id": 2})
    assert client.reply(2)["type"] == "UNSUBSCRIBED"
    # BTC and ETH tick together: once two ETH updates passed, BTC must be silent.
    eth_seen = 0
    while eth_seen < 4:
        m = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
        if m["symbol"] == "ETHUSDT":
            eth_seen += 1
        else:
            assert eth_seen < 2, "BTCUSDT still streaming after UNSUBSCRIBED"


def test_market_order_end_to_end(client: WsClient) -> None:
    client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                 "type": "MARKET", "quantity": "0.01", "id": "o1"})
    new = client.reply("o1")
    assert new["type"] == "ORDER_UPDATE" and new["executionType"] == "NEW"
    assert new["orderType"] == "MARKET"
    trade = client.wait_for(lambda m: m.get("executionType") == "TRADE")
    order = trade["order"]
    assert order["status"] == "FILLED" and order["filledQuantity"] == 0.01
    price = Decimal(str(order["avgPrice"]))
    fee = Decimal(str(order["fee"]))
    assert fee == (Decimal("0.01") * price * Decimal(10) / Decimal(10000))
    client.send({"action": "get_positions", "id": "p"})
    pos = client.reply("p")["positions"]
    assert [(p["symbol"], p["side"], p["quantity"]) for p in pos] == [("BTCUSDT", "LONG", 0.01)]
    assert pos[0]["entryPrice"] == order["avgPrice"]
    client.send({"action": "get_portfolio", "id": "f"})
    pf = client.reply("f")["portfolio"]
    assert Decimal(str(pf["balance"])) == Decimal(10000) - fee
    assert pf["positionsCount"] == 1 and pf["openOrdersCount"] == 0
    client.send({"action": "get_orders", "status": "all", "id": "g"})
    orders = client.reply("g")["orders"]
    assert [o["orderId"] for o in orders] == [order["orderId"]]


def test_limit_order_rests_and_can_be_cancelled(client: WsClient) -> None:
    client.send({"action": "place_order", "symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                 "quantity": 0.1, "price": 1000, "clientOrderId": "cheap", "id": 1})
    assert client.reply(1)["order"]["status"] == "NEW"
    client.send({"action": "get_orders", "id": 2})
    assert [o["clientOrderId"] for o in client.reply(2)["orders"]] == ["cheap"]
    client.send({"action": "cancel_order", "clientOrderId": "cheap", "id": 3})
    assert client.reply(3)["executionType"] == "CANCELED"
    client.send({"action": "cancel_order", "clientOrderId": "cheap", "id": 4})
    err = client.reply(4)
    assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_ORDER"


BAD_INPUTS = [
    ("not json", "BAD_REQUEST"),
    ('{"action":"ping","n":NaN}', "BAD_REQUEST"),
    ("[1]", "BAD_REQUEST"),
    ("{}", "BAD_REQUEST"),
    ('{"action":"teleport","id":"t"}', "UNKNOWN_ACTION"),
    ('{"action":"subscribe_ticker","id":"t"}', "BAD_REQUEST"),
    ('{"action":"subscribe_ticker","symbol":"DOGEBTC","id":"t"}', "UNKNOWN_SYMBOL"),
    ('{"action":"subscribe_ticker","symbol":"BTC/USDT","id":"t"}', "UNKNOWN_SYMBOL"),
    ('{"action":"subscribe_ticker","symbol":7,"id":"t"}', "BAD_REQUEST"),
    ('{"action":"place_order","symbol":"BTC-USDT","side":"BUY","type":"MARKET",'
     '"quantity":1,"id":"t"}', "UNKNOWN_SYMBOL"),
    ('{"action":"cancel_order","orderId":"12","id":"t"}', "BAD_REQUEST"),
    ('{"action":"place_order","symbol":"BTCUSDT","side":"HOLD","type":"MARKET",'
     '"quantity":1,"id":"t"}', "BAD_REQUEST"),
    ('{"action":"place_order","symbol":"BTCUSDT","side":"BUY","type":"MARKET",'
     '"quantity":-1,"id":"t"}', "BAD_REQUEST"),
    ('{"action":"place_order","symbol":"NOPEUSDT","side":"BUY","type":"MARKET",'
     '"quantity":1,"id":"t"}', "UNKNOWN_SYMBOL"),
    ('{"action":"cancel_order","orderId":999999,"id":"t"}', "UNKNOWN_ORDER"),
    ('{"action":"auth","token":"wrong-token","id":"t"}', "UNAUTHORIZED"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_INPUTS)
def test_bad_input_gets_typed_error_and_connection_stays_open(client: WsClient, frame: str,
                                                              code: str) -> None:
    client.send_text(frame)
    err = client.wait_for(lambda m: m["type"] == "ERROR")
    assert err["code"] == code and err["message"]
    if '"id":"t"' in frame:
        assert err["id"] == "t"
    client.send({"action": "ping", "id": "alive"})
    assert client.reply("alive")["type"] == "PONG"
    client.send({"action": "get_portfolio", "id": "pf"})
    pf = client.reply("pf")["portfolio"]
    assert pf["balance"] == 10000 and pf["positionsCount"] == 0


def test_binary_frame_is_bad_request(client: WsClient) -> None:
    client.ws.send_binary(b"\xff\xfe{}")
    assert client.wait_for(lambda m: m["type"] == "ERROR")["code"] == "BAD_REQUEST"
    client.send({"action": "ping", "id": 1})
    assert client.reply(1)["type"] == "PONG"


def test_oversized_frame_closes_1009(engine: Engine, client: WsClient) -> None:
    client.recv()
    client.send_text('{"action":"ping","pad":"' + "x" * engine.config.server.max_message_bytes
                     + '"}')
    assert client.wait_closed() == 1009


def test_positions_and_portfolio_are_broadcast_on_their_cadence(client: WsClient) -> None:
    kinds = []
    while kinds.count("POSITION_UPDATE") < 3 or kinds.count("PORTFOLIO_UPDATE") < 2:
        m = client.wait_for(lambda m: m["type"] in ("POSITION_UPDATE", "PORTFOLIO_UPDATE"))
        assert "id" not in m
        kinds.append(m["type"])


def test_shutdown_closes_clients_with_1001(config: object) -> None:
    eng = Engine(config).start()  # type: ignore[arg-type]
    c = WsClient(eng.url)
    c.recv()
    eng.stop()
    assert c.wait_closed() == 1001
    c.close()


def test_unknown_path_is_404(engine: Engine) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(engine.url.replace("realtime", "nope"), timeout=5)
    assert info.value.status_code == 404


def test_cancel_by_list_id_cancels_the_whole_oco(client: WsClient) -> None:
    client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
    last = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")["price"]
    client.send({"action": "place_oco", "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01",
                 "above": {"type": "LIMIT_MAKER", "price": str(round(last * 1.5, 2))},
                 "below": {"type": "STOP_LOSS", "stopPrice": str(round(last * 0.5, 2))},
                 "id": "oco"})
    lst = client.wait_for(lambda m: m["type"] == "ORDER_LIST_UPDATE")["list"]
    assert lst["status"] == "EXECUTING"
    client.send({"action": "cancel_order", "listId": lst["listId"], "id": "c"})
    canceled = [client.wait_for(lambda m: m.get("executionType") == "CANCELED")["order"]
                for _ in range(2)]
    assert sorted(o["orderId"] for o in canceled) == sorted(lst["orderIds"])
    done = client.wait_for(lambda m: m["type"] == "ORDER_LIST_UPDATE")["list"]
    assert done["status"] == "ALL_DONE"


def test_order_events_carry_the_id_only_on_the_connection_that_asked(engine: Engine,
                                                                     client: WsClient) -> None:
    other = WsClient(engine.url)  # the same account (open mode), another connection
    try:
        assert other.recv()["type"] == "CONNECTED"
        client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                     "type": "MARKET", "quantity": 0.001, "id": "mine"})
        mine = [client.wait_for(lambda m: m["type"] == "ORDER_UPDATE") for _ in range(2)]
        seen = [other.wait_for(lambda m: m["type"] == "ORDER_UPDATE") for _ in range(2)]
        assert [m["executionType"] for m in mine] == ["NEW", "TRADE"]
        assert all(m["id"] == "mine" for m in mine)
        assert [m["executionType"] for m in seen] == ["NEW", "TRADE"]
        assert all("id" not in m for m in seen)
        assert [m["order"] for m in seen] == [m["order"] for m in mine]
    finally:
        other.close()
