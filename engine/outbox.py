"""A client's outbound queue: in order, conflating, bounded.

Pure core (no locking here: the owner holds the connection's lock).

Overflow policy, per client:

* Conflatable frames (MARKET_UPDATE, keyed by symbol) replace the queued frame
  of the same key in place, so a slow client gets the latest state of each
  symbol, never a stale backlog; they take at most one slot per symbol.
* Every other frame (replies, ORDER_UPDATE, POSITION_UPDATE...) is kept in
  order. When those frames would exceed ``max_strict_bytes`` the push fails
  and the owner closes the client as a slow consumer: dropping an
  ORDER_UPDATE silently is never an option.
"""

from __future__ import annotations

from collections import deque

__all__ = ["Outbox"]


class Outbox:
    """Queued frames for one client (see the module docstring for the policy)."""

    __slots__ = (
        "_by_key",
        "_items",
        "conflated",
        "max_strict_bytes",
        "queued_bytes",
        "strict_bytes",
    )

    def __init__(self, max_strict_bytes: int) -> None:
        self._items: deque[list[object]] = deque()
        self._by_key: dict[str, list[object]] = {}
        self.max_strict_bytes = max_strict_bytes
        self.queued_bytes = 0
        self.strict_bytes = 0
        #: Frames replaced by a newer frame of the same key (a metric).
        self.conflated = 0

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def push(self, frame: bytes, key: str | None = None) -> bool:
        """Queue ``frame``; return False (and queue nothing) on overflow."""
        if key is not None:
            slot = self._by_key.get(key)
            if slot is not None:
                old = slot[1]
                assert isinstance(old, bytes)
                slot[1] = frame
                self.queued_bytes += len(frame) - len(old)
                self.conflated += 1
                return True
            slot = [key, frame]
            self._by_key[key] = slot
            self._items.append(slot)
            self.queued_bytes += len(frame)
            return True
        if self.strict_bytes + len(frame) > self.max_strict_bytes:
            return False
        self._items.append([None, frame])
        self.queued_bytes += len(frame)
        self.strict_bytes += len(frame)
        return True

    def pop_batch(self, limit: int) -> bytes:
        """Remove and join queued frames, oldest first, up to about ``limit`` bytes.

        At least one frame is returned when any is queued (a frame larger than
        ``limit`` is returned whole); ``b""`` when empty.
        """
        parts: list[bytes] = []
        size = 0
        items = self._items
        while items and (not parts or size + len(items[0][1]) <= limit):  # type: ignore[arg-type]
            key, frame = items.popleft()
            assert isinstance(frame, bytes)
            if key is not None:
                del self._by_key[key]  # type: ignore[arg-type]
            else:
                self.strict_bytes -= len(frame)
            self.queued_bytes -= len(frame)
            parts.append(frame)
            size += len(frame)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def clear(self) -> None:
        self._items.clear()
        self._by_key.clear()
        self.queued_bytes = 0
        self.strict_bytes = 0
