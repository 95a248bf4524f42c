"""Aggregate-trade id continuity, per symbol.

Pure core: no threads, sockets, clocks or pykka; owned by one thread (the
feed's). Binance aggregate-trade ids (``a``) of one symbol increase by exactly
1 from one ``@aggTrade`` event to the next, so a jump means trades were missed
(a dropped frame, a reconnect). :meth:`AggGapTracker.observe` returns the
number of missing ids; duplicates and ids older than the last one (out of
order) return 0 and are only counted, and never move the tracker backwards.
Call :meth:`AggGapTracker.reset` after a reconnect if the caller does not want
the trades missed while disconnected to count as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AggGapTracker", "SymbolGapStats"]


@dataclass(slots=True)
class SymbolGapStats:
    """Counters of one symbol."""

    last_id: int
    observed: int = 1
    gaps: int = 0
    """Number of jumps seen."""
    missing: int = 0
    """Total ids missed over all jumps."""
    duplicates: int = 0
    out_of_order: int = 0


class AggGapTracker:
    """Tracks aggregate-trade id continuity for many symbols."""

    __slots__ = ("_symbols",)

    def __init__(self) -> None:
        self._symbols: dict[str, SymbolGapStats] = {}

    def observe(self, symbol: str, agg_id: int) -> int:
        """Note ``agg_id`` for ``symbol``; return how many ids were skipped (0 normally)."""
        stats = self._symbols.get(symbol)
        if stats is None:
            self._symbols[symbol] = SymbolGapStats(last_id=agg_id)
            return 0
        stats.observed += 1
        if agg_id == stats.last_id:
            stats.duplicates += 1
            return 0
        if agg_id < stats.last_id:
            stats.out_of_order += 1
            return 0
        gap = agg_id - stats.last_id - 1
        stats.last_id = agg_id
        if gap:
            stats.gaps += 1
            stats.missing += gap
        return gap

    def stats(self, symbol: str) -> SymbolGapStats | None:
        """A copy of the counters of ``symbol`` (None if never seen)."""
        stats = self._symbols.get(symbol)
        if stats is None:
            return None
        return SymbolGapStats(
            stats.last_id,
            stats.observed,
            stats.gaps,
            stats.missing,
            stats.duplicates,
            stats.out_of_order,
        )

    def symbols(self) -> list[str]:
        """Symbols seen so far, sorted."""
        return sorted(self._symbols)

    def reset(self, symbol: str | None = None) -> None:
        """Forget one symbol's position (or every symbol's), e.g. after a reconnect."""
        if symbol is None:
            self._symbols.clear()
        else:
            self._symbols.pop(symbol, None)
