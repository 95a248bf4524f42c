"""Deadlines: at most one per key, earliest first, replaced and cancelled keys skipped."""

from __future__ import annotations

from engine.deadlines import Deadlines


def test_keys_come_due_in_deadline_order_and_only_once() -> None:
    d: Deadlines[str] = Deadlines()
    d.set("b", 2.0)
    d.set("a", 1.0)
    d.set("c", 3.0)
    assert d.next_at() == 1.0
    assert d.pop_due(0.5) == []
    assert d.pop_due(2.0) == ["a", "b"]
    assert d.pop_due(2.0) == []
    assert len(d) == 1 and "c" in d and "a" not in d
    assert d.next_at() == 3.0
    assert d.pop_due(10.0) == ["c"]
    assert d.next_at() is None and len(d) == 0


def test_setting_a_key_again_replaces_its_deadline() -> None:
    d: Deadlines[str] = Deadlines()
    d.set("a", 1.0)
    d.set("a", 5.0)  # later: the old 1.0 entry must not fire
    d.set("b", 2.0)
    assert d.when("a") == 5.0
    assert d.pop_due(3.0) == ["b"]
    assert d.next_at() == 5.0
    d.set("a", 0.5)  # earlier again
    assert d.pop_due(1.0) == ["a"]
    assert d.pop_due(100.0) == []


def test_a_cancelled_key_never_comes_due() -> None:
    d: Deadlines[str] = Deadlines()
    d.set("a", 1.0)
    d.set("b", 1.0)
    assert d.cancel("a") is True
    assert d.cancel("a") is False
    assert d.cancel("never") is False
    assert d.when("a") is None
    assert d.pop_due(2.0) == ["b"]


def test_pop_due_stops_at_the_limit_and_keeps_the_rest() -> None:
    d: Deadlines[int] = Deadlines()
    for k in range(10):
        d.set(k, float(k))
    assert d.pop_due(100.0, limit=3) == [0, 1, 2]
    assert len(d) == 7
    assert d.pop_due(100.0) == [3, 4, 5, 6, 7, 8, 9]


def test_rescheduling_many_times_keeps_the_heap_bounded() -> None:
    d: Deadlines[int] = Deadlines()
    for round_ in range(1000):
        for k in range(5):
            d.set(k, float(round_ * 10 + k))
    assert len(d) == 5
    assert len(d._heap) <= 2 * len(d) + 64  # stale entries are compacted away
    assert d.pop_due(10_000.0) == [0, 1, 2, 3, 4]
