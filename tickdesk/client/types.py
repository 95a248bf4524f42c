"""Typed shapes of what the tickdesk server sends, and the results of commands.

Pure: no threads, sockets or clocks. Server messages stay plain ``dict``s
(exactly the JSON the server sent, numbers as ``int``/``float``); the
``TypedDict``s below name their fields for type checkers and readers
(``docs/protocol.md`` is the reference). Results of order commands are small
frozen dataclasses around the reply messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypedDict, cast

__all__ = [
    "Balance",
    "BookUpdate",
    "EquitySample",
    "Fill",
    "KlineRow",
    "Klines",
    "ListResult",
    "Order",
    "OrderList",
    "OrderResult",
    "Portfolio",
    "Position",
    "State",
]

Message = dict[str, Any]


class State(enum.Enum):
    """Where a :class:`~tickdesk.client.TickdeskClient` is in its life."""

    IDLE = "IDLE"                  # created, connect() not called (or it failed)
    CONNECTING = "CONNECTING"      # the first connect() is in progress
    OPEN = "OPEN"                  # connected, authenticated, subscriptions restored
    RECONNECTING = "RECONNECTING"  # the connection dropped; retrying with backoff
    CLOSED = "CLOSED"              # close() was called (or reconnect=False and it dropped)


class Order(TypedDict):
    orderId: int
    clientOrderId: str
    listId: int | None
    symbol: str
    side: str
    type: str
    status: str
    quantity: float
    price: float | None
    stopPrice: float | None
    trailingDelta: int | None
    currentStopPrice: float | None
    trailingExtreme: float | None
    filledQuantity: float
    avgPrice: float | None
    fee: float
    timeInForce: str | None
    icebergQty: float | None
    rejectReason: str | None
    createTime: int
    updateTime: int


class BookUpdate(TypedDict):
    """``BOOK_UPDATE``: the top levels of one symbol's book, best first, each
    ``[price, quantity]``; ``seq`` +1 per book change (a snapshot may repeat one)."""

    type: str
    symbol: str
    bids: list[list[float]]
    asks: list[list[float]]
    seq: int
    timestamp: int


class OrderList(TypedDict):
    listId: int
    listType: str
    status: str
    orderIds: list[int]
    rejectReason: str | None


class Position(TypedDict):
    symbol: str
    side: str
    quantity: float
    entryPrice: float
    #: None before the symbol's first trade (then ``unrealizedPnl`` is 0).
    markPrice: float | None
    unrealizedPnl: float
    realizedPnl: float
    notional: float


class Balance(TypedDict):
    asset: str
    free: float
    locked: float
    total: float
    #: ``total`` in the home asset; None when the asset cannot be valued.
    value: float | None


class Portfolio(TypedDict):
    homeAsset: str
    balance: float
    equity: float
    unrealizedPnl: float
    realizedPnl: float
    totalPnl: float
    fees: float
    balances: list[Balance]
    unvalued: list[str]
    positionsCount: int
    openOrdersCount: int


class Fill(TypedDict):
    """One fill of ``get_fills`` (docs/protocol.md, ``fill`` object)."""

    fillId: int
    orderId: int
    clientOrderId: str
    symbol: str
    side: str
    price: float
    quantity: float
    fee: float
    #: None for fills the server stored before it kept the fee asset.
    feeAsset: str | None
    #: None for fills the server stored before it kept the realized P&L.
    realizedPnl: float | None
    time: int


#: One bar of ``KLINES``, Binance's REST row: ``[openTime, "open", "high", "low",
#: "close", "volume", closeTime, "quoteVolume", trades]`` (decimals as exact strings).
KlineRow = list[int | str]


class Klines(TypedDict):
    """``KLINES``: the reply to ``get_klines``, bars oldest first."""

    type: str
    symbol: str
    interval: str
    klines: list[KlineRow]
    timestamp: int
    id: str | int


class EquitySample(TypedDict):
    """One sample of ``get_equity_history``."""

    time: int
    equity: float


@dataclass(frozen=True, slots=True)
class OrderResult:
    """The direct reply to ``place_order`` / ``cancel_order`` / ``amend_order``:
    one ``ORDER_UPDATE``.

    ``accepted`` is False for ``executionType == "REJECTED"`` (see
    ``reject_reason``). Later updates of the order (fills, triggers) arrive as
    messages (callback / iterator); the immediate ones carry ``request_id``.
    """

    update: Message
    request_id: str

    @property
    def order(self) -> Order:
        return cast(Order, self.update["order"])

    @property
    def execution_type(self) -> str:
        return str(self.update["executionType"])

    @property
    def accepted(self) -> bool:
        return self.execution_type != "REJECTED"

    @property
    def order_id(self) -> int:
        return int(self.order["orderId"])

    @property
    def client_order_id(self) -> str:
        return str(self.order["clientOrderId"])

    @property
    def status(self) -> str:
        return str(self.order["status"])

    @property
    def reject_reason(self) -> str | None:
        reason = self.order.get("rejectReason")
        return None if reason is None else str(reason)


@dataclass(frozen=True, slots=True)
class ListResult:
    """The direct reply to ``place_oco`` / ``place_bracket``: the
    ``ORDER_LIST_UPDATE`` and one :class:`OrderResult` per leg, in list order."""

    list_update: Message
    legs: tuple[OrderResult, ...]
    request_id: str

    @property
    def list(self) -> OrderList:
        return cast(OrderList, self.list_update["list"])

    @property
    def list_id(self) -> int:
        return int(self.list["listId"])

    @property
    def status(self) -> str:
        return str(self.list["status"])

    @property
    def accepted(self) -> bool:
        return self.status != "REJECTED"

    @property
    def reject_reason(self) -> str | None:
        reason = self.list.get("rejectReason")
        return None if reason is None else str(reason)
