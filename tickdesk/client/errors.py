"""Errors raised by the tickdesk client library.

Pure: no threads, sockets or clocks. Every one is a :class:`ClientError`, a
:class:`~engine.errors.TickdeskError` (the whole tree is drawn in
:mod:`engine.errors`): ``ConnectError`` (the first connection could not be
made), ``CommandError`` (the server answered ERROR: ``code``, ``message``),
``ConnectionLost``, ``ClientClosed`` and ``RequestTimeout``.

``ConnectionLost`` means the command may or may not have been executed: the
client never resends a command by itself (an order must not be placed twice);
ask the server (``get_orders``) after the reconnect.
"""

from __future__ import annotations

from typing import Any

from engine.errors import TickdeskError

__all__ = [
    "ClientClosed",
    "ClientError",
    "CommandError",
    "ConnectError",
    "ConnectionLost",
    "RequestTimeout",
]


class ClientError(TickdeskError):
    """Base of every error the client library raises on purpose."""


class ConnectError(ClientError):
    """The client could not connect (refused, handshake failed, no CONNECTED in time)."""


class CommandError(ClientError):
    """The server answered a command with ``ERROR``; ``code`` is the wire code
    (``BAD_REQUEST``, ``UNKNOWN_SYMBOL``, ``UNAUTHORIZED``, ``UNKNOWN_ORDER``...)."""

    def __init__(self, code: str, message: str, request_id: str | int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id

    @classmethod
    def from_message(cls, msg: dict[str, Any]) -> CommandError:
        """Build one from an ``ERROR`` server message."""
        return cls(str(msg.get("code", "INTERNAL")), str(msg.get("message", "")), msg.get("id"))


class ConnectionLost(ClientError):
    """The connection dropped while a command was waiting for its reply."""


class ClientClosed(ClientError):
    """The client is closed (``close()`` was called, or it does not reconnect)."""


class RequestTimeout(ClientError, TimeoutError):
    """No reply within the timeout (or not connected within it)."""
