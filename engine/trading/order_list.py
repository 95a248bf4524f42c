"""The order-list record (OCO and bracket).

Pure core: no threads, sockets, clocks or pykka. Frozen like
:class:`~engine.trading.order.Order`; the book replaces it on each status change.
A list is ``EXECUTING`` while any of its orders is open and ``ALL_DONE`` once
none is; a list refused at placement is ``REJECTED`` (and never stored).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.trading.order import ListStatus, ListType

__all__ = ["OrderList"]


@dataclass(frozen=True, slots=True)
class OrderList:
    list_id: int
    list_type: ListType
    account: str
    symbol: str
    status: ListStatus
    order_ids: tuple[int, ...]
    create_time: int
    update_time: int
    reject_reason: str | None = None
