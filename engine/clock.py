"""Clocks. The pure core never reads time; the edges inject one of these.

:class:`SystemClock` is the real one. Tests use ``tests/clock.py``'s
``FakeClock``, which implements the same protocol and only moves when told.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, epoch milliseconds (timestamps on the wire)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (deadlines and durations)."""
        ...


class SystemClock:
    """The real clock (thread-safe, stateless)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()
