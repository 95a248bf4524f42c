"""TradeRelay: a trade reaches the order monitor and the portfolio after its
fan-out, yet before any command a client sends in reaction to it.

Why: the FeedActor used to tell both actors of a trade *before* writing its
MARKET_UPDATE to the subscribers, so that a command sent in reaction to the
price always reaches the order monitor after the trade itself. But both
actors then woke up during the fan-out and took turns on the GIL with it at
every ``send`` (each releases the GIL): measured with 300 subscribers, the
fan-out thread spent about a third more CPU per delivery
(``python -m tickdesk.bench.thread_cpu``; docs/performance.md).

How: the FeedActor :meth:`hold`\\ s the telling of a trade (a callable) before
the first client can see the price, writes the MARKET_UPDATE to every
subscriber, then :meth:`flush`\\ es. Every account command passes through
:meth:`flush` before it is queued (:class:`~actors.command_desk.CommandDesk`
is the only way a command reaches either actor): a command submitted while a
trade is held tells that trade first, from the submitter's thread. So the
order holds for every client that could have seen the price, and the actors
wake during a fan-out only if a command actually arrives during it.

The held callable runs exactly once, under the relay's lock, and ``flush``
returns only once it ran (whichever thread ran it): a submitter never queues
its command while the trade's tells are still under way in another thread.
The callable must only tell actors (non-blocking, never calls :meth:`flush`).
At most one trade is held: :meth:`hold` flushes the previous one first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["TradeRelay"]


class TradeRelay:
    """Holds one trade's tells during its fan-out (see the module docstring)."""

    __slots__ = ("_held", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: The tells of the trade being fanned out, None once they ran. Set and
        #: cleared under the lock; read without it only to skip the lock when
        #: nothing is held (it is cleared only after the tells ran).
        self._held: Callable[[], None] | None = None

    def hold(self, tell: Callable[[], None]) -> None:
        """The FeedActor, before a trade's fan-out: ``tell`` runs at the next
        :meth:`flush` (the feed's own, after the fan-out, or a submitter's)."""
        self.flush()
        with self._lock:
            self._held = tell

    def flush(self) -> None:
        """Run the held tells now if they have not run yet; return once they ran.
        Any thread (the FeedActor after the fan-out; every command submission)."""
        if self._held is None:
            return
        with self._lock:
            tell = self._held
            if tell is None:
                return
            try:
                tell()
            finally:
                self._held = None

    @property
    def holding(self) -> bool:
        """A trade's tells are waiting (for tests and statistics)."""
        return self._held is not None
