"""Errors raised by the pure order core.

Pure core: no threads, sockets, clocks or pykka. The tree::

    TradingError
    ├── RequestError   a command body is malformed: names the bad field
    │   │              (the caller replies ERROR BAD_REQUEST, nothing changes)
    │   └── AmendRefused  amend_order asks what Binance refuses (an increase,
    │                  a quantity at or below what already filled, a list leg)
    └── UnknownOrder   cancel of an order that is unknown, not the account's,
                       or no longer open (the caller replies ERROR UNKNOWN_ORDER)

Business rejections (insufficient balance, bad OCO prices, ...) are not
exceptions: they are ``REJECTED`` events in an :class:`~engine.trading.events.Outcome`.
"""

from __future__ import annotations

__all__ = ["AmendRefused", "RequestError", "TradingError", "UnknownOrder"]


class TradingError(Exception):
    """Base of the order core's exceptions."""


class RequestError(TradingError):
    """A missing, ill-typed or out-of-range field in a command body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AmendRefused(RequestError):
    """``amend_order`` cannot apply: the order is unchanged."""


class UnknownOrder(TradingError):
    """The order (or list) to cancel is unknown to this account or not open."""
