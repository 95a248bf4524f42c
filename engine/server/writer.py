"""The writer loop: one thread that finishes the writes the fast path could not.

Edge module. Channels whose socket was full hand themselves over with
:meth:`WriterLoop.want_write`; this thread waits for writability with a
selector and flushes them (batching queued frames into one ``send``). It
also enforces ``write_timeout_s`` (a socket that accepts nothing for that
long is closed with 4002), shuts sockets down after a close grace period,
and closes released sockets after unregistering them, so the selector never
holds a stale file descriptor.

Bounds: each channel is in the request queue at most once per state change
(want-write, shutdown, release), so the queue holds at most three entries
per live channel; timers are one per closing channel.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.protocol.enums import CloseCode
from engine.stats import counter, gauge

if TYPE_CHECKING:
    from engine.server.channel import SocketChannel

__all__ = ["WriterLoop", "WriterStatistics"]

log = logging.getLogger("tickdesk.writer")

_CHECK_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    """What the writer thread holds and did (``/metrics``: ``tickdesk_writer_*``)."""

    channels_waiting: int = gauge("Channels with queued data waiting for their socket.")
    write_timeouts: int = counter("Channels closed 4002: socket not writable in time.")


class WriterLoop:
    """See the module docstring. Start with :meth:`start`, end with :meth:`stop`."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._requests: deque[tuple[str, SocketChannel]] = deque()
        self._timers: list[tuple[float, int, SocketChannel]] = []
        self._seq = itertools.count()
        self._registered: dict[int, SocketChannel] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tickdesk-writer", daemon=True)
        self.evictions = 0

    def start(self) -> None:
        self._thread.start()

    def statistics(self) -> WriterStatistics:
        """Any thread (sizes read without the writer's lock: a moment's view)."""
        return WriterStatistics(len(self._registered), self.evictions)

    def stop(self, timeout: float = 2.0) -> None:
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- any thread ---------------------------------------------------------

    def want_write(self, ch: SocketChannel) -> None:
        self._request("write", ch)

    def shutdown_later(self, ch: SocketChannel, grace_s: float) -> None:
        if grace_s <= 0:
            self._request("shutdown", ch)
            return
        with self._lock:
            heapq.heappush(self._timers, (self._monotonic() + grace_s, next(self._seq), ch))
        self._wake()

    def release(self, ch: SocketChannel) -> None:
        self._request("release", ch)

    def _request(self, op: str, ch: SocketChannel) -> None:
        with self._lock:
            if self._stopping or not self._thread.is_alive():
                running = False
            else:
                running = True
                self._requests.append((op, ch))
        if running:
            self._wake()
        elif op == "release":
            ch.close_socket()
        elif op == "shutdown":
            ch.shutdown_socket()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full) or shutting down

    # -- writer thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        break
                    requests = list(self._requests)
                    self._requests.clear()
                for op, ch in requests:
                    self._handle(op, ch)
                timeout = self._fire_timers()
                if self._registered:
                    timeout = min(timeout, _CHECK_INTERVAL_S)
                for key, _ in self._sel.select(timeout):
                    ch = key.data
                    if ch is None:
                        self._drain_wake()
                        continue
                    if ch.flush():
                        self._unregister(ch)
                self._enforce_deadlines()
        except Exception:  # pragma: no cover - a bug; surface it loudly
            log.exception("writer loop crashed")
        finally:
            for ch in list(self._registered.values()):
                self._unregister(ch)

    def _handle(self, op: str, ch: SocketChannel) -> None:
        if op == "write":
            if ch.flush():
                return
            fd = ch.sock.fileno()
            if fd >= 0 and fd not in self._registered:
                try:
                    self._sel.register(fd, selectors.EVENT_WRITE, ch)
                    self._registered[fd] = ch
                except (ValueError, KeyError, OSError):
                    ch.shutdown_socket()
        elif op == "shutdown":
            ch.shutdown_socket()
        elif op == "release":
            self._unregister(ch)
            ch.close_socket()

    def _unregister(self, ch: SocketChannel) -> None:
        for fd, other in list(self._registered.items()):
            if other is ch:
                del self._registered[fd]
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._sel.unregister(fd)

    def _fire_timers(self) -> float:
        now = self._monotonic()
        due: list[SocketChannel] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
            timeout = self._timers[0][0] - now if self._timers else 1.0
        for ch in due:
            ch.shutdown_socket()
        return max(0.0, timeout)

    def _enforce_deadlines(self) -> None:
        now = self._monotonic()
        for ch in list(self._registered.values()):
            if ch.stalled_for(now) > ch.write_timeout_s:
                self._unregister(ch)
                self.evictions += 1
                ch.close(CloseCode.WRITE_TIMEOUT, "slow consumer: socket not writable",
                         drop_pending=True)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
