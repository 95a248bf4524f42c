"""Per-client outbound channels: one ordered, bounded, non-blocking path to each client.

Edge module. A :class:`SocketChannel` owns every byte written to one client
socket: data frames from any thread (the feed's fan-out, actors' replies),
and the control frames the I/O thread writes (the 101 response, pongs,
pings, close replies). All of them go through the channel's lock (one of
64 shared ones, :data:`_STRIPES`), so frames never interleave and keep their
order.

Writes never block: the fast path sends a ready frame with
``send(MSG_DONTWAIT)``. Whatever the kernel does not take is kept in the
channel's :class:`~engine.outbox.Outbox` (MARKET_UPDATE conflated per
symbol, everything else in order, bounded by ``max_queued_bytes``) and the
channel is handed to its :class:`ChannelOwner` (the I/O thread,
:class:`~engine.server.edge.EdgeLoop`), which flushes it when the socket
becomes writable, batching queued frames into one ``send``.

A client is closed as a slow consumer (close code 4001) when its ordered
backlog passes ``max_queued_bytes`` or its socket makes no progress for
``write_timeout_s``; see ``docs/protocol.md`` for the close codes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from engine.outbox import Outbox
from engine.protocol.enums import CloseCode
from engine.protocol.frames import close_frame
from engine.protocol.server_messages import Outgoing

__all__ = [
    "Channel",
    "ChannelOwner",
    "SocketChannel",
]

log = logging.getLogger("tickdesk.channel")

_BATCH_BYTES = 256 * 1024
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

#: The channels' locks: channel ``conn_id`` uses ``_STRIPES[conn_id % len]``.
#: One lock object per channel cost a cache miss (or a line taken from the
#: other core) at every delivery of a fan-out, about 0.75 µs of the ~5 µs a
#: delivery costs at 1,000 subscribers (in-process measurement with the
#: bench's clients, docs/performance.md); 64 shared locks stay in cache. Safe
#: because no code holds a channel's lock while it takes another channel's
#: (every locked section below calls only its own socket, its outbox and the
#: owner's ``want_write``); two channels of one stripe only wait for each
#: other's single non-blocking ``send``.
_STRIPES: tuple[threading.Lock, ...] = tuple(threading.Lock() for _ in range(64))


class Channel(Protocol):
    """Where server messages for one client go (a socket, or an embedded session)."""

    conn_id: int

    def deliver(self, out: Outgoing) -> None:
        """Queue one message; never blocks, never raises."""
        ...

    def close(self, code: int, reason: str) -> None:
        """Close the client with ``code``; idempotent."""
        ...

    @property
    def closed(self) -> bool: ...


class ChannelOwner(Protocol):
    """The thread that owns the socket's readiness (the I/O loop); callable from any thread."""

    def want_write(self, ch: SocketChannel) -> None:
        """Flush ``ch`` when its socket becomes writable."""
        ...

    def shutdown_later(self, ch: SocketChannel, grace_s: float) -> None:
        """End the connection after ``grace_s`` (0: now) unless it ended already."""
        ...

    def release(self, ch: SocketChannel) -> None:
        """The channel is done: forget it and close its socket."""
        ...


class SocketChannel:
    """The outbound side of one WebSocket client (see the module docstring).

    Slotted, and the idle fast path reads one flag (``_direct``): a tick's
    fan-out touches each of thousands of channels once, so every attribute
    it reads is a likely cache miss."""

    __slots__ = ("_closing", "_conflated_final", "_direct", "_inflight", "_last_progress",
                 "_lock", "_monotonic", "_on_transport_closed", "_outbox", "_owner",
                 "_registered", "_sock_send", "_transport_closed", "close_code", "conn_id",
                 "frames_sent", "peer", "sock", "write_timeout_s")

    def __init__(
        self,
        conn_id: int,
        sock: socket.socket,
        owner: ChannelOwner,
        *,
        max_queued_bytes: int,
        write_timeout_s: float,
        monotonic: Callable[[], float],
        peer: str = "",
    ) -> None:
        self.conn_id = conn_id
        self.sock = sock
        self._sock_send = sock.send
        self.peer = peer
        self.write_timeout_s = write_timeout_s
        #: Frames handed to the socket (read without the lock: approximate).
        self.frames_sent = 0
        self._conflated_final = 0
        self.close_code: int | None = None
        self._owner = owner
        self._monotonic = monotonic
        self._lock = _STRIPES[conn_id % len(_STRIPES)]
        self._outbox = Outbox(max_queued_bytes)
        self._inflight: memoryview | None = None
        self._last_progress = 0.0
        self._registered = False  # handed to the owner, awaiting writability
        self._closing = False  # our close frame is queued: accept nothing more
        self._transport_closed = False
        #: ``not (_registered or _closing or _transport_closed)``, kept in step with
        #: them under the lock: the fast path's one test.
        self._direct = True
        self._on_transport_closed: list[Callable[[], None]] = []

    # -- any thread ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closing or self._transport_closed

    def on_transport_closed(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once when the socket is finally closed."""
        self._on_transport_closed.append(callback)

    def deliver(self, out: Outgoing) -> None:
        """The hot path (the feed's fan-out calls it once per subscriber per tick).

        While the channel is idle (nothing queued, not registered with its
        owner, not closing) the frame goes straight to the kernel with one
        non-blocking ``send``; any other case takes :meth:`send_frame`. The
        invariant behind the one flag test: a channel holds queued or
        in-flight bytes exactly while it is registered with its owner.
        """
        frame = out.frame
        with self._lock:
            if self._direct:
                try:
                    sent = self._sock_send(frame, _DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._transport_dead()
                    return
                self.frames_sent += 1
                if sent == len(frame):
                    return
                self._inflight = memoryview(frame)[sent:]
                self._wait_for_writable()
                return
        self.send_frame(frame, out.conflate_key)

    def send_frame(self, frame: bytes, key: str | None = None) -> None:
        """Send or queue one complete frame; never blocks."""
        evict = False
        with self._lock:
            if self._closing or self._transport_closed:
                return
            if self._inflight is None and not self._outbox:
                sent = self._try_send(frame)
                if sent < 0:
                    return
                if sent == len(frame):
                    self.frames_sent += 1
                    return
                self._inflight = memoryview(frame)[sent:]
                self.frames_sent += 1
                self._wait_for_writable()
            elif not self._outbox.push(frame, key):
                evict = True
        if evict:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: send queue limit reached",
                       drop_pending=True)

    def write_control(self, data: bytes) -> None:
        """Bytes from the I/O thread's protocol handling (101, pong, ping); written
        even while closing (they are not data), never after the transport ended."""
        evict = False
        with self._lock:
            if self._transport_closed:
                return
            if self._inflight is None and not self._outbox:
                sent = self._try_send(data)
                if sent < 0 or sent == len(data):
                    return
                self._inflight = memoryview(data)[sent:]
                self._wait_for_writable()
            elif not self._outbox.push(data, None):
                evict = True
        if evict:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: send queue limit reached",
                       drop_pending=True)

    def close(self, code: int, reason: str = "", *, drop_pending: bool = False,
              frame: bytes | None = None) -> None:
        """Send a close frame (after pending data unless ``drop_pending``), then
        shut the socket down once the peer answered or a grace period passed.
        ``frame`` replaces the close frame built from ``code`` and ``reason``
        (the I/O thread's reply to a client's close)."""
        with self._lock:
            if self._closing or self._transport_closed:
                return
            self._closing = True
            self._direct = False
            self.close_code = code
            if frame is None:
                frame = close_frame(code, reason)
            if drop_pending:
                self._outbox.clear()
                if self._inflight is not None:
                    # A frame is half written: anything sent now would be read as
                    # the rest of it. The client sees the connection end instead.
                    self._inflight = None
                    frame = b""
            if not frame:
                pass
            elif self._inflight is None and not self._outbox:
                sent = self._try_send(frame)
                if 0 <= sent < len(frame):
                    self._inflight = memoryview(frame)[sent:]
                    self._wait_for_writable()
            else:
                self._outbox.max_strict_bytes += len(frame)
                self._outbox.push(frame, None)
        if code in (CloseCode.SLOW_CONSUMER, CloseCode.WRITE_TIMEOUT):
            log.warning("closing client %s (%s): %s", self.conn_id, self.peer, reason)
        self._owner.shutdown_later(self, grace_s=0.0 if drop_pending else 2.0)

    @property
    def conflated(self) -> int:
        """MARKET_UPDATEs replaced by a newer one while queued (approximate, no lock)."""
        return max(self._conflated_final, self._outbox.conflated)

    @property
    def queued_bytes(self) -> int:
        return self._outbox.queued_bytes + (len(self._inflight) if self._inflight else 0)

    # -- I/O thread -----------------------------------------------------------

    def flush(self) -> bool:
        """Write what the socket takes now. True when nothing is left queued."""
        with self._lock:
            while True:
                if self._inflight is None:
                    if not self._outbox:
                        self._registered = False
                        self._direct = not (self._closing or self._transport_closed)
                        return True
                    self._inflight = memoryview(self._outbox.pop_batch(_BATCH_BYTES))
                sent = self._try_send(self._inflight)
                if sent < 0:
                    self._registered = False  # dead: _transport_dead() cleared _direct
                    return True
                if sent == 0:
                    return False
                self._last_progress = self._monotonic()
                if sent < len(self._inflight):
                    self._inflight = self._inflight[sent:]
                    return False
                self._inflight = None

    def stalled_for(self, now: float) -> float:
        """Seconds since the socket last accepted bytes while data was queued."""
        if not self._registered:
            return 0.0
        return now - self._last_progress

    def shutdown_socket(self) -> None:
        """End the connection: the I/O thread sees the socket end and finishes it."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def transport_closed(self) -> None:
        """The connection ended (I/O thread): release the socket and tell the owners."""
        with self._lock:
            if self._transport_closed:
                return
            self._transport_closed = True
            self._direct = False
            self._outbox.clear()
            self._inflight = None
            self._registered = False
        self._owner.release(self)
        self._conflated_final = self._outbox.conflated
        for cb in self._on_transport_closed:
            try:
                cb()
            except Exception:
                log.exception("transport-closed callback failed for client %s", self.conn_id)

    def close_socket(self) -> None:
        """Close the OS socket (the I/O thread calls this once it forgot the channel)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- internals (lock held) ----------------------------------------------

    def _try_send(self, data: bytes | memoryview) -> int:
        """Non-blocking send: bytes taken, 0 when the socket is full, -1 when it is dead."""
        try:
            n = self.sock.send(data, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self._transport_dead()
            return -1
        return n

    def _wait_for_writable(self) -> None:
        if not self._registered:
            self._registered = True
            self._direct = False
            self._last_progress = self._monotonic()
            self._owner.want_write(self)

    def _transport_dead(self) -> None:
        # The peer is gone; the I/O thread will notice and call transport_closed().
        self._closing = True
        self._direct = False
        self._outbox.clear()
        self._inflight = None
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
