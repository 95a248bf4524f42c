"""Backoff policy and state machine, against explicit ``now`` values (no clock)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.backoff import Backoff, BackoffPolicy, Decision

MID = 0.5  # rand=0.5 gives the un-jittered delay

POLICY = BackoffPolicy(
    min_s=1.0,
    max_s=8.0,
    factor=2.0,
    jitter=0.25,
    reset_after_s=10.0,
    max_restarts=5,
    restart_window_s=60.0,
)


def test_table_against_fake_clock() -> None:
    b = Backoff(POLICY)
    # (action, now, rand, expected Decision or reset flag)
    table: list[tuple[str, float, float, object]] = [
        ("start", 0.0, 0, None),
        ("fail", 1.0, MID, Decision(1.0, 1, False)),
        ("start", 2.0, 0, None),
        ("fail", 3.0, MID, Decision(2.0, 2, False)),
        ("start", 5.0, 0, None),
        ("fail", 5.5, 0.0, Decision(4.0 * 0.75, 3, False)),  # lowest jitter
        ("start", 9.0, 0, None),
        ("fail", 9.5, MID, Decision(8.0, 4, False)),
        ("start", 18.0, 0, None),
        ("fail", 18.5, MID, Decision(8.0, 5, False)),  # capped at max_s
        ("start", 27.0, 0, None),
        ("stable", 36.9, 0, False),  # 9.9 s < reset_after_s
        ("stable", 37.0, 0, True),  # 10 s of stable running: reset
        # n was reset, but this is the 6th failure within 60 s (> 5): DOWN,
        # and an escalated retry waits max_s whatever n is.
        ("fail", 40.0, MID, Decision(8.0, 1, True)),
        ("start", 41.0, 0, None),
        ("fail", 42.0, MID, Decision(8.0, 2, True)),
        ("start", 50.0, 0, None),
        ("fail", 50.5, 0.999, Decision(8.0 * (1 + 0.25 * (2 * 0.999 - 1)), 3, True)),
        ("start", 59.0, 0, None),
        # 62.0: the failure at 1.0 has left the window (2.0, 62.0]
        ("fail", 62.0, MID, Decision(8.0, 4, True)),
        ("start", 70.0, 0, None),
        # window now (10.5, 70.5]: 18.5, 40, 42, 50.5, 62, 70.5 -> 6 > 5
        ("fail", 70.5, MID, Decision(8.0, 5, True)),
        ("start", 79.0, 0, None),
        # stable run (>= 10 s) noticed at the failure itself: n reset first
        ("fail", 105.0, MID, Decision(1.0, 1, False)),  # window (45, 105]: 4 failures
    ]
    for action, now, rand, expected in table:
        if action == "start":
            b.on_started(now)
        elif action == "stable":
            assert b.on_stable(now) is expected, (action, now)
        else:
            got = b.on_failure(now, rand)
            assert isinstance(expected, Decision)
            assert got.attempt == expected.attempt, (now, got)
            assert got.escalate == expected.escalate, (now, got)
            assert math.isclose(got.delay_s, expected.delay_s), (now, got)
            assert b.escalated == expected.escalate


def test_stable_clears_escalation() -> None:
    b = Backoff(BackoffPolicy(min_s=1, max_s=4, max_restarts=1, restart_window_s=100))
    b.on_failure(0.0, MID)
    assert b.on_failure(1.0, MID).escalate
    assert b.escalated
    b.on_started(2.0)
    assert not b.on_stable(2.0 + 59.9)
    assert b.on_stable(2.0 + 60.0)
    assert not b.escalated
    assert b.consecutive_failures == 0


def test_on_stable_without_start_does_nothing() -> None:
    b = Backoff(POLICY)
    b.on_failure(0.0, MID)
    assert not b.on_stable(1000.0)
    assert b.consecutive_failures == 1


def test_clock_going_backwards_is_clamped() -> None:
    b = Backoff(POLICY)
    b.on_started(100.0)
    d = b.on_failure(50.0, MID)  # treated as 100.0
    assert d == Decision(1.0, 1, False)


def test_max_restarts_zero_escalates_every_failure() -> None:
    b = Backoff(BackoffPolicy(min_s=1, max_s=30, max_restarts=0))
    d = b.on_failure(0.0, MID)
    assert d.escalate and d.delay_s == 30.0


def test_huge_attempt_count_does_not_overflow() -> None:
    b = Backoff(BackoffPolicy(min_s=0.001, max_s=5, factor=10, max_restarts=10**6))
    d = Decision(0, 0, False)
    for i in range(5000):
        d = b.on_failure(float(i), MID)
    assert d.delay_s == 5.0 and d.attempt == 5000
    assert POLICY.base_delay(10**9) == 8.0


def test_factor_one_is_constant() -> None:
    p = BackoffPolicy(min_s=2, max_s=10, factor=1, jitter=0)
    assert [p.base_delay(n) for n in range(4)] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_s": 0}, "min_s"),
        ({"min_s": -1}, "min_s"),
        ({"min_s": math.nan}, "min_s"),
        ({"max_s": 0.1, "min_s": 1}, "max_s"),
        ({"max_s": math.inf}, "max_s"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"reset_after_s": 0}, "reset_after_s"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"max_restarts": 1.5}, "max_restarts"),
        ({"max_restarts": True}, "max_restarts"),
        ({"restart_window_s": 0}, "restart_window_s"),
        ({"min_s": "1"}, "min_s"),
    ],
)
def test_policy_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("rand", [-0.1, 1.0, math.nan])
def test_rand_out_of_range(rand: float) -> None:
    with pytest.raises(ValueError, match="rand"):
        Backoff(POLICY).on_failure(0.0, rand)


@given(
    st.lists(
        st.tuples(st.floats(0, 1000), st.floats(0, 1, exclude_max=True), st.booleans()),
        max_size=60,
    )
)
def test_delays_always_within_jitter_bounds(events: list[tuple[float, float, bool]]) -> None:
    b = Backoff(POLICY)
    now = 0.0
    for step, rand, start in events:
        now += step
        if start:
            b.on_started(now)
            continue
        d = b.on_failure(now, rand)
        assert POLICY.min_s * (1 - POLICY.jitter) <= d.delay_s <= POLICY.max_s * (1 + POLICY.jitter)
        assert d.attempt >= 1
        if d.escalate:
            assert math.isclose(d.delay_s, POLICY.max_s * (1 + POLICY.jitter * (2 * rand - 1)))
