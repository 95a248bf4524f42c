"""The message builders: one per message type, each the whole shape of its message.

The expected shapes are written out from the protocol (type, fields, ``timestamp``,
``id`` only on a direct reply), not derived from the builders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from engine.messages import MarketSnapshot
from engine.protocol import server_messages as sm
from engine.protocol.enums import ErrorCode, MessageType
from engine.trading import OrderBook
from tests.trading.helpers import place, place_oco, run


def wire(out: sm.Outgoing) -> dict[str, Any]:
    msg = orjson.loads(out.payload)
    assert out.frame.endswith(out.payload)  # the same bytes, framed once
    assert isinstance(msg, dict)
    return msg


def test_session_replies_carry_the_request_id_only_when_given() -> None:
    assert wire(sm.subscribed("BTCUSDT", 5, "a")) == {
        "type": "SUBSCRIBED", "symbol": "BTCUSDT", "timestamp": 5, "id": "a"}
    assert wire(sm.unsubscribed("BTCUSDT", 6)) == {
        "type": "UNSUBSCRIBED", "symbol": "BTCUSDT", "timestamp": 6}
    assert wire(sm.authenticated("bob", 7, 3)) == {
        "type": "AUTHENTICATED", "account": "bob", "timestamp": 7, "id": 3}
    assert wire(sm.pong(8, 0)) == {"type": "PONG", "timestamp": 8, "id": 0}
    assert wire(sm.pong(8)) == {"type": "PONG", "timestamp": 8}


def test_error_codes_are_plain_strings_on_the_wire() -> None:
    out = sm.error(ErrorCode.UNKNOWN_SYMBOL, "symbol X is not served", 9, "r")
    assert out.payload == (b'{"type":"ERROR","code":"UNKNOWN_SYMBOL",'
                           b'"message":"symbol X is not served","timestamp":9,"id":"r"}')


def test_connected_and_feed_status() -> None:
    assert wire(sm.connected("1.2.3", None, {"status": "UP"}, 1)) == {
        "type": "CONNECTED", "protocol": 1, "server": "tickdesk/1.2.3", "account": None,
        "feed": {"status": "UP"}, "timestamp": 1}
    status = {"feed": "binance", "status": "RECONNECTING", "attempt": 2, "retryInMs": 500,
              "reason": "eof"}
    assert wire(sm.feed_status(status, 2)) == {"type": "FEED_STATUS", **status, "timestamp": 2}


def test_market_update_is_conflatable_per_symbol() -> None:
    snap = MarketSnapshot("ETHUSDT", Decimal("3000.1"), None, None, Decimal(3100), None,
                          Decimal("12.5"), None, Decimal("3000.2"), 77, 4)
    out = sm.market_update(snap, 10)
    assert out.conflate_key == "ETHUSDT"
    assert wire(out) == {
        "type": "MARKET_UPDATE", "symbol": "ETHUSDT", "price": 3000.1, "priceChange": None,
        "priceChangePercent": None, "high": 3100.0, "low": None, "volume": 12.5, "bid": None,
        "bidQty": None, "ask": 3000.2, "askQty": None, "eventTime": 77, "seq": 4,
        "timestamp": 10}


def test_order_update_is_the_whole_message() -> None:
    book = OrderBook()
    event = place(book, 40000, now=3, type="LIMIT", price="39000.5").order_events()[0]
    msg = wire(sm.order_update(event, 11, "o1"))
    assert list(msg) == ["type", "orderType", "executionType", "order", "timestamp", "id"]
    assert (msg["type"], msg["orderType"], msg["executionType"]) == (
        "ORDER_UPDATE", "LIMIT", "NEW")
    assert (msg["timestamp"], msg["id"]) == (11, "o1")
    assert msg["order"]["orderId"] == 1 and msg["order"]["price"] == 39000.5
    assert msg["order"]["status"] == "NEW" and msg["order"]["listId"] is None
    assert "id" not in wire(sm.order_update(event, 11))
    assert sm.order_event(event, 11, "o1").payload == sm.order_update(event, 11, "o1").payload
    assert sm.order_update(event, 11).conflate_key is None  # every order event is delivered


def test_order_list_update_and_a_legs_order_type() -> None:
    out = place_oco(OrderBook(), 40000, side="SELL", quantity=1,
                    above={"type": "LIMIT_MAKER", "price": 41000},
                    below={"type": "STOP_LOSS", "stopPrice": 39000})
    (list_event,) = out.list_events()
    assert wire(sm.order_event(list_event, 4, 9)) == {
        "type": "ORDER_LIST_UPDATE",
        "list": {"listId": 1, "listType": "OCO", "status": "EXECUTING", "orderIds": [1, 2],
                 "rejectReason": None},
        "timestamp": 4, "id": 9}
    legs = [wire(sm.order_update(e, 4)) for e in out.order_events()]
    assert [m["orderType"] for m in legs] == ["OCO", "OCO"]
    assert [m["order"]["type"] for m in legs] == ["LIMIT_MAKER", "STOP_LOSS"]


def test_orders_lists_the_orders_given() -> None:
    book = OrderBook()
    place(book, 40000, type="LIMIT", price="39000")
    place(book, 40000, type="MARKET")
    run(book, [40000])
    msg = wire(sm.orders(book.all_orders("alice"), 12, "q"))
    assert msg["type"] == "ORDERS" and msg["id"] == "q" and msg["timestamp"] == 12
    assert [(o["orderId"], o["status"]) for o in msg["orders"]] == [(1, "NEW"), (2, "FILLED")]
    assert wire(sm.orders([], 12))["orders"] == []


def test_every_message_type_has_its_builder() -> None:
    """Each MessageType is produced by exactly one named builder of the module."""
    built = {
        MessageType.CONNECTED: sm.connected, MessageType.SUBSCRIBED: sm.subscribed,
        MessageType.UNSUBSCRIBED: sm.unsubscribed, MessageType.AUTHENTICATED: sm.authenticated,
        MessageType.MARKET_UPDATE: sm.market_update, MessageType.BOOK_UPDATE: sm.book_update,
        MessageType.POSITION_UPDATE: sm.position_update,
        MessageType.PORTFOLIO_UPDATE: sm.portfolio_update,
        MessageType.ORDER_UPDATE: sm.order_update,
        MessageType.ORDER_LIST_UPDATE: sm.order_list_update, MessageType.ORDERS: sm.orders,
        MessageType.FEED_STATUS: sm.feed_status, MessageType.PONG: sm.pong,
        MessageType.ERROR: sm.error, MessageType.SYMBOL_INFO: sm.symbol_info,
        MessageType.FILLS: sm.fills, MessageType.EQUITY_HISTORY: sm.equity_history,
        MessageType.KLINES: sm.klines,
        MessageType.SYMBOLS: sm.symbols,
        MessageType.RESUMED: sm.resumed,
    }
    assert set(built) == set(MessageType)
    assert all(b.__name__ in sm.__all__ for b in built.values())
