"""The WebSocket protocol of one client, driven from the bytes the I/O thread reads.

Edge module; every method runs in the I/O thread (:mod:`engine.server.edge`).
A :class:`WsEndpoint` wraps a sans-I/O ``wsproto.WSConnection`` (server
side): the I/O thread feeds it what ``recv`` returned and :meth:`process`
turns the events into actions:

* complete messages (fragments joined, at most ``max_message_size`` bytes,
  else close 1009) go to ``on_message``; when that returns False (the
  client's actor has too many frames waiting) processing stops with the rest
  still buffered in wsproto, and the I/O thread stops reading the socket
  until :meth:`process` is called again;
* pings are answered at once, in order, through the client's channel (the
  same lock and order as every other write); every ping and pong takes a
  token of the connection's control-frame budget: over it a ping is not
  answered, and a client that keeps on is closed 1008;
* a close from the client is answered (its code echoed) and the connection
  is finished once the reply is written; a protocol error is a close too
  (wsproto turns it into a ``CloseConnection`` with 1002/1007).

Our own keep-alive pings (``server.ping_interval_s``) are sent by
:meth:`tick`; a client that has not answered the previous one by the next
is closed 1008 "Ping/Pong timeout".

Data frames from the application never pass through wsproto: they are
framed once (:mod:`engine.protocol.frames`) and written by the channel.
permessage-deflate is declined (no extension is accepted): it would cost a
compressor per client and open the door to compression bombs.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from engine.protocol.enums import CloseCode
from engine.protocol.frames import close_frame
from engine.rate_limit import RateLimiter, Verdict
from engine.server.channel import SocketChannel

__all__ = ["MessageHandler", "Step", "WsEndpoint"]

log = logging.getLogger("tickdesk.websocket")

#: ``handler(data, is_binary) -> keep_reading`` for each complete message.
MessageHandler = Callable[[bytes | str, bool], bool]


class Step(enum.Enum):
    """What the I/O thread does after :meth:`WsEndpoint.process`."""

    READ = "read"  #: keep reading the socket
    PAUSE = "pause"  #: stop reading until the actor catches up
    FINISH = "finish"  #: close the connection once the channel is flushed
    CLOSED = "closed"  #: we closed it (close frame queued); wait for the reply or the grace


class WsEndpoint:
    """One upgraded client (see the module docstring)."""

    def __init__(self, channel: SocketChannel, on_message: MessageHandler, *,
                 max_message_size: int, control: RateLimiter | None,
                 monotonic: Callable[[], float], ping_interval_s: float | None) -> None:
        self.channel = channel
        self.on_message = on_message
        self._ws = WSConnection(ConnectionType.SERVER)
        self._max = max_message_size
        self._control = control
        self._monotonic = monotonic
        self._ping_interval = ping_interval_s
        self._next_ping = (monotonic() + ping_interval_s) if ping_interval_s else 0.0
        self._awaiting_pong = False
        self._parts: list[bytes | str] = []
        self._size = 0
        self._binary = False

    def handshake(self, request: bytes, trailing: bytes) -> bool:
        """Answer the (already checked) upgrade request with 101 through the
        channel; False if wsproto rejects it (the caller answers 400)."""
        try:
            self._ws.receive_data(request)
            for event in self._ws.events():
                if isinstance(event, Request):
                    self.channel.write_control(self._ws.send(AcceptConnection()))
                    break
            else:
                return False
        except (RemoteProtocolError, LocalProtocolError):
            return False
        if trailing:  # frames the client sent right behind its request
            self._ws.receive_data(trailing)
        return True

    def receive(self, data: bytes) -> None:
        self._ws.receive_data(data)

    def process(self) -> Step:
        """Handle the buffered events (see the module docstring)."""
        ws = self._ws
        try:
            for event in ws.events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    step = self._collect(event)
                    if step is not Step.READ:
                        return step
                elif isinstance(event, Ping):
                    step = self._ping(event)
                    if step is not Step.READ:
                        return step
                elif isinstance(event, Pong):
                    self._awaiting_pong = False
                    if not self._take_control_token():
                        return Step.CLOSED
                elif isinstance(event, CloseConnection):
                    if not self.channel.closed:
                        # The client's close (REMOTE_CLOSING) is echoed; a frame
                        # wsproto could not parse (still OPEN) is failed with its code.
                        try:
                            reply = ws.send(event.response())
                        except LocalProtocolError:
                            reply = close_frame(event.code, event.reason or "")
                        self.channel.close(event.code, event.reason or "", frame=reply)
                    return Step.FINISH
        except (LocalProtocolError, RemoteProtocolError):
            self.channel.close(CloseReason.PROTOCOL_ERROR, "protocol error", drop_pending=True)
            return Step.FINISH
        return Step.READ

    @property
    def next_ping_at(self) -> float | None:
        """When :meth:`tick` has work next (a ping to send or a missed pong to
        act on); None without keep-alive pings."""
        return self._next_ping if self._ping_interval else None

    def tick(self, now: float) -> bool:
        """Keep-alive: send a ping when due; False when the client missed the last one."""
        if not self._ping_interval or now < self._next_ping or self.channel.closed:
            return True
        if self._awaiting_pong:
            self.channel.close(CloseCode.POLICY, "Ping/Pong timeout")
            return False
        self._next_ping = now + self._ping_interval
        self._awaiting_pong = True
        try:
            self.channel.write_control(self._ws.send(Ping()))
        except LocalProtocolError:
            return False
        return True

    # -- internals ------------------------------------------------------------

    def _ping(self, event: Ping) -> Step:
        if self._control is not None:
            verdict = self._control.check(self._monotonic())
            if verdict is Verdict.CLOSE:
                log.warning("client %s (%s): closed for flooding pings",
                            self.channel.conn_id, self.channel.peer)
                self.channel.close(CloseCode.POLICY, "rate limit exceeded")
                return Step.CLOSED
            if verdict is Verdict.REFUSE:
                return Step.READ  # over the budget: not answered
        if not self.channel.closed:
            self.channel.write_control(self._ws.send(event.response()))
        return Step.READ

    def _take_control_token(self) -> bool:
        if self._control is None:
            return True
        if self._control.check(self._monotonic()) is Verdict.CLOSE:
            self.channel.close(CloseCode.POLICY, "rate limit exceeded")
            return False
        return True

    def _collect(self, event: TextMessage | BytesMessage) -> Step:
        data = event.data
        self._size += len(data)
        if self._size > self._max:
            self.channel.close(CloseCode.TOO_BIG, "Message is too big", drop_pending=False)
            self._parts.clear()
            return Step.CLOSED
        self._binary = isinstance(event, BytesMessage)
        if not event.message_finished:
            self._parts.append(data if isinstance(data, str) else bytes(data))
            return Step.READ
        if self._parts:
            self._parts.append(data if isinstance(data, str) else bytes(data))
            whole: bytes | str = ("".join(p for p in self._parts if isinstance(p, str))
                                  if not self._binary
                                  else b"".join(p for p in self._parts if isinstance(p, bytes)))
            self._parts.clear()
        else:
            whole = data if isinstance(data, str) else bytes(data)
        self._size = 0
        if self.channel.closed:
            return Step.READ
        try:
            keep = self.on_message(whole, self._binary)
        except Exception:  # the handler must never kill the I/O thread
            log.exception("message handler failed for client %s", self.channel.conn_id)
            return Step.READ
        return Step.READ if keep else Step.PAUSE
