"""The token bucket and the abuse rule, with time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rate_limit import ABUSE_WINDOW_S, RateLimiter, TokenBucket, Verdict


@pytest.mark.parametrize(
    ("rate", "burst", "times", "expected"),
    [
        # starts full: `burst` commands at once pass, the next is refused
        (1.0, 3, [0, 0, 0, 0], [True, True, True, False]),
        # one token a second: after a refusal, one second later one passes
        (1.0, 1, [0, 0, 0.5, 1.0, 1.0], [True, False, False, True, False]),
        # refill is capped at burst however long the pause
        (10.0, 2, [0, 0, 100, 100, 100], [True, True, True, True, False]),
        # fractional tokens add up: 4/s -> one every 0.25 s
        (4.0, 1, [0, 0.125, 0.25, 0.375, 0.5], [True, False, True, False, True]),
        # time going backwards adds no tokens
        (1.0, 1, [5, 4, 3, 5.5, 6], [True, False, False, False, True]),
        # a steady rate at the limit always passes
        (2.0, 1, [0, 0.5, 1.0, 1.5, 2.0], [True, True, True, True, True]),
    ],
)
def test_token_bucket_table(rate: float, burst: int, times: list[float],
                            expected: list[bool]) -> None:
    bucket = TokenBucket(rate, burst)
    assert [bucket.try_take(t) for t in times] == expected


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_bad_parameters_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@given(rate=st.floats(0.1, 1000), burst=st.integers(1, 100),
       steps=st.lists(st.floats(0, 10), max_size=200))
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int,
                                                       steps: list[float]) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    taken = 0
    for step in steps:
        now += step
        taken += bucket.try_take(now)
        assert taken <= burst + rate * now + 1e-6
        assert 0 <= bucket.tokens <= burst


def test_limiter_refuses_then_closes_after_more_than_max_refusals_in_the_window() -> None:
    lim = RateLimiter(1.0, 2, max_refusals=3)
    verdicts = [lim.check(0.0) for _ in range(6)]
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.REFUSE, Verdict.REFUSE,
                        Verdict.REFUSE, Verdict.CLOSE]


def test_refusals_spread_wider_than_the_window_never_close() -> None:
    lim = RateLimiter(0.001, 1, max_refusals=2)
    assert lim.check(0.0) is Verdict.ALLOW
    t = 0.0
    for _ in range(50):
        t += ABUSE_WINDOW_S / 2 + 0.01  # at most two refusals in any window
        assert lim.check(t) is Verdict.REFUSE


def test_max_refusals_defaults_to_burst() -> None:
    lim = RateLimiter(1.0, 4)
    assert lim.max_refusals == 4
    verdicts = [lim.check(0.0) for _ in range(9)]
    assert verdicts.count(Verdict.ALLOW) == 4
    assert verdicts[4:8] == [Verdict.REFUSE] * 4 and verdicts[8] is Verdict.CLOSE


def test_allowed_commands_do_not_reset_the_refusal_window() -> None:
    lim = RateLimiter(1.0, 1, max_refusals=2)
    assert [lim.check(0.0), lim.check(0.0), lim.check(0.5)] == [
        Verdict.ALLOW, Verdict.REFUSE, Verdict.REFUSE]
    assert lim.check(1.0) is Verdict.ALLOW
    assert lim.check(1.0) is Verdict.CLOSE  # third refusal within 10 s


def test_keyed_buckets_are_independent_and_bounded() -> None:
    from engine.rate_limit import KeyedBuckets

    kb = KeyedBuckets(rate_per_s=1.0, burst=2, max_keys=2)
    assert kb.try_take("a", 0.0) and kb.try_take("a", 0.0)
    assert not kb.try_take("a", 0.0) and not kb.has_token("a", 0.5)
    assert kb.has_token("a", 1.0)  # refilled; has_token takes nothing
    assert kb.try_take("b", 0.0)
    assert kb.try_take("c", 0.0)  # a third key forgets the least recently seen ("a")
    assert len(kb) == 2 and kb.has_token("a", 0.0)
    assert kb.try_take("b", 0.0) and not kb.try_take("b", 0.0)
