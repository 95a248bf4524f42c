"""A clock that only moves when a test tells it to.

:class:`FakeClock` implements :class:`engine.clock.Clock` (``now_ms`` and
``monotonic``) plus :meth:`FakeClock.advance`. It is thread-safe: the code
under test reads it from its own threads while the test advances it.

Code that waits for a deadline on its clock (a watchdog that polls, a replay
that paces) keeps polling while the fake clock stands still, and acts on the
first poll after :meth:`advance` moves it past the deadline. :attr:`reads`
counts how often the clock was read, and :meth:`reads_from` how often one
thread (by name) read it, so a test can wait, without sleeping, until the
code has looked at the clock again (``wait_until(lambda:
clock.reads_from("feed-binance-watch") > n)``) before asserting that nothing
happened yet.
"""

from __future__ import annotations

import math
import threading

__all__ = ["FakeClock"]

#: 2026-01-01T00:00:00Z: wire timestamps in tests look like real ones.
DEFAULT_START_MS = 1_767_225_600_000


class FakeClock:
    """A manual clock: ``monotonic()`` starts at ``start_s``, ``now_ms()`` at
    ``start_ms``; both move only by :meth:`advance`."""

    def __init__(self, start_ms: int = DEFAULT_START_MS, start_s: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._start_ms = start_ms
        self._start_s = start_s
        self._elapsed_ns = 0  # an int: advancing by 0.999 then 0.001 is exactly 1 s
        self._reads = 0
        self._reads_by: dict[str, int] = {}

    def _count(self) -> None:
        name = threading.current_thread().name
        self._reads += 1
        self._reads_by[name] = self._reads_by.get(name, 0) + 1

    def now_ms(self) -> int:
        with self._lock:
            self._count()
            return self._start_ms + self._elapsed_ns // 1_000_000

    def monotonic(self) -> float:
        with self._lock:
            self._count()
            return self._start_s + self._elapsed_ns / 1e9

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (>= 0; time never goes back)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        with self._lock:
            self._elapsed_ns += round(seconds * 1e9)

    @property
    def reads(self) -> int:
        """How many times ``now_ms`` or ``monotonic`` has been called so far."""
        with self._lock:
            return self._reads

    def reads_from(self, thread_name: str) -> int:
        """How many times the thread called ``thread_name`` has read the clock."""
        with self._lock:
            return self._reads_by.get(thread_name, 0)
