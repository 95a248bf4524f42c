"""Per-client command rate limiting: a token bucket plus an abuse window.

Pure core: no clock of its own; every call takes the current monotonic time
in seconds, so the rules are tested with plain numbers.

* :class:`TokenBucket` holds up to ``burst`` tokens and gains ``rate_per_s``
  tokens a second. A command takes one token; without a token it is refused
  (the client gets ``ERROR RATE_LIMITED`` and the command is not executed).
* :class:`RateLimiter` adds the abuse rule: a client that is refused more than
  ``max_refusals`` times within ``window_s`` seconds is to be closed (1008).
  It remembers at most ``max_refusals + 1`` refusal times.
* :class:`KeyedBuckets` keeps one bucket per key (an IP address, an account)
  for at most ``max_keys`` keys; a new key beyond that forgets the key seen
  least recently (overflow policy: that key starts again with a full bucket).
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["ABUSE_WINDOW_S", "KeyedBuckets", "RateLimiter", "TokenBucket", "Verdict"]

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

    def refill(self, now_s: float) -> float:
        """Add the tokens earned up to ``now_s``; returns the tokens available.

        Time going backwards (it should not, with a monotonic clock) adds nothing.
        """
        if self._last is not None and now_s > self._last:
            self._tokens = min(float(self.burst),
                               self._tokens + (now_s - self._last) * self.rate_per_s)
        if self._last is None or now_s > self._last:
            self._last = now_s
        return self._tokens

    def try_take(self, now_s: float) -> bool:
        """Take one token at time ``now_s``; False when none is left."""
        if self.refill(now_s) >= 1.0:
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


class KeyedBuckets:
    """One :class:`TokenBucket` per key, at most ``max_keys`` of them (see the module docstring)."""

    __slots__ = ("_buckets", "burst", "max_keys", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 10_000) -> None:
        TokenBucket(rate_per_s, burst)  # validates the parameters
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst)
            while len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = bucket  # most recently seen last
        return bucket

    def has_token(self, key: str, now_s: float) -> bool:
        """True when ``key`` could take a token at ``now_s`` (takes none)."""
        bucket = self._buckets.get(key)
        return bucket is None or bucket.refill(now_s) >= 1.0

    def try_take(self, key: str, now_s: float) -> bool:
        return self._bucket(key).try_take(now_s)

    def __len__(self) -> int:
        return len(self._buckets)
