"""Server messages of protocol version 1, encoded to JSON bytes.

Pure core: every function takes the server time ``ts`` (epoch ms) as an
argument. This module is the one place a server message is shaped: each
message type of :class:`~engine.protocol.enums.MessageType` has one named
builder here, and callers (actors, the Engine facade, the bench) only pass
values in; none of them adds or changes a field. A builder that answers a
command takes its ``request_id`` and puts it on the message as ``id``.

Money is exact (:class:`~decimal.Decimal`) inside; on the wire a value is
the nearest double to the exact value (``float(Decimal)`` rounds correctly),
never rounded to a display precision.

:class:`Outgoing` pairs the JSON payload with its ready-made WebSocket text
frame, so a message encoded once can be written to any number of sockets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine.market.klines import Kline
from engine.market.quote_book import BookView
from engine.market.symbol_info import SymbolInfo
from engine.messages import MarketSnapshot
from engine.protocol.enums import ErrorCode, MessageType
from engine.protocol.frames import text_frame
from engine.trading.events import Event, ListEvent, OrderEvent
from engine.trading.history import EquitySample, FillRecord, FillsPage
from engine.trading.order import Order
from engine.trading.order_list import OrderList

if TYPE_CHECKING:
    from engine.trading.ledger import Ledger

__all__ = [
    "PROTOCOL_VERSION",
    "Outgoing",
    "authenticated",
    "book_update",
    "connected",
    "equity_history",
    "error",
    "feed_status",
    "fill_object",
    "fills",
    "kline_row",
    "klines",
    "list_object",
    "market_update",
    "order_event",
    "order_list_update",
    "order_object",
    "order_update",
    "orders",
    "pong",
    "portfolio_update",
    "position_update",
    "resumed",
    "subscribed",
    "symbol_info",
    "symbols",
    "unsubscribed",
]

RequestId = str | int | None

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


def _encode(message: Mapping[str, Any], conflate_key: str | None = None) -> Outgoing:
    """Encode one message (a dict with ``type`` and ``timestamp``)."""
    payload = orjson.dumps(message, default=_default)
    return Outgoing(payload, text_frame(payload), conflate_key)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _with_id(msg: dict[str, Any], request_id: RequestId) -> dict[str, Any]:
    if request_id is not None:
        msg["id"] = request_id
    return msg


def _simple(type_: str, ts: int, request_id: RequestId = None, **fields: Any) -> Outgoing:
    """``{"type": type_, **fields, "timestamp": ts, "id": request_id}`` (no ``id`` when
    ``request_id`` is None). The shared shape of the builders below; not for callers."""
    msg: dict[str, Any] = {"type": type_, **fields, "timestamp": ts}
    return _encode(_with_id(msg, request_id))


def connected(
    version: str, account: str | None, feed: Mapping[str, Any], ts: int,
    epoch: str | None = None, session: str | None = None,
) -> Outgoing:
    """CONNECTED: the first message of every connection (``epoch``: the name
    of the account events' history, for ``resume``; ``session``: this
    connection's session, whose market subscriptions ``resume`` restores)."""
    fields: dict[str, Any] = {"protocol": PROTOCOL_VERSION, "server": f"tickdesk/{version}",
                              "account": account, "feed": dict(feed)}
    if epoch is not None:
        fields["epoch"] = epoch
    if session is not None:
        fields["session"] = session
    return _simple(MessageType.CONNECTED, ts, **fields)


def resumed(recovered: bool, ts: int, request_id: RequestId = None, *,
            restored: bool | None = None, symbols: Sequence[str] = (),
            books: Sequence[str] = ()) -> Outgoing:
    """RESUMED: the end of a ``resume`` (after the missed events, if recovered;
    after the restored subscriptions' SUBSCRIBED and snapshots). ``restored``
    (only when the resume named a ``session``): whether its market
    subscriptions were restored, and which (``subscriptions``)."""
    extra: dict[str, Any] = {}
    if restored is not None:
        extra = {"restored": restored,
                 "subscriptions": {"symbols": list(symbols), "books": list(books)}}
    return _simple(MessageType.RESUMED, ts, request_id, recovered=recovered, **extra)


def subscribed(symbol: str, ts: int, request_id: RequestId = None,
               stream: str | None = None) -> Outgoing:
    """SUBSCRIBED: the reply to ``subscribe_ticker``, or with ``stream="book"`` to
    ``subscribe_book``."""
    extra = {} if stream is None else {"stream": stream}
    return _simple(MessageType.SUBSCRIBED, ts, request_id, symbol=symbol, **extra)


def unsubscribed(symbol: str, ts: int, request_id: RequestId = None,
                 stream: str | None = None) -> Outgoing:
    """UNSUBSCRIBED: the reply to ``unsubscribe_ticker``, or with ``stream="book"``
    to ``unsubscribe_book``."""
    extra = {} if stream is None else {"stream": stream}
    return _simple(MessageType.UNSUBSCRIBED, ts, request_id, symbol=symbol, **extra)


def authenticated(account: str, ts: int, request_id: RequestId = None) -> Outgoing:
    """AUTHENTICATED: the reply to a successful ``auth``."""
    return _simple(MessageType.AUTHENTICATED, ts, request_id, account=account)


def pong(ts: int, request_id: RequestId = None) -> Outgoing:
    """PONG: the reply to ``ping``."""
    return _simple(MessageType.PONG, ts, request_id)


def error(code: ErrorCode, message: str, ts: int, request_id: RequestId = None) -> Outgoing:
    """ERROR: a command that was refused (``message`` is for people)."""
    return _simple(MessageType.ERROR, ts, request_id, code=code, message=message)


def market_update(snap: MarketSnapshot, ts: int) -> Outgoing:
    """The MARKET_UPDATE of one symbol state; conflatable per symbol."""
    msg = {
        "type": MessageType.MARKET_UPDATE,
        "symbol": snap.symbol,
        "price": float(snap.price),
        "priceChange": _number(snap.price_change),
        "priceChangePercent": _number(snap.price_change_percent),
        "high": _number(snap.high),
        "low": _number(snap.low),
        "volume": _number(snap.volume),
        "bid": _number(snap.bid),
        "bidQty": _number(snap.bid_qty),
        "ask": _number(snap.ask),
        "askQty": _number(snap.ask_qty),
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
    ledger: Ledger,
    marks: Mapping[str, Decimal],
    ts: int,
    request_id: str | int | None = None,
) -> Outgoing:
    """The POSITION_UPDATE of one account: its open positions (flat ones are not
    listed), each valued at its mark (``markPrice`` null, ``unrealizedPnl`` 0 and
    ``notional`` at the entry price while a symbol has no mark)."""
    positions: list[dict[str, Any]] = []
    for pos in ledger.open_positions():
        mark = marks.get(pos.symbol)
        qty = abs(pos.quantity)
        positions.append(
            {
                "symbol": pos.symbol,
                "side": "LONG" if pos.quantity > 0 else "SHORT",
                "quantity": qty,
                "entryPrice": pos.entry_price,
                "markPrice": mark,
                "unrealizedPnl": pos.unrealized(mark),
                "realizedPnl": pos.realized_pnl,
                "notional": qty * (mark if mark is not None else pos.entry_price),
            }
        )
    return _simple(MessageType.POSITION_UPDATE, ts, request_id, positions=positions)


def portfolio_update(
    ledger: Ledger,
    marks: Mapping[str, Decimal],
    open_orders: int,
    ts: int,
    request_id: str | int | None = None,
) -> Outgoing:
    """The PORTFOLIO_UPDATE of one account, valued in its home asset at the
    last prices (:func:`engine.trading.valuation.account_value`): every
    asset's ``free``, ``locked`` and ``total`` (and ``value`` in the home
    asset, None when it has no rate); ``equity``, ``unrealizedPnl``,
    ``realizedPnl``, ``fees`` and ``totalPnl`` (``realized + unrealized -
    fees``) sum the valued assets only; ``unvalued`` names the others.
    ``balance`` is the home asset's total. ``open_orders`` is the account's
    open-order count (the order book's, which the caller passes in)."""
    from engine.trading.valuation import account_value

    valued = account_value(ledger, marks)
    portfolio = {
        "homeAsset": valued.home_asset,
        "balance": ledger.balance,
        "equity": valued.equity,
        "unrealizedPnl": valued.unrealized_pnl,
        "realizedPnl": valued.realized_pnl,
        "totalPnl": valued.realized_pnl + valued.unrealized_pnl - valued.fees,
        "fees": valued.fees,
        "balances": [
            {"asset": a.asset, "free": a.free, "locked": a.locked, "total": a.total,
             "value": a.value}
            for a in valued.assets
        ],
        "unvalued": list(valued.unvalued),
        "positionsCount": len(ledger.open_positions()),
        "openOrdersCount": open_orders,
    }
    return _simple(MessageType.PORTFOLIO_UPDATE, ts, request_id, portfolio=portfolio)


def order_object(order: Order) -> dict[str, Any]:
    """The ``order`` object of ORDER_UPDATE and ORDERS (camelCase, None for absent
    values, Decimals left for the encoder)."""
    return {
        "orderId": order.order_id,
        "clientOrderId": order.client_order_id,
        "listId": order.list_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "status": order.status,
        "quantity": order.quantity,
        "price": order.price,
        "stopPrice": order.stop_price,
        "trailingDelta": order.trailing_delta,
        "currentStopPrice": order.current_stop_price,
        "trailingExtreme": order.trailing_extreme,
        "filledQuantity": order.filled_quantity,
        "avgPrice": order.avg_price,
        "fee": order.fee,
        "timeInForce": order.time_in_force,
        "icebergQty": order.iceberg_qty,
        "rejectReason": order.reject_reason,
        "createTime": order.create_time,
        "updateTime": order.update_time,
    }


def list_object(order_list: OrderList) -> dict[str, Any]:
    """The ``list`` object of ORDER_LIST_UPDATE."""
    return {
        "listId": order_list.list_id,
        "listType": order_list.list_type,
        "status": order_list.status,
        "orderIds": list(order_list.order_ids),
        "rejectReason": order_list.reject_reason,
    }


def order_update(event: OrderEvent, ts: int, request_id: RequestId = None) -> Outgoing:
    """ORDER_UPDATE of one order event; ``orderType`` is the list's type (OCO,
    BRACKET) for a leg of a list, else the order's type. A fill (``TRADE``)
    also carries ``lastQty`` / ``lastPrice`` (this fill) and ``executedQty``
    (cumulative, the order's ``filledQuantity``)."""
    order = event.order
    fill: dict[str, Any] = {}
    if event.last_qty is not None:
        fill = {"lastQty": event.last_qty, "lastPrice": event.last_price,
                "executedQty": order.filled_quantity}
    return _simple(
        MessageType.ORDER_UPDATE,
        ts,
        request_id,
        orderType=order.list_type if order.list_type is not None else order.type,
        executionType=event.execution_type,
        order=order_object(order),
        **fill,
    )


def order_list_update(event: ListEvent, ts: int, request_id: RequestId = None) -> Outgoing:
    """ORDER_LIST_UPDATE of one list event."""
    return _simple(MessageType.ORDER_LIST_UPDATE, ts, request_id,
                  list=list_object(event.order_list))


def order_event(event: Event, ts: int, request_id: RequestId = None) -> Outgoing:
    """The message of any event the order book reports (ORDER_UPDATE or ORDER_LIST_UPDATE)."""
    if isinstance(event, OrderEvent):
        return order_update(event, ts, request_id)
    return order_list_update(event, ts, request_id)


def orders(found: Iterable[Order], ts: int, request_id: RequestId = None) -> Outgoing:
    """ORDERS: the reply to ``get_orders``."""
    return _simple(MessageType.ORDERS, ts, request_id, orders=[order_object(o) for o in found])


def feed_status(status: Mapping[str, Any], ts: int) -> Outgoing:
    """FEED_STATUS: the feed's state (sent to every connection on each change)."""
    return _simple(MessageType.FEED_STATUS, ts, **status)


def _exact(value: Decimal) -> str:
    return format(value, "f")


def _filter_objects(info: SymbolInfo) -> list[dict[str, Any]]:
    """The symbol's filters as Binance's exchangeInfo writes them (values exact,
    as strings); the filters the engine does not apply as received."""
    out: list[dict[str, Any]] = []
    if info.price_filter is not None:
        p = info.price_filter
        out.append({"filterType": "PRICE_FILTER", "minPrice": _exact(p.min_price),
                    "maxPrice": _exact(p.max_price), "tickSize": _exact(p.tick_size)})
    if info.percent_price is not None:
        pp = info.percent_price
        out.append({"filterType": "PERCENT_PRICE", "multiplierUp": _exact(pp.multiplier_up),
                    "multiplierDown": _exact(pp.multiplier_down),
                    "avgPriceMins": pp.avg_price_mins})
    if info.percent_price_by_side is not None:
        b = info.percent_price_by_side
        out.append({"filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": _exact(b.bid_multiplier_up),
                    "bidMultiplierDown": _exact(b.bid_multiplier_down),
                    "askMultiplierUp": _exact(b.ask_multiplier_up),
                    "askMultiplierDown": _exact(b.ask_multiplier_down),
                    "avgPriceMins": b.avg_price_mins})
    for kind, lot in (("LOT_SIZE", info.lot_size), ("MARKET_LOT_SIZE", info.market_lot_size)):
        if lot is not None:
            out.append({"filterType": kind, "minQty": _exact(lot.min_qty),
                        "maxQty": _exact(lot.max_qty), "stepSize": _exact(lot.step_size)})
    if info.min_notional is not None:
        m = info.min_notional
        out.append({"filterType": "MIN_NOTIONAL", "minNotional": _exact(m.min_notional),
                    "applyToMarket": m.apply_to_market, "avgPriceMins": m.avg_price_mins})
    if info.notional is not None:
        n = info.notional
        out.append({"filterType": "NOTIONAL", "minNotional": _exact(n.min_notional),
                    "applyMinToMarket": n.apply_min_to_market,
                    "maxNotional": _exact(n.max_notional),
                    "applyMaxToMarket": n.apply_max_to_market,
                    "avgPriceMins": n.avg_price_mins})
    if info.trailing_delta is not None:
        t = info.trailing_delta
        out.append({"filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": t.min_trailing_above_delta,
                    "maxTrailingAboveDelta": t.max_trailing_above_delta,
                    "minTrailingBelowDelta": t.min_trailing_below_delta,
                    "maxTrailingBelowDelta": t.max_trailing_below_delta})
    out.extend(dict(f) for f in info.other_filters)
    return out


def symbol_info(info: SymbolInfo, ts: int, request_id: RequestId = None) -> Outgoing:
    """SYMBOL_INFO: the reply to ``get_symbol_info`` — the symbol's assets, status,
    precisions and filters in Binance's exchangeInfo field names, and where the
    filters came from (``filtersSource``)."""
    return _simple(
        MessageType.SYMBOL_INFO,
        ts,
        request_id,
        symbol=info.symbol,
        status=info.status,
        baseAsset=info.base_asset,
        baseAssetPrecision=info.base_asset_precision,
        quoteAsset=info.quote_asset,
        quoteAssetPrecision=info.quote_asset_precision,
        filters=_filter_objects(info),
        filtersSource=info.source,
    )


def symbols(served: Iterable[str], ts: int, request_id: RequestId = None) -> Outgoing:
    """SYMBOLS: the reply to ``get_symbols`` — every symbol the feed serves now
    (configured first, in their order, then those added live)."""
    return _simple(MessageType.SYMBOLS, ts, request_id, symbols=list(served))


def fill_object(fill: FillRecord) -> dict[str, Any]:
    """One fill of FILLS (``feeAsset`` / ``realizedPnl`` null for fills recorded
    before the history kept them)."""
    return {
        "fillId": fill.fill_id,
        "orderId": fill.order_id,
        "clientOrderId": fill.client_order_id,
        "symbol": fill.symbol,
        "side": fill.side,
        "price": fill.price,
        "quantity": fill.quantity,
        "fee": fill.fee,
        "feeAsset": fill.fee_asset,
        "realizedPnl": fill.realized_pnl,
        "time": fill.time,
    }


def fills(page: FillsPage, ts: int, request_id: RequestId = None) -> Outgoing:
    """FILLS: the reply to ``get_fills``, newest first; ``nextBefore`` is the
    ``before`` of the next (older) page, null on the last page."""
    return _simple(MessageType.FILLS, ts, request_id,
                   fills=[fill_object(f) for f in page.fills], nextBefore=page.next_before)


def kline_row(bar: Kline) -> list[Any]:
    """One bar as Binance's REST ``klines`` row: ``[openTime, "open", "high",
    "low", "close", "volume", closeTime, "quoteVolume", trades]`` (decimals as
    exact strings, as Binance writes them)."""
    return [bar.open_time, _exact(bar.open), _exact(bar.high), _exact(bar.low),
            _exact(bar.close), _exact(bar.volume), bar.close_time, _exact(bar.quote_volume),
            bar.trades]


def klines(symbol: str, interval: str, bars: Iterable[Kline], ts: int,
           request_id: RequestId = None) -> Outgoing:
    """KLINES: the reply to ``get_klines``, oldest first."""
    return _simple(MessageType.KLINES, ts, request_id, symbol=symbol, interval=interval,
                   klines=[kline_row(b) for b in bars])


def equity_history(samples: Iterable[EquitySample], ts: int,
                   request_id: RequestId = None) -> Outgoing:
    """EQUITY_HISTORY: the reply to ``get_equity_history``, oldest first."""
    return _simple(MessageType.EQUITY_HISTORY, ts, request_id,
                   samples=[{"time": s.time, "equity": s.equity} for s in samples])
