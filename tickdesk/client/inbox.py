"""The bounded buffer behind ``TickdeskClient.messages()``, and its overflow policy.

Pure: no threads, sockets or clocks (the client wraps it in a condition
variable). The reader thread must never block on a slow consumer, so the
buffer holds at most ``capacity`` messages. When a message arrives and the
buffer is full, one queued message is discarded to make room:

1. the **oldest queued ``MARKET_UPDATE`` or ``BOOK_UPDATE``**, if there is
   one: a newer state of the market supersedes it (the server conflates
   market data the same way);
2. otherwise the oldest message.

Every discarded message is counted in :attr:`Inbox.dropped`. Apart from the
discards, messages come out in arrival order. A consumer that must see every
message uses the ``on_message`` callback, which has no buffer.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["Inbox"]

Message = dict[str, Any]

_MARKET = frozenset({"MARKET_UPDATE", "BOOK_UPDATE"})


class Inbox:
    """A bounded FIFO of messages with the overflow policy of the module docstring."""

    __slots__ = ("_market", "_queue", "capacity", "dropped")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity!r}")
        self.capacity = capacity
        self._queue: deque[Message] = deque()
        self._market = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, msg: Message) -> None:
        """Append ``msg``, discarding one queued message first if full
        (a capacity of 0 keeps nothing)."""
        if self.capacity == 0:
            return
        if len(self._queue) >= self.capacity:
            self._evict()
        self._queue.append(msg)
        if msg.get("type") in _MARKET:
            self._market += 1

    def pop(self) -> Message | None:
        """The oldest message, or None when empty."""
        if not self._queue:
            return None
        msg = self._queue.popleft()
        if msg.get("type") in _MARKET:
            self._market -= 1
        return msg

    def _evict(self) -> None:
        self.dropped += 1
        if self._market:
            for i, queued in enumerate(self._queue):
                if queued.get("type") in _MARKET:
                    del self._queue[i]
                    self._market -= 1
                    return
        self.pop()
