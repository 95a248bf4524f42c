"""The tickdesk Python client: a thread-safe, reconnecting WebSocket client.

::

    from engine.client import TickdeskClient

    with TickdeskClient("ws://127.0.0.1:8000/api/ws/realtime") as client:
        client.subscribe("BTCUSDT")
        result = client.place_order("BTCUSDT", "BUY", "MARKET", "0.01")
        for msg in client.messages(timeout=5):
            ...

See :mod:`engine.client.connection` for the threading model and
:mod:`engine.client.inbox` for the overflow policy of ``messages()``. The
``tickdesk watch`` / ``order`` / ``orders`` commands are in
:mod:`engine.client.cli`.
"""

from engine.client.connection import DEFAULT_URL, TickdeskClient
from engine.client.errors import (
    ClientClosed,
    ClientError,
    CommandError,
    ConnectError,
    ConnectionLost,
    RequestTimeout,
)
from engine.client.types import (
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
    "ClientClosed",
    "ClientError",
    "CommandError",
    "ConnectError",
    "ConnectionLost",
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
