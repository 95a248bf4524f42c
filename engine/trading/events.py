"""What the order book tells its caller: events and fills, in an :class:`Outcome`.

Pure core: no threads, sockets, clocks or pykka. Every value here is frozen.

* :class:`OrderEvent` is one ``ORDER_UPDATE``: an execution type and an
  immutable snapshot of the order right after that change (a fill also
  carries its own quantity and price).
* :class:`ListEvent` is one ``ORDER_LIST_UPDATE``.
* :class:`FillIntent` is one fill the caller must apply to the account's
  ledger (``Ledger.apply_fill(symbol, side, quantity, price)``). ``fee`` is
  what the book computed with its ``fee_for`` function and put on the order;
  a ledger with the same ``fee_bps`` computes exactly the same amount.

Events are in the order the changes happened; a caller sends each account's
events to that account's connections in that order. The wire messages of
events are built by :mod:`engine.protocol.server_messages` (``order_update``,
``order_list_update``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.money import Side
from engine.protocol.enums import ExecutionType
from engine.trading.order import Order
from engine.trading.order_list import OrderList

__all__ = ["Event", "FillIntent", "ListEvent", "OrderEvent", "Outcome"]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One ``ORDER_UPDATE``. A ``TRADE`` event also carries this fill's
    ``last_qty`` / ``last_price`` (Binance's ``l`` / ``L``); the order snapshot
    has the cumulative ``filledQuantity``, ``avgPrice`` and ``fee``."""

    execution_type: ExecutionType
    order: Order
    last_qty: Decimal | None = None
    last_price: Decimal | None = None

    @property
    def account(self) -> str:
        return self.order.account


@dataclass(frozen=True, slots=True)
class ListEvent:
    order_list: OrderList

    @property
    def account(self) -> str:
        return self.order_list.account


Event = OrderEvent | ListEvent


@dataclass(frozen=True, slots=True)
class FillIntent:
    account: str
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    time: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The ordered events and the fills of one book operation."""

    events: tuple[Event, ...] = ()
    fills: tuple[FillIntent, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.events or self.fills)

    def order_events(self) -> list[OrderEvent]:
        return [e for e in self.events if isinstance(e, OrderEvent)]

    def list_events(self) -> list[ListEvent]:
        return [e for e in self.events if isinstance(e, ListEvent)]


EMPTY = Outcome()
