"""Errors raised by the pure order core (drawn in :mod:`engine.errors`).

Pure core: no threads, sockets, clocks or pykka.

* :class:`RequestError`: a command body is malformed; it names the bad field
  and is a :class:`~engine.errors.BadRequest` (the caller replies
  ``ERROR BAD_REQUEST``, nothing changes).
* :class:`AmendRefused`: an ``amend_order`` Binance refuses (an increase, a
  quantity at or below what has filled, an order of a list); a
  :class:`RequestError` naming the field, so also ``BAD_REQUEST``.
* :class:`~engine.errors.UnknownOrder`: cancel of an order that is unknown,
  not the account's, or no longer open (``ERROR UNKNOWN_ORDER``); the same
  class the protocol layer uses, re-exported here.

Business rejections (insufficient balance, bad OCO prices, ...) are not
exceptions: they are ``REJECTED`` events in an :class:`~engine.trading.events.Outcome`.
"""

from __future__ import annotations

from engine.errors import BadRequest, UnknownOrder

__all__ = ["AmendRefused", "RequestError", "UnknownOrder"]


class RequestError(BadRequest):
    """A missing, ill-typed or out-of-range field in a command body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AmendRefused(RequestError):
    """``amend_order`` cannot apply: the order is unchanged."""
