"""Deadlines by key: at most one per key, the earliest first, cost per event.

Pure core (no locking, no clock: the owner passes ``now``). The I/O loop keeps
each connection's next keep-alive ping here, so an idle daemon with N clients
wakes when a ping is due, not every interval to look at all N.

A heap of ``(when, seq, key)`` plus the live deadline of each key. Setting a
key's deadline again or cancelling it leaves the old heap entry behind; such
stale entries are skipped when they come up and, bound: the heap is rebuilt
from the live deadlines whenever it holds more than twice as many entries as
there are keys (plus :data:`_SLACK`), so it never holds more than about twice
the keys.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)

_SLACK = 64


class Deadlines(Generic[K]):
    """``set(key, when)``, ``cancel(key)``, ``pop_due(now)``, ``next_at()``."""

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._live: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        """Keys with a deadline."""
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def when(self, key: K) -> float | None:
        """``key``'s deadline, None if it has none."""
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def set(self, key: K, when: float) -> None:
        """``key`` is due at ``when`` (replacing any deadline it had)."""
        seq = next(self._seq)
        self._live[key] = (when, seq)
        heapq.heappush(self._heap, (when, seq, key))
        if len(self._heap) > 2 * len(self._live) + _SLACK:
            self._compact()

    def cancel(self, key: K) -> bool:
        """Forget ``key``'s deadline; False if it had none."""
        return self._live.pop(key, None) is not None

    def next_at(self) -> float | None:
        """The earliest live deadline, None if there is none."""
        heap, live = self._heap, self._live
        while heap:
            when, seq, key = heap[0]
            if live.get(key) == (when, seq):
                return when
            heapq.heappop(heap)  # stale: replaced or cancelled
        return None

    def pop_due(self, now: float, limit: int | None = None) -> list[K]:
        """The keys due at ``now`` (deadline ≤ now), earliest first, at most
        ``limit`` of them; they no longer have a deadline."""
        heap, live = self._heap, self._live
        due: list[K] = []
        while heap and heap[0][0] <= now and (limit is None or len(due) < limit):
            when, seq, key = heapq.heappop(heap)
            if live.get(key) == (when, seq):
                del live[key]
                due.append(key)
        return due

    def _compact(self) -> None:
        self._heap = [(when, seq, key) for key, (when, seq) in self._live.items()]
        heapq.heapify(self._heap)
