"""Implausible trades (engine.market.plausibility): held, dropped, never the reference."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.market.dedupe import Watermarks
from engine.market.plausibility import Reference, TradeGuard
from engine.messages import Trade

POISON_ID = 2**63 - 1


def trade(tid: int | None, price: str, symbol: str = "BTCUSDT") -> Trade:
    return Trade(symbol, Decimal(price), Decimal("0.5"), 0, 0, tid)


Routed = list[int | None]
Dropped = list[tuple[int | None, str]]


def run(guard: TradeGuard, trades: list[Trade]) -> tuple[Routed, Dropped]:
    """Feed ``trades`` in order; the ids routed and the (id, reason) dropped."""
    routed: list[int | None] = []
    dropped: list[tuple[int | None, str]] = []
    for t in trades:
        v = guard.check(t)
        routed += [r.trade_id for r in v.route]
        dropped += [(d.trade_id, why) for d, why in v.dropped]
    return routed, dropped


def warm() -> TradeGuard:
    """A guard (1000-id jump, 10 % band) that trusts BTCUSDT at id 100, price 50000."""
    guard = TradeGuard(1000, 10)
    assert run(guard, [trade(99, "50000"), trade(100, "50000")]) == ([99, 100], [])
    return guard


def test_the_issue_poison_trade_is_dropped_and_genuine_trades_keep_flowing() -> None:
    guard = warm()
    routed, dropped = run(guard, [trade(POISON_ID, "0.01"), trade(101, "50001"),
                                  trade(102, "50002")])
    assert routed == [101, 102]
    assert dropped == [(POISON_ID, "id_jump")]
    assert guard.references()["BTCUSDT"] == Reference(102, Decimal("50002"))


def test_a_price_far_from_the_last_trade_is_dropped_and_never_the_reference() -> None:
    guard = warm()
    routed, dropped = run(guard, [trade(101, "0.01"), trade(102, "50010")])
    assert routed == [102] and dropped == [(101, "price_band")]
    assert guard.references()["BTCUSDT"].price == Decimal("50010")


def test_the_band_edges() -> None:
    guard = warm()
    # exactly 10 % away is inside the band; a hair beyond is not
    assert run(guard, [trade(101, "55000")]) == ([101], [])
    guard = warm()
    assert run(guard, [trade(101, "55000.01")]) == ([], [])  # held as a suspect
    assert guard.pending() == 1


def test_id_jump_edges() -> None:
    guard = warm()
    assert run(guard, [trade(1100, "50000")]) == ([1100], [])  # exactly 1000 ahead
    guard = warm()
    assert run(guard, [trade(1101, "50000"), trade(101, "50000")]) == (
        [101], [(1101, "id_jump")])


def test_a_genuine_level_shift_is_confirmed_by_the_next_trade_and_nothing_is_lost() -> None:
    guard = warm()
    # the market really drops 30 %: the first trade is held, the second vouches for it
    routed, dropped = run(guard, [trade(101, "35000"), trade(102, "35010"),
                                  trade(103, "35020")])
    assert routed == [101, 102, 103] and dropped == []
    # a real run of missed ids (far ahead) is confirmed the same way
    routed, dropped = run(guard, [trade(50_000, "35000"), trade(50_001, "35000")])
    assert routed == [50_000, 50_001] and dropped == []


def test_two_poison_trades_in_a_row_that_disagree_are_both_dropped() -> None:
    guard = warm()
    routed, dropped = run(guard, [trade(POISON_ID, "0.01"), trade(102, "1e9"),
                                  trade(103, "50000")])
    assert routed == [103]
    assert dropped == [(POISON_ID, "id_jump"), (102, "price_band")]


def test_the_first_trade_waits_for_the_next_one_to_vouch_for_it() -> None:
    guard = TradeGuard(1000, 10)
    assert run(guard, [trade(500, "50000")]) == ([], [])
    assert guard.pending() == 1
    assert run(guard, [trade(501, "50001")]) == ([500, 501], [])


def test_a_poison_first_trade_is_never_routed() -> None:
    guard = TradeGuard(1000, 10)
    routed, dropped = run(guard, [trade(POISON_ID, "0.01"), trade(500, "50000"),
                                  trade(501, "50000")])
    assert routed == [500, 501] and dropped == [(POISON_ID, "unconfirmed")]


def test_a_seed_from_the_previous_connection_lets_a_continuing_trade_through() -> None:
    guard = TradeGuard(1000, 10)
    guard.seed({"BTCUSDT": Reference(100, Decimal("50000"))})
    assert run(guard, [trade(105, "50010")]) == ([105], [])


def test_a_stale_seed_never_freezes_a_new_connection() -> None:
    # the upstream's ids restarted (or the seed is poison): trades behind the seed flow
    guard = TradeGuard(1000, 10)
    guard.seed({"BTCUSDT": Reference(POISON_ID, Decimal("50000"))})
    routed, dropped = run(guard, [trade(10, "50000"), trade(11, "50000"), trade(12, "50000")])
    assert routed == [10, 11, 12] and dropped == []
    marks = Watermarks()  # a new connection's watermark is fresh, so they are routed
    assert [t for t in (10, 11, 12) if marks.admit(trade(t, "50000"))] == [10, 11, 12]


def test_a_quote_is_a_price_reference_until_trades_are_trusted() -> None:
    guard = TradeGuard(1000, 10)
    guard.note_quote("BTCUSDT", Decimal("50000"))
    # a first trade far from the quote is unconfirmed; the next one decides
    routed, dropped = run(guard, [trade(1, "0.01"), trade(2, "50000"), trade(3, "50000")])
    assert routed == [2, 3] and dropped == [(1, "unconfirmed")]
    guard.note_quote("BTCUSDT", Decimal("1"))  # ignored once a trade is trusted
    assert run(guard, [trade(4, "50000")]) == ([4], [])


def test_duplicates_of_a_rotation_pass_through_to_the_watermark() -> None:
    guard, marks = warm(), Watermarks()
    marks.admit(trade(100, "50000"))
    old = [trade(i, "50000") for i in range(101, 104)]
    new = [trade(i, "50000") for i in range(102, 106)]
    routed, _ = run(guard, old[:2] + new + old[2:])
    assert [i for i in routed if marks.admit(trade(i, "50000"))] == [101, 102, 103, 104, 105]


def test_a_suspect_seen_twice_during_an_overlap_is_still_one_suspect() -> None:
    guard = warm()
    routed, dropped = run(guard, [trade(101, "35000"), trade(101, "35000"),
                                  trade(102, "35000")])
    assert routed == [101, 102] and dropped == []


def test_symbols_are_independent_and_give_up_drops_what_is_held() -> None:
    guard = warm()
    assert run(guard, [trade(1, "3000", "ETHUSDT")]) == ([], [])
    assert run(guard, [trade(101, "50000")]) == ([101], [])
    assert [(t.symbol, why) for t, why in guard.give_up()] == [("ETHUSDT", "unconfirmed")]
    assert guard.pending() == 0


def test_trades_without_an_id_are_checked_by_price_only() -> None:
    guard = warm()
    assert run(guard, [trade(None, "50100")]) == ([None], [])
    assert run(guard, [trade(None, "1")]) == ([], [(None, "price_band")])


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        TradeGuard(0, 10)
    with pytest.raises(ValueError):
        TradeGuard(10, 0)
