"""Aggregate-trade id continuity."""

from __future__ import annotations

from engine.market.agg_gaps import AggGapTracker, SymbolGapStats


def test_observe_gaps_duplicates_out_of_order() -> None:
    t = AggGapTracker()
    seq = [(10, 0), (11, 0), (11, 0), (15, 3), (12, 0), (16, 0), (20, 3)]
    assert [t.observe("BTCUSDT", a) for a, _ in seq] == [gap for _, gap in seq]
    assert t.stats("BTCUSDT") == SymbolGapStats(
        last_id=20, observed=7, gaps=2, missing=6, duplicates=1, out_of_order=1
    )
    assert t.observe("ETHUSDT", 1) == 0  # symbols are independent
    assert t.symbols() == ["BTCUSDT", "ETHUSDT"]
    t.reset("BTCUSDT")
    assert t.observe("BTCUSDT", 1000) == 0
    t.reset()
    assert t.symbols() == [] and t.stats("ETHUSDT") is None
