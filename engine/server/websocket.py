"""The WebSocket transport: simple-websocket's server, with every write through our channel.

Edge module. We keep simple-websocket for what it does well (the handshake
on top of wsproto, the reader thread, protocol pings with a pong deadline,
the inbound size limit) and change three things by subclassing
(``simple-websocket`` is pinned to 1.1.x in ``pyproject.toml`` because of it):

* Every byte the library writes goes through :class:`ChannelSocket` into the
  client's :class:`~engine.server.channel.SocketChannel`: one lock, one order,
  never a blocking write. (Plain simple-websocket lets its reader thread write
  pongs into the middle of a data frame under backpressure.)
* Control replies (pong, close) are written the moment their event is
  parsed, not at the end of the read batch, so a pong is never queued
  behind a message the application sent meanwhile (Autobahn case 5.19).
* Complete messages are handed to a callback in the reader thread instead of
  an internal list, so no third thread per client waits in ``receive()``.

permessage-deflate is declined (the offer is removed before the handshake):
it would cost a compressor per client and open the door to compression bombs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import simple_websocket
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from engine.protocol.enums import CloseCode
from engine.server.channel import SocketChannel

__all__ = ["ChannelSocket", "MessageHandler", "ServerWebSocket"]

#: ``handler(data, is_binary)`` runs in the reader thread for each complete message.
MessageHandler = Callable[[bytes | str, bool], None]


class ChannelSocket:
    """What simple-websocket sees as its socket: reads from the OS socket,
    writes into the channel, and closing releases the channel."""

    def __init__(self, sock: socket.socket, channel: SocketChannel) -> None:
        self._sock = sock
        self._channel = channel

    def send(self, data: bytes) -> int:
        self._channel.write_control(bytes(data))
        return len(data)

    def sendall(self, data: bytes) -> None:
        self._channel.write_control(bytes(data))

    def recv(self, bufsize: int) -> bytes:
        return self._sock.recv(bufsize)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._channel.transport_closed()

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)


class ServerWebSocket(simple_websocket.Server):  # type: ignore[misc]
    """One accepted client. Construct it in the HTTP handler thread; the
    reader thread waits until :meth:`start_reading` so the owner can get
    ready before the first message arrives."""

    def __init__(
        self,
        environ: dict[str, Any],
        channel: SocketChannel,
        on_message: MessageHandler,
        *,
        max_message_size: int,
        ping_interval: float | None,
        receive_bytes: int = 16384,
    ) -> None:
        self._on_message = on_message
        self._ready = threading.Event()
        self._pending: bytearray | None = None  # a fragmented message being assembled
        self._pending_len = 0
        env = dict(environ)
        env.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        env["werkzeug.socket"] = ChannelSocket(channel.sock, channel)
        super().__init__(
            env,
            receive_bytes=receive_bytes,
            ping_interval=ping_interval,
            max_message_size=max_message_size,
        )

    def start_reading(self) -> None:
        self._ready.set()

    def _thread(self) -> None:
        self._ready.wait()
        try:
            super()._thread()
        finally:
            # super() closes the socket on every normal path; make sure of it.
            try:
                self.sock.close()
            except Exception:  # pragma: no cover
                pass

    def _handle_events(self) -> bool:
        for event in self.ws.events():
            try:
                if isinstance(event, Request):
                    self.sock.send(self.ws.send(AcceptConnection(subprotocol=None)))
                elif isinstance(event, CloseConnection):
                    if self.is_server:
                        self.sock.send(self.ws.send(event.response()))
                    self.close_reason = event.code
                    self.close_message = event.reason
                    self.connected = False
                    self.event.set()
                    return False
                elif isinstance(event, Ping):
                    self.sock.send(self.ws.send(event.response()))
                elif isinstance(event, Pong):
                    self.pong_received = True
                elif isinstance(event, (TextMessage, BytesMessage)):
                    if not self._collect(event):
                        return False
            except LocalProtocolError:
                self.connected = False
                self.event.set()
                return False
        return True

    def _collect(self, event: TextMessage | BytesMessage) -> bool:
        size = self._pending_len + len(event.data)
        self._pending_len = size
        if self.max_message_size and size > self.max_message_size:
            self.sock.send(
                self.ws.send(CloseConnection(CloseCode.TOO_BIG, "Message is too big"))
            )
            self.connected = False
            self.close_reason = CloseCode.TOO_BIG
            self.event.set()
            return False
        binary = isinstance(event, BytesMessage)
        raw = event.data
        data: bytes | str = raw if isinstance(raw, str) else bytes(raw)
        pending = self._pending
        if pending is None and event.message_finished:
            self._pending_len = 0
            self._deliver(data, binary)
            return True
        if pending is None:
            pending = bytearray()
            self._pending = pending
        pending += data if isinstance(data, bytes) else data.encode()
        if event.message_finished:
            whole = bytes(pending)
            self._pending = None
            self._pending_len = 0
            self._deliver(whole if binary else whole.decode(), binary)
        return True

    def _deliver(self, data: bytes | str, binary: bool) -> None:
        try:
            self._on_message(data, binary)
        except Exception:  # the handler must never kill the reader thread
            import logging

            logging.getLogger("tickdesk.websocket").exception("message handler failed")
