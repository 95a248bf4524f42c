"""Binance's stream and user-data payloads, built from the engine's own values.

Pure core (the FeedActor's thread for market streams, the OrderMonitorActor's
for user data; nothing here keeps state). One builder per Binance event, each
fed from what our own protocol sends (a :class:`~engine.messages.Trade`, the
board's book, an :class:`~engine.trading.events.OrderEvent` or
:class:`~engine.trading.events.ListEvent`, a ledger's balances), so there is
no second source of truth. Binance writes prices and quantities as decimal
strings (at least 8 places); so do these builders, exactly.

A payload is encoded once; :func:`raw` frames it for ``/ws/...`` clients,
:func:`combined` wraps it ``{"stream": name, "data": payload}`` for
``/stream?streams=`` clients, and :func:`subscription_event` wraps it
``{"subscriptionId": n, "event": payload}`` for the WebSocket API's
``userDataStream.subscribe``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from engine.market.klines import Kline
from engine.market.quote_book import BookView
from engine.messages import BookLevel, MarketSnapshot, Trade
from engine.protocol.enums import ExecutionType
from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.trading.events import ListEvent, OrderEvent
from engine.trading.order import ListStatus, ListType, OrderStatus, OrderType

__all__ = [
    "BINANCE_EXECUTION_TYPE",
    "BalanceRow",
    "FillFacts",
    "KlineEvents",
    "agg_trade",
    "book_ticker",
    "combined",
    "decimal_text",
    "depth_update",
    "encode",
    "execution_report",
    "kline",
    "list_status",
    "mini_ticker",
    "outbound_account_position",
    "raw",
    "stream_answer",
    "stream_error",
    "subscription_event",
    "ticker_24h",
    "trade",
]

_EIGHT = Decimal("0.00000001")
_ZERO_TEXT = "0.00000000"

#: Our executionType → Binance's ``x``. A stop that triggers is reported as
#: Binance reports it (``NEW``, now working); an amend keeps its priority as
#: Binance's order amend does (``REPLACED``).
BINANCE_EXECUTION_TYPE: Mapping[ExecutionType, str] = {
    ExecutionType.NEW: "NEW",
    ExecutionType.TRIGGERED: "NEW",
    ExecutionType.AMENDED: "REPLACED",
    ExecutionType.TRADE: "TRADE",
    ExecutionType.CANCELED: "CANCELED",
    ExecutionType.EXPIRED: "EXPIRED",
    ExecutionType.REJECTED: "REJECTED",
}

#: Our list type → Binance's contingency type (an OTOCO list is ``OTO``).
_CONTINGENCY = {ListType.OCO: "OCO", ListType.BRACKET: "OTO"}
#: Our list status → Binance's (list status type ``l``, list order status ``L``).
_LIST_STATUS = {
    ListStatus.EXECUTING: ("EXEC_STARTED", "EXECUTING"),
    ListStatus.ALL_DONE: ("ALL_DONE", "ALL_DONE"),
    ListStatus.REJECTED: ("RESPONSE", "REJECT"),
}
#: Binance has no TRAILING_STOP type: a trailing stop is a STOP_LOSS with ``d``.
_ORDER_TYPE = {OrderType.TRAILING_STOP: "STOP_LOSS"}


def decimal_text(value: Decimal | None) -> str:
    """A price or quantity as Binance writes it: a decimal string with at least
    8 places (more when the exact value has more), ``"0.00000000"`` for none."""
    if value is None:
        return _ZERO_TEXT
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -8:
        value = value.quantize(_EIGHT)
    return format(value, "f")


def encode(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps(payload)


def raw(payload: bytes, conflate_key: str | None = None) -> Outgoing:
    """A raw stream's frame: the payload as it is."""
    return Outgoing(payload, text_frame(payload), conflate_key)


def combined(stream: str, payload: bytes, conflate_key: str | None = None) -> Outgoing:
    """A combined stream's frame: ``{"stream": stream, "data": payload}``."""
    body = b'{"stream":' + orjson.dumps(stream) + b',"data":' + payload + b"}"
    return Outgoing(body, text_frame(body), None if conflate_key is None
                    else f"c:{conflate_key}")


def subscription_event(subscription_id: int, payload: bytes) -> Outgoing:
    """A WebSocket API subscription's event: ``{"subscriptionId": n, "event": payload}``."""
    body = b'{"subscriptionId":' + str(subscription_id).encode() + b',"event":' + payload + b"}"
    return Outgoing(body, text_frame(body))


def stream_answer(result: Any, request_id: Any) -> Outgoing:
    """The answer to a live request: ``{"result": result, "id": id}``."""
    return raw(orjson.dumps({"result": result, "id": request_id}))


def stream_error(code: int, message: str, request_id: Any) -> Outgoing:
    """A refused live request: ``{"error": {"code": c, "msg": m}, "id": id}``."""
    return raw(orjson.dumps({"error": {"code": code, "msg": message}, "id": request_id}))


# -- market streams -----------------------------------------------------------


def trade(t: Trade, trade_id: int, event_time: int) -> bytes:
    """``<symbol>@trade``: one trade (Binance's ``t`` is ``trade_id``)."""
    return encode({
        "e": "trade", "E": event_time, "s": t.symbol, "t": trade_id,
        "p": decimal_text(t.price), "q": decimal_text(t.quantity), "T": t.trade_time,
        "m": bool(t.buyer_is_maker), "M": True,
    })


def agg_trade(t: Trade, trade_id: int, event_time: int) -> bytes:
    """``<symbol>@aggTrade``: the trade as an aggregate of itself (``a``, ``f``, ``l``
    all ``trade_id``: the engine's trades are Binance's aggregate trades already)."""
    return encode({
        "e": "aggTrade", "E": event_time, "s": t.symbol, "a": trade_id,
        "p": decimal_text(t.price), "q": decimal_text(t.quantity), "f": trade_id,
        "l": trade_id, "T": t.trade_time, "m": bool(t.buyer_is_maker), "M": True,
    })


def book_ticker(symbol: str, update_id: int, bid: Decimal, bid_qty: Decimal, ask: Decimal,
                ask_qty: Decimal) -> bytes:
    """``<symbol>@bookTicker``: the best bid and ask with their quantities."""
    return encode({
        "u": update_id, "s": symbol, "b": decimal_text(bid), "B": decimal_text(bid_qty),
        "a": decimal_text(ask), "A": decimal_text(ask_qty),
    })


def depth_update(prev: BookView | None, book: BookView, event_time: int) -> bytes:
    """``<symbol>@depth``: what changed from ``prev`` to ``book`` (each new or
    changed level with its quantity, each level gone with quantity 0; all of
    ``book`` when there is no ``prev``). ``U``..``u`` are the book's sequence
    numbers it covers, the ``lastUpdateId`` GET /api/v3/depth reports, so a
    client syncs a snapshot with the stream as Binance documents."""
    def diff(old: Iterable[BookLevel], new: Iterable[BookLevel]) -> list[list[str]]:
        before = dict(old)
        after = dict(new)
        out = [[decimal_text(p), decimal_text(q)] for p, q in after.items()
               if before.get(p) != q]
        out += [[decimal_text(p), _ZERO_TEXT] for p in before if p not in after]
        return out

    first = prev.seq + 1 if prev is not None else book.seq
    return encode({
        "e": "depthUpdate", "E": event_time, "s": book.symbol, "U": first, "u": book.seq,
        "b": diff(prev.bids if prev else (), book.bids),
        "a": diff(prev.asks if prev else (), book.asks),
    })


def ticker_24h(snap: MarketSnapshot, event_time: int) -> bytes:
    """``<symbol>@ticker``: the rolling 24 h statistics of one MARKET_UPDATE state.
    ``o`` is the last price less the change; what the board does not keep
    (quote volume ``q``, weighted average ``w``, last quantity ``Q``, trade ids
    and count) is 0 (``-1`` for the ids)."""
    change = snap.price_change
    open_ = snap.price - change if change is not None else None
    return encode({
        "e": "24hrTicker", "E": event_time, "s": snap.symbol,
        "p": decimal_text(change), "P": _percent(snap.price_change_percent),
        "w": _ZERO_TEXT, "x": decimal_text(open_), "c": decimal_text(snap.price),
        "Q": _ZERO_TEXT, "b": decimal_text(snap.bid), "B": decimal_text(snap.bid_qty),
        "a": decimal_text(snap.ask), "A": decimal_text(snap.ask_qty),
        "o": decimal_text(open_), "h": decimal_text(snap.high), "l": decimal_text(snap.low),
        "v": decimal_text(snap.volume), "q": _ZERO_TEXT,
        "O": snap.event_time - 86_400_000, "C": snap.event_time, "F": -1, "L": -1, "n": 0,
    })


def mini_ticker(snap: MarketSnapshot, event_time: int) -> bytes:
    """``<symbol>@miniTicker``: the short 24 h statistics (``q`` 0: not kept)."""
    change = snap.price_change
    return encode({
        "e": "24hrMiniTicker", "E": event_time, "s": snap.symbol,
        "c": decimal_text(snap.price),
        "o": decimal_text(snap.price - change if change is not None else None),
        "h": decimal_text(snap.high), "l": decimal_text(snap.low),
        "v": decimal_text(snap.volume), "q": _ZERO_TEXT,
    })


def _percent(value: Decimal | None) -> str:
    """Binance writes the 24 h change percent with 3 places."""
    return format((value or Decimal(0)).quantize(Decimal("0.001")), "f")


# -- user data ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillFacts:
    """What an ``executionReport`` of a fill says beyond the order: this fill's
    commission and its asset, the trade id, and whether the order was the maker."""

    commission: Decimal
    commission_asset: str | None
    trade_id: int
    maker: bool


def _reject_reason(reason: str | None) -> str:
    if reason is None:
        return "NONE"
    if reason.startswith("INSUFFICIENT_BALANCE"):
        return "INSUFFICIENT_BALANCES"
    return reason


def _working(event: OrderEvent) -> bool:
    order = event.order
    if not order.status.is_open or order.status is OrderStatus.PENDING_NEW:
        return False
    return not order.type.is_stop or order.triggered


def execution_report(event: OrderEvent, event_time: int, fill: FillFacts | None = None,
                     ) -> bytes:
    """``executionReport`` of one order event, every field Binance documents
    (``d`` only for a trailing stop, ``W`` only once working, as Binance)."""
    order = event.order
    filled = order.filled_quantity
    cum_quote = filled * order.avg_price if order.avg_price is not None else Decimal(0)
    last_qty = event.last_qty if event.last_qty is not None else Decimal(0)
    last_price = event.last_price if event.last_price is not None else Decimal(0)
    canceled = event.execution_type is ExecutionType.CANCELED
    working = _working(event)
    msg: dict[str, Any] = {
        "e": "executionReport",
        "E": event_time,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side.value,
        "o": _ORDER_TYPE.get(order.type, order.type.value),
        "f": order.time_in_force.value if order.time_in_force is not None else "GTC",
        "q": decimal_text(order.quantity),
        "p": decimal_text(order.price),
        "P": decimal_text(order.stop_price),
        "F": decimal_text(order.iceberg_qty),
        "g": order.list_id if order.list_id is not None else -1,
        "C": order.client_order_id if canceled else "",
        "x": BINANCE_EXECUTION_TYPE[event.execution_type],
        "X": order.status.value,
        "r": _reject_reason(order.reject_reason),
        "i": order.order_id,
        "l": decimal_text(last_qty),
        "z": decimal_text(filled),
        "L": decimal_text(last_price),
        "n": decimal_text(fill.commission) if fill is not None else "0",
        "N": fill.commission_asset if fill is not None else None,
        "T": order.update_time,
        "t": fill.trade_id if fill is not None else -1,
        "I": 0,
        "w": working,
        "m": fill.maker if fill is not None else False,
        "M": False,
        "O": order.create_time,
        "Z": decimal_text(cum_quote),
        "Y": decimal_text(last_qty * last_price),
        "Q": _ZERO_TEXT,
        "V": "NONE",
    }
    if order.trailing_delta is not None:
        msg["d"] = order.trailing_delta
    if working:
        msg["W"] = order.create_time
    return encode(msg)


def list_status(event: ListEvent, event_time: int, client_ids: Mapping[int, str]) -> bytes:
    """``listStatus`` of one list event (an OCO, or an OTOCO list as ``OTO``);
    ``client_ids`` maps each member order to its client order id."""
    lst = event.order_list
    status_type, order_status = _LIST_STATUS[lst.status]
    return encode({
        "e": "listStatus",
        "E": event_time,
        "s": lst.symbol,
        "g": lst.list_id,
        "c": _CONTINGENCY[lst.list_type],
        "l": status_type,
        "L": order_status,
        "r": _reject_reason(lst.reject_reason),
        "C": f"list-{lst.list_id}",
        "T": lst.update_time,
        "O": [{"s": lst.symbol, "i": oid, "c": client_ids.get(oid, "")}
              for oid in lst.order_ids],
    })


@dataclass(frozen=True, slots=True)
class BalanceRow:
    """One asset of ``outboundAccountPosition``: what is free and what is locked."""

    asset: str
    free: Decimal
    locked: Decimal


def outbound_account_position(balances: Iterable[BalanceRow], update_time: int,
                              event_time: int) -> bytes:
    """``outboundAccountPosition``: the assets the change touched, after it."""
    return encode({
        "e": "outboundAccountPosition",
        "E": event_time,
        "u": update_time,
        "B": [{"a": b.asset, "f": decimal_text(b.free), "l": decimal_text(b.locked)}
              for b in balances],
    })



def kline(bar: Kline, closed: bool, event_time: int) -> bytes:
    """``<symbol>@kline_<interval>``: one bar as it stands (``x``: it is final).
    ``f``/``L`` (first and last trade id) are -1 and the taker-buy volumes
    ``V``/``Q`` 0: the bar book does not keep them."""
    return encode({
        "e": "kline", "E": event_time, "s": bar.symbol,
        "k": {"t": bar.open_time, "T": bar.close_time, "s": bar.symbol, "i": bar.interval,
              "f": -1, "L": -1, "o": decimal_text(bar.open), "c": decimal_text(bar.close),
              "h": decimal_text(bar.high), "l": decimal_text(bar.low),
              "v": decimal_text(bar.volume), "n": bar.trades, "x": closed,
              "q": decimal_text(bar.quote_volume), "V": _ZERO_TEXT, "Q": _ZERO_TEXT,
              "B": "0"},
    })


class KlineEvents:
    """Which ``@kline`` events a bar update makes: when an interval's bar rolls
    over, the bar it replaces once more as final (``x: true``), then the new
    one. Holds the last bar per symbol and interval (bounded by the symbols
    served times the intervals); one owner thread."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], Kline] = {}

    def on_bars(self, bars: Iterable[Kline], event_time: int,
                wanted: Callable[[str], bool]) -> list[tuple[str, bytes, bool]]:
        """``(stream name, payload, final)`` of each event, for streams ``wanted``
        says someone subscribes (the last bar is remembered either way)."""
        out: list[tuple[str, bytes, bool]] = []
        for bar in bars:
            key = (bar.symbol, bar.interval)
            name = f"{bar.symbol.lower()}@kline_{bar.interval}"
            prev = self._last.get(key)
            self._last[key] = bar
            if not wanted(name):
                continue
            if prev is not None and prev.open_time < bar.open_time:
                out.append((name, kline(prev, True, event_time), True))
            out.append((name, kline(bar, False, event_time), False))
        return out
