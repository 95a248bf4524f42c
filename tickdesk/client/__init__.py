"""The tickdesk Python client: a thread-safe, reconnecting WebSocket client.

::

    from tickdesk.client import TickdeskClient

    with TickdeskClient("ws://127.0.0.1:8000/api/ws/realtime") as client:
        client.subscribe("BTCUSDT")
        result = client.place_order("BTCUSDT", "BUY", "MARKET", "0.01")
        for msg in client.messages(timeout=5):
            ...

See :mod:`tickdesk.client.connection` for the threading model and
:mod:`tickdesk.client.inbox` for the overflow policy of ``messages()``. The
``tickdesk watch`` / ``order`` / ``orders`` commands are in
:mod:`tickdesk.client.cli`.
"""

from tickdesk.client.connection import DEFAULT_URL, TickdeskClient
from tickdesk.client.errors import (
    ClientClosed,
    ClientError,
    CommandError,
    ConnectError,
    ConnectionLost,
    RequestTimeout,
)
from tickdesk.client.types import (
    Balance,
    EquitySample,
    Fill,
    KlineRow,
    Klines,
    ListResult,
    Order,
    OrderList,
    OrderResult,
    Portfolio,
    Position,
    State,
)

__all__ = [
    "DEFAULT_URL",
    "Balance",
    "ClientClosed",
    "ClientError",
    "CommandError",
    "ConnectError",
    "ConnectionLost",
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
    "RequestTimeout",
    "State",
    "TickdeskClient",
]
