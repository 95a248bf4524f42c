"""Trading core: the exact ledger and the pure order engine.

Pure core: no threads, sockets, clocks or pykka; one owner drives each object.
Modules: ``ledger`` (accounts), ``order`` / ``order_list`` (records and enums),
``requests`` / ``validation`` (command parsing), ``triggers`` (price
conditions), ``fill_model`` (how much fills and at what price), ``trailing``
(the trailing-stop machine), ``events`` (what the book reports) and ``book``
(the :class:`OrderBook` state machine).
"""

from engine.money import Side
from engine.protocol.enums import ExecutionType
from engine.trading.book import FeeFn, OrderBook, RejectReason, RiskCheck, bps_fee
from engine.trading.errors import AmendRefused, RequestError, UnknownOrder
from engine.trading.events import Event, FillIntent, ListEvent, OrderEvent, Outcome
from engine.trading.fill_model import FillModel
from engine.trading.ledger import Ledger
from engine.trading.order import (
    LegRole,
    ListStatus,
    ListType,
    Order,
    OrderStatus,
    OrderType,
    StopKind,
    TimeInForce,
)
from engine.trading.order_list import OrderList
from engine.trading.requests import (
    AmendRequest,
    BracketRequest,
    CancelRequest,
    OcoLeg,
    OcoRequest,
    OrderRequest,
    parse_amend,
    parse_bracket,
    parse_cancel,
    parse_oco,
    parse_order,
)

__all__ = [
    "AmendRefused",
    "AmendRequest",
    "BracketRequest",
    "CancelRequest",
    "Event",
    "ExecutionType",
    "FeeFn",
    "FillIntent",
    "FillModel",
    "Ledger",
    "LegRole",
    "ListEvent",
    "ListStatus",
    "ListType",
    "OcoLeg",
    "OcoRequest",
    "Order",
    "OrderBook",
    "OrderEvent",
    "OrderList",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Outcome",
    "RejectReason",
    "RequestError",
    "RiskCheck",
    "Side",
    "StopKind",
    "TimeInForce",
    "UnknownOrder",
    "bps_fee",
    "parse_amend",
    "parse_bracket",
    "parse_cancel",
    "parse_oco",
    "parse_order",
]
