"""Bounds on a websocket-client connection: connect timeout and frame size.

Edge module, run in the Binance source's reader thread (the socket is closed
by the watchdog thread). websocket-client (1.9) has no per-connection connect
timeout (``WebSocketApp`` applies the process-wide default timeout, None) and
``WebSocket.abort()`` does nothing before the handshake completes, so an
upstream that accepts TCP and never answers the upgrade would hold the reader
forever. It also reads every frame whole, whatever length its header
announces. So:

* :func:`open_socket` connects the TCP socket (and TLS for ``wss://``) itself,
  with a socket timeout, and the source hands it to ``WebSocketApp(socket=...)``.
  The timeout stays on the socket during the WebSocket handshake, so every
  read of the handshake is bounded too; the caller's watchdog enforces the
  overall deadline by shutting the socket down. TLS is verified with the
  system trust store (``ssl.create_default_context()``: certificate required,
  host name checked). Name resolution is the OS's (not bounded by the timeout).
  Proxies from the environment are not used.
* :class:`BoundedFrames` replaces the connection's frame reader once the
  handshake is done: a frame whose header announces more than ``max_bytes``
  (or a fragmented message whose frames add up to more) raises
  :class:`FrameTooLarge` before its payload is read, and so does every read
  after it (websocket-client's ``close()`` reads frames while it waits for
  the close reply), so memory stays bounded.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websocket import WebSocketProtocolException
from websocket._abnf import ABNF, frame_buffer

from engine.errors import TickdeskError

__all__ = ["BoundedFrames", "FrameTooLarge", "install_frame_limit", "open_socket"]

_SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
                   (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))


class FrameTooLarge(TickdeskError, WebSocketProtocolException):
    """A frame or message longer than the limit was announced (also a
    websocket-client protocol error, which is how its reader ends the connection)."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame too large: {length} bytes (max {limit})")
        self.length = length
        self.limit = limit


def open_socket(url: str, timeout_s: float) -> socket.socket:
    """A connected socket for ``url`` (``ws://`` or ``wss://``, TLS done), with
    ``timeout_s`` as its timeout. Raises ``OSError`` (``TimeoutError`` when the
    time ran out) or ``ssl.SSLError``."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    sock = socket.create_connection((host, port), timeout=timeout_s)
    try:
        for level, name, value in _SOCKET_OPTIONS:
            sock.setsockopt(level, name, value)
        if secure:
            ctx = ssl.create_default_context()
            return ctx.wrap_socket(sock, server_hostname=host)
        return sock
    except BaseException:
        sock.close()
        raise


class BoundedFrames(frame_buffer):
    """websocket-client's frame reader, refusing frames over ``max_bytes``."""

    def __init__(self, recv_fn: Callable[[int], bytes], skip_utf8_validation: bool,
                 max_bytes: int, on_too_large: Callable[[FrameTooLarge], None]) -> None:
        super().__init__(recv_fn, skip_utf8_validation)
        self._max = max_bytes
        self._on_too_large = on_too_large
        self._message = 0  # bytes of the fragmented data message being read
        self._refused: FrameTooLarge | None = None

    def recv_frame(self) -> ABNF:
        # Once refused, never read on: websocket-client's close() reads frames
        # while it waits for the close reply, and would read the payload.
        if self._refused is not None:
            raise self._refused
        return super().recv_frame()

    def recv_length(self) -> None:
        super().recv_length()
        assert self.header is not None and self.length is not None
        fin, opcode = self.header[0], self.header[4]
        if opcode in ABNF.OPCODES and opcode >= ABNF.OPCODE_CLOSE:
            total = self.length  # a control frame, between the fragments
        else:
            total = self._message + self.length
            self._message = 0 if fin else total
        if total > self._max:
            exc = FrameTooLarge(total, self._max)
            self._refused = exc
            self._on_too_large(exc)
            raise exc


def install_frame_limit(ws: Any, max_bytes: int,
                        on_too_large: Callable[[FrameTooLarge], None]) -> None:
    """Make the open ``websocket.WebSocket`` ``ws`` refuse frames over ``max_bytes``.
    Call it before the first frame is read (``on_open``)."""
    old = ws.frame_buffer
    ws.frame_buffer = BoundedFrames(old.recv, old.skip_utf8_validation, max_bytes,
                                    on_too_large)
