"""FairQueue: per-key bounds and the round-robin order of service (pure)."""

from __future__ import annotations

import pytest

from engine.fair_queue import FairQueue


def test_a_full_key_refuses_and_stores_nothing_while_others_still_queue() -> None:
    q: FairQueue[str, str] = FairQueue(per_key=2)
    assert q.push("a", "a1") and q.push("a", "a2")
    assert not q.push("a", "a3")
    assert q.waiting("a") == 2 and len(q) == 2
    assert q.push("b", "b1")
    assert len(q) == 3


def test_keys_are_served_in_turn_whatever_their_backlog() -> None:
    q: FairQueue[str, str] = FairQueue(per_key=10)
    for i in range(1, 6):
        q.push("a", f"a{i}")
    q.push("b", "b1")
    q.push("b", "b2")
    q.push("c", "c1")
    served = [q.pop() for _ in range(8)]
    assert served == ["a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]
    assert q.pop() is None and len(q) == 0


def test_a_key_that_comes_back_waits_for_the_keys_already_queued() -> None:
    q: FairQueue[str, str] = FairQueue(per_key=10)
    q.push("a", "a1")
    q.push("a", "a2")
    assert q.pop() == "a1"
    q.push("b", "b1")  # b joins behind a (whose turn came back after a1)
    assert [q.pop(), q.pop()] == ["a2", "b1"]
    q.push("b", "b2")
    q.push("a", "a3")
    assert [q.pop(), q.pop()] == ["b2", "a3"]


def test_room_comes_back_as_items_are_served() -> None:
    q: FairQueue[str, int] = FairQueue(per_key=1)
    assert q.push("a", 1) and not q.push("a", 2)
    assert q.pop() == 1
    assert q.push("a", 3) and q.pop() == 3


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FairQueue(per_key=0)


def test_a_batch_is_taken_round_robin_and_bounded() -> None:
    q: FairQueue[str, str] = FairQueue(per_key=10)
    for i in range(1, 7):
        q.push("a", f"a{i}")
    q.push("b", "b1")
    # a's backlog of six cannot fill the batch ahead of b's one command
    assert q.pop_many(4) == ["a1", "b1", "a2", "a3"]
    assert q.pop_many(10) == ["a4", "a5", "a6"]
    assert q.pop_many(10) == [] and len(q) == 0
