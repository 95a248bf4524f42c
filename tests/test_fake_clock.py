"""The tests' FakeClock: it implements the engine's Clock and moves only when told."""

from __future__ import annotations

import threading

import pytest

from engine.clock import Clock
from tests.clock import FakeClock


def test_stands_still_until_advanced_and_moves_both_clocks() -> None:
    clock = FakeClock(start_ms=5_000, start_s=10.0)
    as_clock: Clock = clock  # what the engine takes
    assert (as_clock.now_ms(), as_clock.monotonic()) == (5_000, 10.0)
    assert (clock.now_ms(), clock.monotonic()) == (5_000, 10.0)
    clock.advance(0.999)
    clock.advance(0.001)
    assert (clock.now_ms(), clock.monotonic()) == (6_000, 11.0)
    clock.advance(0)
    assert clock.monotonic() == 11.0


def test_refuses_to_go_back_or_to_infinity() -> None:
    clock = FakeClock()
    for bad in (-0.001, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            clock.advance(bad)
    assert clock.monotonic() == FakeClock().monotonic()


def test_counts_reads_and_is_safe_across_threads() -> None:
    clock = FakeClock(start_s=0.0)
    seen: list[float] = []

    def reader() -> None:
        for _ in range(1000):
            seen.append(clock.monotonic())

    threads = [threading.Thread(target=reader, name=f"reader-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for _ in range(1000):
        clock.advance(0.001)
    for t in threads:
        t.join(5)
    assert clock.reads == 4000
    assert [clock.reads_from(f"reader-{i}") for i in range(4)] == [1000] * 4
    assert clock.reads_from("nobody") == 0
    assert clock.monotonic() == 1.0  # no advance was lost
    assert all(0.0 <= v <= 1.0 for v in seen)
