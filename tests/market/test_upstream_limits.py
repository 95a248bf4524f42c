"""Binance upstream limits with explicit ``now`` values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.market.upstream_limits import (
    SlidingWindowLimiter,
    connection_attempt_limiter,
    control_message_limiter,
    next_rotation,
)


def test_control_messages_five_per_second() -> None:
    lim = control_message_limiter()
    assert [lim.try_acquire(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert lim.next_free(0.5) == 1.0
    assert not lim.try_acquire(0.999)
    # the five events at 0.0 all left the window at 1.0
    assert [lim.try_acquire(1.0) for _ in range(6)] == [True] * 5 + [False]
    assert lim.in_window(1.0) == 5
    assert lim.next_free(5.0) == 5.0


def test_control_messages_staggered() -> None:
    lim = control_message_limiter()
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        assert lim.try_acquire(t)
    assert lim.next_free(0.45) == 1.0
    assert lim.try_acquire(1.0)
    assert lim.next_free(1.0) == 1.1


def test_connection_attempts_300_per_5_minutes() -> None:
    lim = connection_attempt_limiter()
    for i in range(300):
        assert lim.try_acquire(i * 0.5)
    assert not lim.try_acquire(150.0)
    assert lim.next_free(150.0) == 300.0
    assert lim.try_acquire(300.0)


def test_clock_backwards_is_clamped() -> None:
    lim = SlidingWindowLimiter(1, 1.0)
    assert lim.try_acquire(10.0)
    assert not lim.try_acquire(0.0)  # treated as 10.0
    assert lim.next_free(0.0) == 11.0


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (1, 0.0), (1, float("inf")), (True, 1)])
def test_limiter_validation(limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit, window)


@given(st.lists(st.floats(0, 5), max_size=100), st.integers(1, 6), st.floats(0.1, 3))
def test_never_more_than_limit_in_any_window(steps: list[float], limit: int, w: float) -> None:
    lim = SlidingWindowLimiter(limit, w)
    now, accepted = 0.0, []
    for step in steps:
        now += step
        free = lim.next_free(now)
        ok = lim.try_acquire(now)
        assert ok == (free == now)
        if ok:
            accepted.append(now)
    for i, t in enumerate(accepted):
        assert sum(1 for u in accepted[i:] if u < t + w) <= limit


def test_next_rotation() -> None:
    assert next_rotation(1000.0) == 1000.0 + 86400 - 600
    assert next_rotation(0.0, lifetime_s=100.0, margin_s=10.0) == 90.0
    for kwargs in ({"margin_s": -1.0}, {"lifetime_s": 10.0, "margin_s": 10.0}, {"lifetime_s": 0}):
        with pytest.raises(ValueError):
            next_rotation(0.0, **kwargs)
