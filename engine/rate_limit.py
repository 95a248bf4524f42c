"""Per-client command rate limiting: a token bucket plus an abuse window.

Pure core: no clock of its own; every call takes the current monotonic time
in seconds, so the rules are tested with plain numbers.

* :class:`TokenBucket` holds up to ``burst`` tokens and gains ``rate_per_s``
  tokens a second. A command takes one token; without a token it is refused
  (the client gets ``ERROR RATE_LIMITED`` and the command is not executed).
* :class:`RateLimiter` adds the abuse rule: a client that is refused more than
  ``max_refusals`` times within ``window_s`` seconds is to be closed (1008).
  It remembers at most ``max_refusals + 1`` refusal times.
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["ABUSE_WINDOW_S", "RateLimiter", "TokenBucket", "Verdict"]

#: The window of the abuse rule (seconds).
ABUSE_WINDOW_S = 10.0


class TokenBucket:
    """A token bucket that starts full (see the module docstring)."""

    __slots__ = ("_last", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: int) -> None:
        if not rate_per_s > 0:
            raise ValueError("rate_per_s must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    @property
    def tokens(self) -> float:
        """Tokens left after the last call (not refilled up to now)."""
        return self._tokens

    def try_take(self, now_s: float) -> bool:
        """Take one token at time ``now_s``; False when none is left.

        Time going backwards (it should not, with a monotonic clock) adds nothing.
        """
        if self._last is not None and now_s > self._last:
            self._tokens = min(float(self.burst),
                               self._tokens + (now_s - self._last) * self.rate_per_s)
        if self._last is None or now_s > self._last:
            self._last = now_s
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Verdict(enum.Enum):
    ALLOW = "allow"  #: execute the command
    REFUSE = "refuse"  #: answer ERROR RATE_LIMITED, do not execute
    CLOSE = "close"  #: abusive: close the connection with 1008


class RateLimiter:
    """A :class:`TokenBucket` plus the abuse rule (see the module docstring)."""

    __slots__ = ("_refusals", "bucket", "max_refusals", "window_s")

    def __init__(self, rate_per_s: float, burst: int, *, max_refusals: int | None = None,
                 window_s: float = ABUSE_WINDOW_S) -> None:
        self.bucket = TokenBucket(rate_per_s, burst)
        self.max_refusals = burst if max_refusals is None else max_refusals
        self.window_s = window_s
        self._refusals: deque[float] = deque(maxlen=self.max_refusals + 1)

    def check(self, now_s: float) -> Verdict:
        """The verdict on one command arriving at ``now_s``."""
        if self.bucket.try_take(now_s):
            return Verdict.ALLOW
        self._refusals.append(now_s)
        if (len(self._refusals) > self.max_refusals
                and now_s - self._refusals[0] <= self.window_s):
            return Verdict.CLOSE
        return Verdict.REFUSE
