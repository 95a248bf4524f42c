"""The recent trades of each symbol, for ``GET /api/v3/trades``, ``/aggTrades``
and ``/historicalTrades``.

Pure core: no threads, sockets, clocks or pykka; every time is the trade's
own (epoch milliseconds). The one owner of a :class:`RecentTrades` is the
FeedActor (its thread calls every method; it is not thread-safe): it records
each trade it routes (after the feed's checks: dedupe, plausibility,
freshness) with the id its ``@trade``/``@aggTrade`` streams send for it, so
REST and the streams name a trade the same way.

Bound: at most ``capacity`` trades per symbol (Binance's ``limit`` maximum,
1000); beyond, the oldest is dropped. Symbols are only those the feed routes
trades for; :meth:`RecentTrades.forget` drops a withdrawn one.

Queries answer in arrival order (oldest first, like Binance), which for a
feed with ids is ascending id order (the dedupe drops a trade whose id is
not newer).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from engine.messages import Trade

__all__ = ["DEFAULT_CAPACITY", "RecentTrade", "RecentTrades", "TradesQuery"]

#: Binance's ``limit`` maximum for ``/api/v3/trades``.
DEFAULT_CAPACITY = 1000


@dataclass(frozen=True, slots=True)
class RecentTrade:
    """One routed trade as the REST endpoints show it."""

    trade_id: int
    price: Decimal
    quantity: Decimal
    #: The trade's time (Binance ``T``), epoch ms.
    time: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class TradesQuery:
    """Which trades of ``symbol``: those with ``trade_id >= from_id`` and
    ``start_ms <= time <= end_ms`` (each bound optional); the first ``limit`` of
    them when ``from_id`` or ``start_ms`` is given, else the last ``limit``."""

    symbol: str
    limit: int
    from_id: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None


class RecentTrades:
    """A bounded ring of recent trades per symbol (see the module docstring)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._rings: dict[str, deque[RecentTrade]] = {}

    @property
    def capacity(self) -> int:
        return self._capacity

    def add(self, trade: Trade, trade_id: int) -> None:
        """Record one routed trade under ``trade_id`` (the oldest goes beyond the bound)."""
        ring = self._rings.get(trade.symbol)
        if ring is None:
            ring = self._rings[trade.symbol] = deque(maxlen=self._capacity)
        ring.append(RecentTrade(trade_id, trade.price, trade.quantity, trade.trade_time,
                                bool(trade.buyer_is_maker)))

    def forget(self, symbol: str) -> None:
        self._rings.pop(symbol, None)

    def query(self, q: TradesQuery) -> list[RecentTrade]:
        """The trades ``q`` selects, oldest first (at most ``q.limit``, at least 0)."""
        ring = self._rings.get(q.symbol)
        if ring is None or q.limit <= 0:
            return []
        picked = [t for t in ring
                  if (q.from_id is None or t.trade_id >= q.from_id)
                  and (q.start_ms is None or t.time >= q.start_ms)
                  and (q.end_ms is None or t.time <= q.end_ms)]
        if q.from_id is not None or q.start_ms is not None:
            return picked[:q.limit]
        return picked[-q.limit:]
