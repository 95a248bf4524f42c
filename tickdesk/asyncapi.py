"""The AsyncAPI 3.0 document of tickdesk's WebSocket endpoints, generated.

Public surface (any thread; the daemon builds it once at start and serves it
at ``/asyncapi.json``). Generated from the definitions the server itself
uses, so it cannot drift from them:

* our protocol (``/api/ws/realtime``): one message per command of the
  command parsers' table (:data:`engine.protocol.commands.PARSERS`, which
  names every :class:`~engine.protocol.enums.Action`) and one per server
  message (:class:`~engine.protocol.enums.MessageType`, each described by its
  builder's docstring in :mod:`engine.protocol.server_messages`), with the
  error and close codes of the enums;
* Binance's streams: the stream paths, the live requests
  (:class:`engine.binance.stream_names.Method`) and each event's payload,
  whose schema is derived from what the builders of
  :mod:`engine.binance.stream_payloads` produce.

``python -m tickdesk.asyncapi`` writes ``docs/asyncapi.json`` (``--check``
exits 1 when the file differs from what it would write).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from engine.binance import stream_payloads as bp
from engine.binance.stream_names import (
    KLINE_INTERVALS,
    MAX_STREAMS,
    WS_API_PATH,
    Method,
    StreamErrorCode,
)
from engine.binance.ws_api import WsApiCode, WsApiMethod
from engine.market.klines import Kline
from engine.market.quote_book import BookView
from engine.messages import MarketSnapshot, Trade
from engine.money import Side
from engine.protocol import server_messages as sm
from engine.protocol.commands import ACCOUNT_ACTIONS, PARSERS
from engine.protocol.enums import CloseCode, ErrorCode, ExecutionType, MessageType
from engine.trading.events import ListEvent, OrderEvent
from engine.trading.order import ListStatus, ListType, Order, OrderStatus, OrderType
from engine.trading.order_list import OrderList

__all__ = ["DOC_PATH", "build", "encoded", "main"]

#: Where the committed document lives (``tests/docs`` keeps it equal to :func:`build`).
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"
WS_PATH = "/api/ws/realtime"


def _doc(obj: Any) -> str:
    text = inspect.getdoc(obj) or ""
    return text.split("\n\n")[0].replace("\n", " ")


def _schema_of(value: Any) -> dict[str, Any]:
    """A JSON schema of one example value (the builders' output)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if value is None:
        return {"type": ["string", "null"]}
    if isinstance(value, list):
        return {"type": "array", "items": _schema_of(value[0]) if value else {}}
    props = {k: _schema_of(v) for k, v in value.items()}
    return {"type": "object", "properties": props, "required": sorted(props)}


def _examples() -> dict[str, bytes]:
    """One payload of each Binance event, built by the server's own builders."""
    trade = Trade("BTCUSDT", Decimal("65000.1"), Decimal("0.01"), 1700000000001,
                  1700000000000, 1, False)
    order = Order(1, "bot-1", "a", "BTCUSDT", Side.BUY, OrderType.LIMIT,
                  OrderStatus.PARTIALLY_FILLED, Decimal("0.02"), 1700000000000,
                  1700000000002, price=Decimal("65000"), filled_quantity=Decimal("0.01"),
                  avg_price=Decimal("65000"))
    fill = bp.FillFacts(Decimal("0.65"), "USDT", 1, True)
    lst = OrderList(1, ListType.OCO, "a", "BTCUSDT", ListStatus.EXECUTING, (1, 2),
                    1700000000000, 1700000000000)
    snap = MarketSnapshot("BTCUSDT", Decimal("65000.1"), Decimal("100"), Decimal("0.154"),
                          Decimal("65500"), Decimal("64000"), Decimal("1234.5"),
                          Decimal("65000"), Decimal("65000.1"), 1700000000001, 7,
                          Decimal("1"), Decimal("2"))
    book = BookView("BTCUSDT", ((Decimal("65000"), Decimal("1")),),
                    ((Decimal("65000.1"), Decimal("2")),), 8, 1700000000001)
    bar = Kline("BTCUSDT", "1m", 1699999980000, 1700000039999, Decimal("64990"),
                Decimal("65010"), Decimal("64980"), Decimal("65000.1"), Decimal("3"),
                Decimal("195000"), 12)
    return {
        "trade": bp.trade(trade, 1, trade.event_time),
        "24hrTicker": bp.ticker_24h(snap, snap.event_time),
        "24hrMiniTicker": bp.mini_ticker(snap, snap.event_time),
        "depthUpdate": bp.depth_update(None, book, book.event_time),
        "kline": bp.kline(bar, False, 1700000000001),
        "aggTrade": bp.agg_trade(trade, 1, trade.event_time),
        "bookTicker": bp.book_ticker("BTCUSDT", 1, Decimal("65000"), Decimal("1"),
                                     Decimal("65000.1"), Decimal("2")),
        "executionReport": bp.execution_report(
            OrderEvent(ExecutionType.TRADE, order, Decimal("0.01"), Decimal("65000")),
            1700000000002, fill),
        "listStatus": bp.list_status(ListEvent(lst), 1700000000000, {1: "a", 2: "b"}),
        "outboundAccountPosition": bp.outbound_account_position(
            [bp.BalanceRow("USDT", Decimal("9000"), Decimal("1000"))], 1700000000002,
            1700000000002),
    }


def _our_protocol() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    messages: dict[str, Any] = {}
    for action, parser in PARSERS.items():
        messages[f"cmd_{action.value}"] = {
            "name": action.value,
            "title": f"{action.value} command",
            "summary": _doc(parser) or f"The {action.value} command.",
            "payload": {"type": "object", "required": ["action"], "properties": {
                "action": {"const": action.value},
                "id": {"type": ["string", "integer"], "maxLength": 64},
            }, "additionalProperties": True},
            "x-tickdesk-needs-auth": action in ACCOUNT_ACTIONS,
        }
    for mt in MessageType:
        builder = getattr(sm, mt.value.lower())
        messages[f"msg_{mt.value}"] = {
            "name": mt.value,
            "title": mt.value,
            "summary": _doc(builder),
            "payload": {"type": "object", "required": ["type", "timestamp"], "properties": {
                "type": {"const": mt.value},
                "timestamp": {"type": "integer", "description": "server time, epoch ms"},
                "id": {"type": ["string", "integer"]},
                **({"code": {"enum": [c.value for c in ErrorCode]}}
                   if mt is MessageType.ERROR else {}),
            }, "additionalProperties": True},
        }
    channel = {
        "address": WS_PATH,
        "title": "tickdesk protocol version 1",
        "description": "One JSON object per text frame; every field is in docs/protocol.md.",
        "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
        "x-close-codes": {c.name: c.value for c in CloseCode},
    }
    ops = {
        "sendCommand": {"action": "receive", "channel": {"$ref": "#/channels/realtime"},
                        "messages": [{"$ref": f"#/channels/realtime/messages/{k}"}
                                     for k in messages if k.startswith("cmd_")]},
        "receiveMessage": {"action": "send", "channel": {"$ref": "#/channels/realtime"},
                           "messages": [{"$ref": f"#/channels/realtime/messages/{k}"}
                                        for k in messages if k.startswith("msg_")]},
    }
    return {"realtime": channel}, ops, messages


def _binance() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    messages: dict[str, Any] = {}
    for name, payload in _examples().items():
        messages[f"binance_{name}"] = {
            "name": name, "title": f"Binance {name}",
            "payload": _schema_of(orjson.loads(payload)),
            "examples": [{"payload": orjson.loads(payload)}],
        }
    messages["binance_request"] = {
        "name": "request", "title": "Binance live request",
        "payload": {"type": "object", "required": ["method"], "properties": {
            "method": {"enum": [m.value for m in Method]},
            "params": {"type": "array", "items": {"type": "string"},
                       "maxItems": MAX_STREAMS},
            "id": {"type": ["integer", "string", "null"]}}},
    }
    messages["binance_answer"] = {
        "name": "answer", "title": "Binance answer",
        "payload": {"type": "object", "required": ["id"], "properties": {
            "result": {"type": ["null", "array"]},
            "error": {"type": "object", "properties": {
                "code": {"enum": [c.value for c in StreamErrorCode]},
                "msg": {"type": "string"}}},
            "id": {"type": ["integer", "string", "null"]}}},
    }
    messages["binance_wsApiRequest"] = {
        "name": "wsApiRequest", "title": "Binance WebSocket API request",
        "payload": {"type": "object", "required": ["id", "method"], "properties": {
            "id": {"type": ["integer", "string", "null"]},
            "method": {"enum": [m.value for m in WsApiMethod]},
            "params": {"type": "object"}}},
    }
    messages["binance_wsApiAnswer"] = {
        "name": "wsApiAnswer", "title": "Binance WebSocket API answer",
        "payload": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": ["integer", "string", "null"]},
            "status": {"type": "integer"},
            "result": {},
            "error": {"type": "object", "properties": {
                "code": {"enum": [c.value for c in WsApiCode]},
                "msg": {"type": "string"}}}}},
    }
    messages["binance_subscriptionEvent"] = {
        "name": "subscriptionEvent", "title": "Binance user data event (WebSocket API)",
        "payload": {"type": "object", "required": ["subscriptionId", "event"], "properties": {
            "subscriptionId": {"type": "integer"},
            "event": {"type": "object", "description": "an executionReport, listStatus or "
                                                      "outboundAccountPosition"}}},
    }
    market = [f"binance_{k}" for k in ("trade", "aggTrade", "24hrTicker", "24hrMiniTicker",
                                       "bookTicker", "depthUpdate", "kline")]
    user = [f"binance_{k}" for k in ("executionReport", "listStatus",
                                     "outboundAccountPosition")]
    live = ["binance_request", "binance_answer"]

    def refs(keys: list[str]) -> dict[str, Any]:
        return {k: {"$ref": f"#/components/messages/{k}"} for k in keys}

    channels = {
        "binanceRaw": {
            "address": "/ws/{streamName}",
            "description": "A raw Binance stream: <symbol>@trade, @aggTrade, @ticker, "
                           "@miniTicker, @bookTicker, @depth[@100ms], @kline_<interval> "
                           f"({', '.join(KLINE_INTERVALS)}); lower-case symbol. "
                           "Also /ws (and /ws/<digits>) with no stream.",
            "parameters": {"streamName": {}},
            "messages": refs(market + live)},
        "binanceCombined": {
            "address": "/stream",
            "description": "?streams=a/b/c; each event wrapped {\"stream\": name, "
                           "\"data\": payload}; a listen key among the names adds the "
                           "user data stream.",
            "messages": refs(market + user + live)},
        "binanceWsApi": {
            "address": WS_API_PATH,
            "description": "The slice of Binance's WebSocket API user data needs: "
                           "userDataStream.subscribe.signature (HMAC-SHA256 with the "
                           "account's api_secret), then the account's events.",
            "messages": refs(["binance_wsApiRequest", "binance_wsApiAnswer",
                              "binance_subscriptionEvent"])},
        "binanceUser": {
            "address": "/ws/{listenKey}",
            "description": "The user data stream of the listen key's account.",
            "parameters": {"listenKey": {}},
            "messages": refs(user + live)},
    }
    ops = {
        f"receive_{cid}": {"action": "send", "channel": {"$ref": f"#/channels/{cid}"},
                           "messages": [{"$ref": f"#/channels/{cid}/messages/{k}"}
                                        for k in ch["messages"]]}
        for cid, ch in channels.items()
    }
    return channels, ops, messages


def build() -> dict[str, Any]:
    """The whole document (deterministic: equal definitions give equal bytes)."""
    ours = _our_protocol()
    theirs = _binance()
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "tickdesk WebSocket API", "version": str(sm.PROTOCOL_VERSION),
                 "description": "tickdesk's own protocol and the Binance-compatible "
                                "streams, on the daemon's port."},
        "servers": {"local": {"host": "127.0.0.1:8000", "protocol": "ws"}},
        "channels": {**ours[0], **theirs[0]},
        "operations": {**ours[1], **theirs[1]},
        "components": {"messages": {**ours[2], **theirs[2]}},
    }


def encoded() -> bytes:
    """:func:`build` as the bytes of ``docs/asyncapi.json`` (sorted keys, indented)."""
    return orjson.dumps(build(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tickdesk.asyncapi")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/asyncapi.json differs from the generated one")
    parser.add_argument("--out", type=Path, default=DOC_PATH)
    args = parser.parse_args(argv)
    data = encoded()
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        if not same:
            print(f"{args.out} is out of date: run python -m tickdesk.asyncapi",
                  file=sys.stderr)
        return 0 if same else 1
    args.out.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
