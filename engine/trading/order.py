"""The order record and its enums.

Pure core: no threads, sockets, clocks or pykka. An :class:`Order` is a frozen
value: the :class:`~engine.trading.book.OrderBook` replaces it on every change,
so an order carried by an event is an immutable snapshot that any thread may
read (its wire form is built by :mod:`engine.protocol.server_messages`).
:meth:`Order.to_record` /
:meth:`Order.from_record` give a plain JSON-safe dict (Decimals as strings) that
a store can persist, trailing state included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

from engine.money import ZERO, Side

__all__ = [
    "OPEN_STATUSES",
    "LegRole",
    "ListStatus",
    "ListType",
    "Order",
    "OrderStatus",
    "OrderType",
    "StopKind",
    "TimeInForce",
]


class StopKind(StrEnum):
    """The stop-condition family of a stop order (docs/trading.md trigger table)."""

    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"


class OrderType(StrEnum):
    """Order types of ``place_order`` (docs/trading.md). ``TRAILING_STOP`` keeps its
    name on the wire and behaves exactly as ``STOP_LOSS`` with ``trailingDelta``."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"

    @property
    def stop_kind(self) -> StopKind | None:
        """The stop family, or None for MARKET/LIMIT/LIMIT_MAKER."""
        return _STOP_KIND.get(self)

    @property
    def is_stop(self) -> bool:
        return self in _STOP_KIND

    @property
    def limit_after_trigger(self) -> bool:
        """True for the ``*_LIMIT`` stops, which become a LIMIT when triggered."""
        return self in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)

    @property
    def is_limit(self) -> bool:
        """True for LIMIT and LIMIT_MAKER (rest at once)."""
        return self in (OrderType.LIMIT, OrderType.LIMIT_MAKER)


_STOP_KIND: dict[OrderType, StopKind] = {
    OrderType.STOP_LOSS: StopKind.STOP_LOSS,
    OrderType.STOP_LOSS_LIMIT: StopKind.STOP_LOSS,
    OrderType.TRAILING_STOP: StopKind.STOP_LOSS,
    OrderType.TAKE_PROFIT: StopKind.TAKE_PROFIT,
    OrderType.TAKE_PROFIT_LIMIT: StopKind.TAKE_PROFIT,
}


class TimeInForce(StrEnum):
    """How long a LIMIT (or a triggered ``*_LIMIT``) works, as Binance:
    ``GTC`` until filled or canceled, ``IOC`` fills what it can at once and
    expires the rest, ``FOK`` fills all at once or expires all."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


#: Statuses of an order that may still change (PENDING_NEW included).
OPEN_STATUSES = frozenset(
    {OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED}
)


class ListType(StrEnum):
    OCO = "OCO"
    BRACKET = "BRACKET"


class ListStatus(StrEnum):
    EXECUTING = "EXECUTING"
    ALL_DONE = "ALL_DONE"
    REJECTED = "REJECTED"


class LegRole(StrEnum):
    """The part an order plays in its list (not on the wire; persisted)."""

    ABOVE = "ABOVE"
    BELOW = "BELOW"
    ENTRY = "ENTRY"
    TAKE_PROFIT = "TAKE_PROFIT"
    STOP_LOSS = "STOP_LOSS"


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class Order:
    """One order. Immutable: state changes make a new value (``dataclasses.replace``).

    Internal (not on the wire, but persisted): ``list_type``/``leg`` (its place
    in an order list), ``tracking_active`` (a trailing order has started
    tracking its extreme), ``triggered`` (a stop has fired; a ``*_LIMIT``
    stop then works as a LIMIT at ``price``), ``slice_left`` and
    ``queue_ahead`` (the fill model's state of a resting order).
    """

    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    quantity: Decimal
    create_time: int
    update_time: int
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_delta: int | None = None
    current_stop_price: Decimal | None = None
    trailing_extreme: Decimal | None = None
    filled_quantity: Decimal = ZERO
    avg_price: Decimal | None = None
    fee: Decimal = ZERO
    reject_reason: str | None = None
    list_id: int | None = None
    list_type: ListType | None = None
    leg: LegRole | None = None
    tracking_active: bool = False
    triggered: bool = False
    time_in_force: TimeInForce | None = None
    iceberg_qty: Decimal | None = None
    #: An iceberg's visible quantity still working in its current slice.
    slice_left: Decimal | None = None
    #: Quantity resting ahead of this order at its price (fill model "queue");
    #: None while the book has not shown its price level yet.
    queue_ahead: Decimal | None = ZERO

    @property
    def remaining(self) -> Decimal:
        """Quantity not yet filled."""
        return self.quantity - self.filled_quantity

    @property
    def visible(self) -> Decimal:
        """Quantity a trade can fill now: an iceberg's slice, else the remaining."""
        return self.slice_left if self.slice_left is not None else self.remaining

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def working_as_limit(self) -> bool:
        """True when the order rests as a LIMIT at ``price`` (LIMIT, LIMIT_MAKER,
        or a triggered ``*_LIMIT`` stop)."""
        return self.type.is_limit or (self.triggered and self.type.limit_after_trigger)

    def evolve(self, **changes: Any) -> Order:
        """A copy with ``changes`` applied: ``dataclasses.replace`` without its
        per-call introspection (about 3x faster; this is the book's hot path).
        Field names are not checked: pass only real fields."""
        new = _new(Order)
        for name in _FIELD_NAMES:
            _set(new, name, getattr(self, name))
        for name, value in changes.items():
            _set(new, name, value)
        return new

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (Decimals as exact strings)."""
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "account": self.account,
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "status": self.status.value,
            "quantity": str(self.quantity),
            "create_time": self.create_time,
            "update_time": self.update_time,
            "price": _dec(self.price),
            "stop_price": _dec(self.stop_price),
            "trailing_delta": self.trailing_delta,
            "current_stop_price": _dec(self.current_stop_price),
            "trailing_extreme": _dec(self.trailing_extreme),
            "filled_quantity": str(self.filled_quantity),
            "avg_price": _dec(self.avg_price),
            "fee": str(self.fee),
            "reject_reason": self.reject_reason,
            "list_id": self.list_id,
            "list_type": None if self.list_type is None else self.list_type.value,
            "leg": None if self.leg is None else self.leg.value,
            "tracking_active": self.tracking_active,
            "triggered": self.triggered,
            "time_in_force": None if self.time_in_force is None else self.time_in_force.value,
            "iceberg_qty": _dec(self.iceberg_qty),
            "slice_left": _dec(self.slice_left),
            "queue_ahead": _dec(self.queue_ahead),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Order:
        """Inverse of :meth:`to_record`. Raises KeyError/ValueError on a bad record."""
        list_type = record.get("list_type")
        leg = record.get("leg")
        delta = record.get("trailing_delta")
        list_id = record.get("list_id")
        tif = record.get("time_in_force")
        return cls(
            order_id=int(record["order_id"]),
            client_order_id=str(record["client_order_id"]),
            account=str(record["account"]),
            symbol=str(record["symbol"]),
            side=Side(record["side"]),
            type=OrderType(record["type"]),
            status=OrderStatus(record["status"]),
            quantity=Decimal(str(record["quantity"])),
            create_time=int(record["create_time"]),
            update_time=int(record["update_time"]),
            price=_undec(record.get("price")),
            stop_price=_undec(record.get("stop_price")),
            trailing_delta=None if delta is None else int(delta),
            current_stop_price=_undec(record.get("current_stop_price")),
            trailing_extreme=_undec(record.get("trailing_extreme")),
            filled_quantity=Decimal(str(record.get("filled_quantity", "0"))),
            avg_price=_undec(record.get("avg_price")),
            fee=Decimal(str(record.get("fee", "0"))),
            reject_reason=record.get("reject_reason"),
            list_id=None if list_id is None else int(list_id),
            list_type=None if list_type is None else ListType(list_type),
            leg=None if leg is None else LegRole(leg),
            tracking_active=bool(record.get("tracking_active", False)),
            triggered=bool(record.get("triggered", False)),
            time_in_force=None if tif is None else TimeInForce(tif),
            iceberg_qty=_undec(record.get("iceberg_qty")),
            slice_left=_undec(record.get("slice_left")),
            queue_ahead=_undec(record.get("queue_ahead", "0")),
        )


_FIELD_NAMES = tuple(f.name for f in fields(Order))
_new = object.__new__
_set = object.__setattr__
