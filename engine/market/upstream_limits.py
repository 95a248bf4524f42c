"""Binance's WebSocket limits as pure rate limiters.

Pure core: no threads, sockets, clocks or pykka. Time is ``now_s`` (seconds on
a monotonic clock) passed in by the caller; one owner thread (the feed's) uses
each object, none is thread-safe.

Limits (binance-spot-api-docs, ``web-socket-streams.md``):

* at most 5 incoming control messages per second per connection
  (:func:`control_message_limiter`); Binance disconnects a client that sends more;
* at most 300 connection attempts per 5 minutes per IP
  (:func:`connection_attempt_limiter`);
* at most 1024 streams per connection (``binance_codec.MAX_STREAMS_PER_CONNECTION``, which the
  feed checks before it subscribes a new symbol);
* a connection is valid for 24 hours only (:func:`next_rotation`).

A sliding window (not a token bucket) is used for the message limits because
Binance counts messages over a window: a bucket of 5 refilled at 5/s can let
nearly 10 messages into one second, a sliding window of 5 per 1 s never does.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

__all__ = [
    "CONNECTION_ATTEMPTS_PER_WINDOW",
    "CONNECTION_ATTEMPT_WINDOW_S",
    "CONNECTION_LIFETIME_S",
    "CONTROL_MESSAGES_PER_SECOND",
    "SlidingWindowLimiter",
    "connection_attempt_limiter",
    "control_message_limiter",
    "next_rotation",
]

CONTROL_MESSAGES_PER_SECOND: Final = 5
CONNECTION_ATTEMPTS_PER_WINDOW: Final = 300
CONNECTION_ATTEMPT_WINDOW_S: Final = 300.0
CONNECTION_LIFETIME_S: Final = 24 * 3600.0


class SlidingWindowLimiter:
    """At most ``limit`` events in any window of ``window_s`` seconds.

    An event at ``t`` occupies the window until ``t + window_s`` (exclusive).
    Memory is bounded by ``limit`` timestamps. A ``now_s`` earlier than the
    last one seen is treated as equal to it.
    """

    __slots__ = ("_events", "_last_now", "limit", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        if not math.isfinite(window_s) or window_s <= 0:
            raise ValueError(f"window_s must be finite and > 0, got {window_s!r}")
        self.limit = limit
        self.window_s = float(window_s)
        self._events: deque[float] = deque(maxlen=limit)
        self._last_now = -math.inf

    def _now(self, now_s: float) -> float:
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, got {now_s!r}")
        now_s = max(now_s, self._last_now)
        self._last_now = now_s
        events = self._events
        while events and events[0] + self.window_s <= now_s:
            events.popleft()
        return now_s

    def in_window(self, now_s: float) -> int:
        """Events counted in the window ending at ``now_s``."""
        self._now(now_s)
        return len(self._events)

    def next_free(self, now_s: float) -> float:
        """The earliest time ``>= now_s`` at which :meth:`try_acquire` succeeds."""
        now = self._now(now_s)
        if len(self._events) < self.limit:
            return now
        return self._events[0] + self.window_s

    def try_acquire(self, now_s: float) -> bool:
        """Record an event at ``now_s`` if the window has room; say whether it did."""
        now = self._now(now_s)
        if len(self._events) >= self.limit:
            return False
        self._events.append(now)
        return True


def control_message_limiter() -> SlidingWindowLimiter:
    """Binance: at most 5 control messages per second per connection."""
    return SlidingWindowLimiter(CONTROL_MESSAGES_PER_SECOND, 1.0)


def connection_attempt_limiter() -> SlidingWindowLimiter:
    """Binance: at most 300 connection attempts per 5 minutes per IP."""
    return SlidingWindowLimiter(CONNECTION_ATTEMPTS_PER_WINDOW, CONNECTION_ATTEMPT_WINDOW_S)


def next_rotation(
    connected_at_s: float,
    lifetime_s: float = CONNECTION_LIFETIME_S,
    margin_s: float = 600.0,
) -> float:
    """When to replace a connection made at ``connected_at_s``: before Binance cuts it.

    Returns ``connected_at_s + lifetime_s - margin_s``; the margin leaves time
    to open the new connection and subscribe before the old one is closed.
    """
    if not (math.isfinite(lifetime_s) and lifetime_s > 0):
        raise ValueError(f"lifetime_s must be finite and > 0, got {lifetime_s!r}")
    if not (math.isfinite(margin_s) and 0 <= margin_s < lifetime_s):
        raise ValueError(f"margin_s must be in [0, lifetime_s), got {margin_s!r}")
    return connected_at_s + lifetime_s - margin_s
