"""De-duplication across a rotation: route each trade and ticker at most once.

Pure core, owned by the FeedActor (its thread). During a rotation two
connections to the same streams are open at once (connect new first), so the
same trade or ticker can arrive twice. :class:`Watermarks` keeps, per symbol,
the highest trade id and the latest ticker event time routed so far: an item at
or below its symbol's watermark is a duplicate (or older than what clients have
already seen) and is not routed. A trade without a trade id is always new.

Bound: two integers per symbol the feed serves.
"""

from __future__ import annotations

from engine.messages import Ticker24h, Trade

__all__ = ["Watermarks"]


class Watermarks:
    """Per-symbol trade-id and ticker-time watermarks (see the module docstring)."""

    def __init__(self) -> None:
        self._trade_id: dict[str, int] = {}
        self._ticker_ms: dict[str, int] = {}

    def admit(self, item: Trade | Ticker24h) -> bool:
        """True if ``item`` is newer than everything routed for its symbol (it then
        becomes the watermark); False for a duplicate or an older item."""
        if isinstance(item, Trade):
            return self._admit_trade(item)
        return self._admit_ticker(item)

    def _admit_trade(self, trade: Trade) -> bool:
        tid = trade.trade_id
        if tid is None:
            return True
        last = self._trade_id.get(trade.symbol)
        if last is not None and tid <= last:
            return False
        self._trade_id[trade.symbol] = tid
        return True

    def _admit_ticker(self, ticker: Ticker24h) -> bool:
        last = self._ticker_ms.get(ticker.symbol)
        if last is not None and ticker.event_time <= last:
            return False
        self._ticker_ms[ticker.symbol] = ticker.event_time
        return True
