"""Typed requests parsed from ``place_order``, ``place_oco``, ``place_bracket``,
``cancel_order`` and ``amend_order`` command bodies (dicts as decoded from JSON).

Pure core: no threads, sockets, clocks or pykka. These are the one validator
of each trading command: :func:`engine.protocol.commands.decode_command`
calls them. Parsing checks shape and types only (docs/trading.md); a malformed body raises
:class:`~engine.trading.errors.RequestError` naming the field, e.g.
``stopLoss.stopPrice`` (a ``symbol`` that is not one raises
:class:`~engine.errors.UnknownSymbol`). Anything that depends on the market or the account
(prices relative to the last trade, buying power, duplicate ids) is decided by
the :class:`~engine.trading.book.OrderBook` and ends in a ``REJECTED`` event.
A key that is not a field of the command (nor the envelope's ``action`` and
``id``) is refused, naming it (``stopLoss.stopPirce: unknown field``), so a
misspelt field never silently changes what an order does. ``timeInForce`` and
``icebergQty`` are fields of ``place_order``.

Per-type fields (a field a type does not use is refused, as Binance does)::

    MARKET                      -
    LIMIT, LIMIT_MAKER          price
    STOP_LOSS, TAKE_PROFIT      stopPrice and/or trailingDelta
    *_LIMIT                     price + (stopPrice and/or trailingDelta)
    TRAILING_STOP               trailingDelta, optional stopPrice

``timeInForce`` (``GTC`` default, ``IOC``, ``FOK``) is accepted for LIMIT and
the ``*_LIMIT`` stops only; ``icebergQty`` (``0 < icebergQty < quantity``,
GTC only, as Binance) for LIMIT, LIMIT_MAKER and the ``*_LIMIT`` stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.money import Side
from engine.trading.errors import RequestError
from engine.trading.order import OrderType, TimeInForce
from engine.trading.validation import (
    client_order_id,
    field_path,
    optional_positive_decimal,
    positive_decimal,
    require_object,
    side_field,
    symbol_field,
    trailing_delta,
)

__all__ = [
    "AmendRequest",
    "BracketRequest",
    "CancelRequest",
    "OcoLeg",
    "OcoRequest",
    "OrderRequest",
    "parse_amend",
    "parse_bracket",
    "parse_cancel",
    "parse_oco",
    "parse_order",
]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_delta: int | None = None
    client_order_id: str | None = None
    time_in_force: TimeInForce | None = None
    iceberg_qty: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OcoLeg:
    type: OrderType
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_delta: int | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OcoRequest:
    symbol: str
    side: Side
    quantity: Decimal
    above: OcoLeg
    below: OcoLeg


@dataclass(frozen=True, slots=True)
class BracketRequest:
    """``side`` is the entry's; the exits are on the opposite side."""

    symbol: str
    side: Side
    quantity: Decimal
    entry_type: OrderType  # MARKET or LIMIT
    entry_price: Decimal | None
    take_profit_price: Decimal
    stop_price: Decimal
    stop_limit_price: Decimal | None = None
    stop_trailing_delta: int | None = None
    entry_client_order_id: str | None = None
    take_profit_client_order_id: str | None = None
    stop_loss_client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """``amend_order``: exactly one of ``order_id`` / ``client_order_id``."""

    new_qty: Decimal
    order_id: int | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Exactly one of the three is set."""

    order_id: int | None = None
    client_order_id: str | None = None
    list_id: int | None = None


_PRICED = frozenset(
    {
        OrderType.LIMIT,
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
    }
)
#: The envelope's keys, allowed in every command body.
ENVELOPE_FIELDS = frozenset({"action", "id"})
#: The fields of each command body (besides the envelope) and of its nested objects.
ORDER_FIELDS = frozenset({"symbol", "side", "type", "quantity", "price", "stopPrice",
                          "trailingDelta", "clientOrderId", "timeInForce", "icebergQty"})
OCO_FIELDS = frozenset({"symbol", "side", "quantity", "above", "below"})
OCO_LEG_FIELDS = frozenset({"type", "price", "stopPrice", "trailingDelta", "clientOrderId"})
BRACKET_FIELDS = frozenset({"symbol", "side", "quantity", "entry", "takeProfit", "stopLoss"})
BRACKET_ENTRY_FIELDS = frozenset({"type", "price", "clientOrderId"})
BRACKET_TAKE_PROFIT_FIELDS = frozenset({"price", "clientOrderId"})
BRACKET_STOP_LOSS_FIELDS = frozenset({"stopPrice", "price", "trailingDelta", "clientOrderId"})


def _no_unknown_fields(prefix: str, body: Mapping[str, Any], known: frozenset[str]) -> None:
    """Refuse the first key of ``body`` that is not in ``known`` (sorted, so the
    answer does not depend on the client's key order)."""
    unknown = sorted(k for k in body if k not in known)
    if unknown:
        raise RequestError(field_path(prefix, str(unknown[0])), "unknown field")


_TIME_IN_FORCE = frozenset(
    {OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT}
)
_LIMIT_LEGS = frozenset({OrderType.LIMIT_MAKER, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT})
_STOP_LEGS = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT})


def _type_field(name: str, value: Any, allowed: frozenset[OrderType] | None = None) -> OrderType:
    if value is None:
        raise RequestError(name, "is required")
    try:
        result = OrderType(value) if isinstance(value, str) else None
    except ValueError:
        result = None
    if result is None or (allowed is not None and result not in allowed):
        choices = allowed if allowed is not None else frozenset(OrderType)
        names = ", ".join(sorted(t.value for t in choices))
        raise RequestError(name, f"must be one of {names}")
    return result


def _type_fields(
    prefix: str, body: Mapping[str, Any], kind: OrderType
) -> tuple[Decimal | None, Decimal | None, int | None]:
    """(price, stopPrice, trailingDelta) checked against ``kind``'s needs."""
    price_name = field_path(prefix, "price")
    stop_name = field_path(prefix, "stopPrice")
    delta_name = field_path(prefix, "trailingDelta")
    price = optional_positive_decimal(price_name, body.get("price"))
    stop = optional_positive_decimal(stop_name, body.get("stopPrice"))
    delta = trailing_delta(delta_name, body.get("trailingDelta"))
    if kind in _PRICED and price is None:
        raise RequestError(price_name, f"is required for {kind.value}")
    if kind not in _PRICED and price is not None:
        raise RequestError(price_name, f"is not allowed for {kind.value}")
    if kind.is_stop:
        if kind is OrderType.TRAILING_STOP and delta is None:
            raise RequestError(delta_name, "is required for TRAILING_STOP")
        if stop is None and delta is None:
            raise RequestError(
                stop_name, f"stopPrice or trailingDelta is required for {kind.value}"
            )
    else:
        if stop is not None:
            raise RequestError(stop_name, f"is not allowed for {kind.value}")
        if delta is not None:
            raise RequestError(delta_name, f"is not allowed for {kind.value}")
    return price, stop, delta


def parse_order(body: Mapping[str, Any]) -> OrderRequest:
    """Parse a ``place_order`` body."""
    body = require_object("body", body)
    _no_unknown_fields("", body, ORDER_FIELDS | ENVELOPE_FIELDS)
    symbol = symbol_field("symbol", body.get("symbol"))
    side = side_field("side", body.get("side"))
    kind = _type_field("type", body.get("type"))
    quantity = positive_decimal("quantity", body.get("quantity"))
    price, stop, delta = _type_fields("", body, kind)
    tif = _time_in_force(body.get("timeInForce"), kind)
    iceberg = optional_positive_decimal("icebergQty", body.get("icebergQty"))
    if iceberg is not None:
        if kind not in _PRICED:
            raise RequestError("icebergQty", f"is not allowed for {kind.value}")
        if iceberg >= quantity:
            raise RequestError("icebergQty", "must be less than quantity")
        if tif not in (None, TimeInForce.GTC):
            raise RequestError("timeInForce", "must be GTC for an iceberg order")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=kind,
        quantity=quantity,
        price=price,
        stop_price=stop,
        trailing_delta=delta,
        client_order_id=client_order_id("clientOrderId", body.get("clientOrderId")),
        time_in_force=tif,
        iceberg_qty=iceberg,
    )


def _time_in_force(value: Any, kind: OrderType) -> TimeInForce | None:
    """GTC by default for the types that have one; refused for the others."""
    if kind not in _TIME_IN_FORCE:
        if value is not None:
            raise RequestError("timeInForce", f"is not allowed for {kind.value}")
        return None
    if value is None:
        return TimeInForce.GTC
    if not isinstance(value, str) or value not in TimeInForce.__members__:
        raise RequestError("timeInForce", "must be one of GTC, IOC, FOK")
    return TimeInForce(value)


def _oco_leg(name: str, value: Any, allowed: frozenset[OrderType]) -> OcoLeg:
    if value is None:
        raise RequestError(name, "is required")
    leg = require_object(name, value)
    _no_unknown_fields(name, leg, OCO_LEG_FIELDS)
    kind = _type_field(field_path(name, "type"), leg.get("type"), allowed)
    price, stop, delta = _type_fields(name, leg, kind)
    return OcoLeg(
        type=kind,
        price=price,
        stop_price=stop,
        trailing_delta=delta,
        client_order_id=client_order_id(
            field_path(name, "clientOrderId"), leg.get("clientOrderId")
        ),
    )


def parse_oco(body: Mapping[str, Any]) -> OcoRequest:
    """Parse a ``place_oco`` body. For SELL the ``above`` leg is the LIMIT_MAKER /
    TAKE_PROFIT(_LIMIT) one and ``below`` the STOP_LOSS(_LIMIT); BUY the mirror."""
    body = require_object("body", body)
    _no_unknown_fields("", body, OCO_FIELDS | ENVELOPE_FIELDS)
    symbol = symbol_field("symbol", body.get("symbol"))
    side = side_field("side", body.get("side"))
    quantity = positive_decimal("quantity", body.get("quantity"))
    above_types, below_types = (_LIMIT_LEGS, _STOP_LEGS) if side is Side.SELL else (
        _STOP_LEGS,
        _LIMIT_LEGS,
    )
    above = _oco_leg("above", body.get("above"), above_types)
    below = _oco_leg("below", body.get("below"), below_types)
    if (
        above.client_order_id is not None
        and above.client_order_id == below.client_order_id
    ):
        raise RequestError("below.clientOrderId", "must differ from above.clientOrderId")
    return OcoRequest(symbol=symbol, side=side, quantity=quantity, above=above, below=below)


def parse_bracket(body: Mapping[str, Any]) -> BracketRequest:
    """Parse a ``place_bracket`` body."""
    body = require_object("body", body)
    _no_unknown_fields("", body, BRACKET_FIELDS | ENVELOPE_FIELDS)
    symbol = symbol_field("symbol", body.get("symbol"))
    side = side_field("side", body.get("side"))
    quantity = positive_decimal("quantity", body.get("quantity"))
    if body.get("entry") is None:
        raise RequestError("entry", "is required")
    entry = require_object("entry", body.get("entry"))
    _no_unknown_fields("entry", entry, BRACKET_ENTRY_FIELDS)
    entry_type = _type_field(
        "entry.type", entry.get("type"), frozenset({OrderType.MARKET, OrderType.LIMIT})
    )
    entry_price, _, _ = _type_fields("entry", entry, entry_type)
    if body.get("takeProfit") is None:
        raise RequestError("takeProfit", "is required")
    tp = require_object("takeProfit", body.get("takeProfit"))
    _no_unknown_fields("takeProfit", tp, BRACKET_TAKE_PROFIT_FIELDS)
    tp_price = positive_decimal("takeProfit.price", tp.get("price"))
    if body.get("stopLoss") is None:
        raise RequestError("stopLoss", "is required")
    sl = require_object("stopLoss", body.get("stopLoss"))
    _no_unknown_fields("stopLoss", sl, BRACKET_STOP_LOSS_FIELDS)
    stop_price = positive_decimal("stopLoss.stopPrice", sl.get("stopPrice"))
    ids = [
        client_order_id("entry.clientOrderId", entry.get("clientOrderId")),
        client_order_id("takeProfit.clientOrderId", tp.get("clientOrderId")),
        client_order_id("stopLoss.clientOrderId", sl.get("clientOrderId")),
    ]
    given = [i for i in ids if i is not None]
    if len(set(given)) != len(given):
        raise RequestError("clientOrderId", "the legs' clientOrderIds must differ")
    return BracketRequest(
        symbol=symbol,
        side=side,
        quantity=quantity,
        entry_type=entry_type,
        entry_price=entry_price,
        take_profit_price=tp_price,
        stop_price=stop_price,
        stop_limit_price=optional_positive_decimal("stopLoss.price", sl.get("price")),
        stop_trailing_delta=trailing_delta("stopLoss.trailingDelta", sl.get("trailingDelta")),
        entry_client_order_id=ids[0],
        take_profit_client_order_id=ids[1],
        stop_loss_client_order_id=ids[2],
    )


def parse_cancel(body: Mapping[str, Any]) -> CancelRequest:
    """Parse a ``cancel_order`` body: exactly one of ``orderId``, ``clientOrderId``
    or ``listId``.

    ``orderId`` and ``listId`` are JSON integers > 0, as the server sends them
    (not strings, floats or booleans); ``clientOrderId`` follows the rule of
    :func:`~engine.trading.validation.client_order_id`.
    """
    body = require_object("body", body)
    given = [k for k in ("orderId", "clientOrderId", "listId") if body.get(k) is not None]
    if not given:
        raise RequestError("orderId", "orderId, clientOrderId or listId is required")
    if len(given) > 1:
        raise RequestError(given[1], "give only one of orderId, clientOrderId, listId")
    key = given[0]
    if key == "clientOrderId":
        cid = client_order_id(key, body[key])
        return CancelRequest(client_order_id=cid)
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RequestError(key, "must be a positive integer")
    return CancelRequest(order_id=value) if key == "orderId" else CancelRequest(list_id=value)


def parse_amend(body: Mapping[str, Any]) -> AmendRequest:
    """Parse an ``amend_order`` body: ``orderId`` (a JSON integer > 0, as the
    server sends it) or ``clientOrderId``, and ``newQty`` (> 0; the book checks
    it against the order)."""
    body = require_object("body", body)
    given = [k for k in ("orderId", "clientOrderId") if body.get(k) is not None]
    if not given:
        raise RequestError("orderId", "orderId or clientOrderId is required")
    if len(given) > 1:
        raise RequestError(given[1], "give only one of orderId, clientOrderId")
    new_qty = positive_decimal("newQty", body.get("newQty"))
    if given[0] == "clientOrderId":
        return AmendRequest(new_qty, client_order_id=client_order_id(
            "clientOrderId", body["clientOrderId"]))
    value = body["orderId"]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RequestError("orderId", "must be a positive integer")
    return AmendRequest(new_qty, order_id=value)
