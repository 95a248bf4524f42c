"""Per-key bounded FIFO queues served round-robin (pure; the caller locks).

The account commands waiting for an engine actor are kept here, one queue
per account (:class:`actors.command_desk.CommandDesk` holds one per engine
actor and its lock). :meth:`FairQueue.pop` takes the oldest item of the
next key in turn, so a key with a long backlog delays another key's item by
at most one of its own items per key ahead in the rotation, however many
it has queued. :meth:`FairQueue.pop_many` takes a batch in that same order.

Bound and overflow policy: each key holds at most ``per_key`` items;
:meth:`FairQueue.push` of one more returns False and stores nothing (the
caller answers the command ``ERROR BUSY``). The number of keys is the
caller's bound (here: the configured accounts), so the whole queue holds at
most ``per_key`` times that.

No threads, no clock: runs in whichever thread holds the caller's lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["FairQueue"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class FairQueue(Generic[K, T]):
    def __init__(self, per_key: int) -> None:
        if per_key < 1:
            raise ValueError("per_key must be >= 1")
        self.per_key = per_key
        self._queues: dict[K, deque[T]] = {}
        #: Keys with at least one item, in serving order (the next one first).
        self._turn: deque[K] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def waiting(self, key: K) -> int:
        """How many items of ``key`` wait."""
        q = self._queues.get(key)
        return len(q) if q is not None else 0

    def push(self, key: K, item: T) -> bool:
        """Append ``item`` to ``key``'s queue; False (nothing stored) when it is full."""
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = deque()
        if len(q) >= self.per_key:
            return False
        if not q:
            self._turn.append(key)  # a key that was empty joins at the end of the rotation
        q.append(item)
        self._size += 1
        return True

    def pop(self) -> T | None:
        """The oldest item of the key whose turn it is (None when all are empty);
        that key then goes to the end of the rotation if it has more."""
        if not self._turn:
            return None
        key = self._turn.popleft()
        q = self._queues[key]
        item = q.popleft()
        self._size -= 1
        if q:
            self._turn.append(key)
        else:
            del self._queues[key]
        return item

    def pop_many(self, limit: int) -> list[T]:
        """Up to ``limit`` items, each taken as :meth:`pop` would take it in turn
        (so a key with a long backlog gets one item per round of the rotation,
        never the whole batch ahead of another key's item)."""
        items: list[T] = []
        while len(items) < limit:
            item = self.pop()
            if item is None:
                break
            items.append(item)
        return items
