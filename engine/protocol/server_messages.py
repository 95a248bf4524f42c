"""Server messages of protocol version 1, encoded to JSON bytes.

Pure core: every function takes the server time ``ts`` (epoch ms) as an
argument. Money is exact (:class:`~decimal.Decimal`) inside; on the wire a
value is the nearest double to the exact value (``float(Decimal)`` rounds
correctly), never rounded to a display precision.

:class:`Outgoing` pairs the JSON payload with its ready-made WebSocket text
frame, so a message encoded once can be written to any number of sockets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from engine.market.quote_book import BookView
from engine.messages import MarketSnapshot
from engine.protocol.enums import MessageType
from engine.protocol.frames import text_frame

__all__ = [
    "PROTOCOL_VERSION",
    "Outgoing",
    "book_conflate_key",
    "book_update",
    "connected",
    "encode",
    "error",
    "feed_status",
    "market_update",
    "order_list_update",
    "order_update",
    "orders",
    "portfolio_update",
    "position_update",
    "simple",
    "wire_number",
]

PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One server message: its JSON ``payload`` and the same bytes as a text ``frame``.

    ``conflate_key`` is set for messages a slow client may receive only the
    latest of (MARKET_UPDATE: the symbol); ``None`` means "deliver every one,
    in order".
    """

    payload: bytes
    frame: bytes
    conflate_key: str | None = None


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, (tuple, frozenset, set)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def encode(message: Mapping[str, Any], conflate_key: str | None = None) -> Outgoing:
    """Encode one message (a dict with ``type`` and ``timestamp``)."""
    payload = orjson.dumps(message, default=_default)
    return Outgoing(payload, text_frame(payload), conflate_key)


def wire_number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _with_id(msg: dict[str, Any], request_id: str | int | None) -> dict[str, Any]:
    if request_id is not None:
        msg["id"] = request_id
    return msg


def simple(
    type_: str, ts: int, request_id: str | int | None = None, **fields: Any
) -> Outgoing:
    """A small message: ``{"type": type_, **fields, "timestamp": ts}``."""
    msg: dict[str, Any] = {"type": type_, **fields, "timestamp": ts}
    return encode(_with_id(msg, request_id))


def connected(
    version: str, account: str | None, feed: Mapping[str, Any], ts: int
) -> Outgoing:
    return simple(
        "CONNECTED",
        ts,
        protocol=PROTOCOL_VERSION,
        server=f"tickdesk/{version}",
        account=account,
        feed=dict(feed),
    )


def error(code: str, message: str, ts: int, request_id: str | int | None = None) -> Outgoing:
    return simple("ERROR", ts, request_id, code=code, message=message)


def market_update(snap: MarketSnapshot, ts: int) -> Outgoing:
    """The MARKET_UPDATE of one symbol state; conflatable per symbol."""
    msg = {
        "type": "MARKET_UPDATE",
        "symbol": snap.symbol,
        "price": float(snap.price),
        "priceChange": wire_number(snap.price_change),
        "priceChangePercent": wire_number(snap.price_change_percent),
        "high": wire_number(snap.high),
        "low": wire_number(snap.low),
        "volume": wire_number(snap.volume),
        "bid": wire_number(snap.bid),
        "bidQty": wire_number(snap.bid_qty),
        "ask": wire_number(snap.ask),
        "askQty": wire_number(snap.ask_qty),
        "eventTime": snap.event_time,
        "seq": snap.seq,
        "timestamp": ts,
    }
    payload = orjson.dumps(msg)
    return Outgoing(payload, text_frame(payload), snap.symbol)


def book_conflate_key(symbol: str) -> str:
    """The conflation key of ``symbol``'s BOOK_UPDATE (distinct from MARKET_UPDATE's)."""
    return f"book:{symbol}"


def _wire_levels(levels: Iterable[tuple[Decimal, Decimal]]) -> list[list[float]]:
    return [[float(price), float(qty)] for price, qty in levels]


def book_update(book: BookView, ts: int) -> Outgoing:
    """The BOOK_UPDATE of one book state; conflatable per symbol (``book:<SYMBOL>``)."""
    msg = {
        "type": MessageType.BOOK_UPDATE,
        "symbol": book.symbol,
        "bids": _wire_levels(book.bids),
        "asks": _wire_levels(book.asks),
        "seq": book.seq,
        "timestamp": ts,
    }
    payload = orjson.dumps(msg)
    return Outgoing(payload, text_frame(payload), book_conflate_key(book.symbol))


def position_update(
    positions: Iterable[Mapping[str, Any]], ts: int, request_id: str | int | None = None
) -> Outgoing:
    return simple("POSITION_UPDATE", ts, request_id, positions=list(positions))


def portfolio_update(
    portfolio: Mapping[str, Any], ts: int, request_id: str | int | None = None
) -> Outgoing:
    return simple("PORTFOLIO_UPDATE", ts, request_id, portfolio=dict(portfolio))


def order_update(
    order_type: str,
    execution_type: str,
    order: Mapping[str, Any],
    ts: int,
    request_id: str | int | None = None,
) -> Outgoing:
    return simple(
        "ORDER_UPDATE",
        ts,
        request_id,
        orderType=order_type,
        executionType=execution_type,
        order=dict(order),
    )


def order_list_update(
    order_list: Mapping[str, Any], ts: int, request_id: str | int | None = None
) -> Outgoing:
    return simple("ORDER_LIST_UPDATE", ts, request_id, list=dict(order_list))


def orders(
    order_list: Iterable[Mapping[str, Any]], ts: int, request_id: str | int | None = None
) -> Outgoing:
    return simple("ORDERS", ts, request_id, orders=list(order_list))


def feed_status(status: Mapping[str, Any], ts: int) -> Outgoing:
    return simple("FEED_STATUS", ts, **status)
