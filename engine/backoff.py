"""Restart backoff: exponential delays with jitter, reset, and escalation.

Pure core: no threads, sockets, clocks or pykka. Time comes in as ``now_s``
(seconds on any monotonic clock) and randomness as ``rand`` in ``[0, 1)``;
decisions come out. The Supervisor (its actor thread) owns one
:class:`Backoff` per child and is the only caller.

Rules, for a policy ``(min_s, max_s, factor, jitter, reset_after_s,
max_restarts, restart_window_s)``:

* The *n*-th consecutive failure (``n`` counted from 0) waits
  ``base = min(max_s, min_s * factor ** n)``, jittered to
  ``base * (1 + jitter * (2 * rand - 1))``: uniformly within ``± jitter``
  (a fraction) of the base.
* ``n`` goes back to 0 once the child has run ``reset_after_s`` since its last
  start (:meth:`Backoff.on_started`). This is checked by :meth:`Backoff.on_stable`
  (call it from a timer) and again at the next failure, so a forgotten
  ``on_stable`` does not keep a healthy child on long delays.
* If the failures within the last ``restart_window_s`` (this one included)
  number more than ``max_restarts``, the decision has ``escalate=True`` (the
  child, e.g. the feed, is DOWN) and its base delay is ``max_s``: retries go
  on, slowly, and the escalation clears by itself once failures thin out.
* A ``now_s`` smaller than the last one seen (a broken clock) is treated as
  equal to it; no delay is ever negative.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy", "Decision"]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Backoff parameters; invalid values raise ``ValueError`` naming the field."""

    min_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    reset_after_s: float = 60.0
    max_restarts: int = 10
    restart_window_s: float = 300.0

    def __post_init__(self) -> None:
        def finite(name: str, value: float) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")

        for name in ("min_s", "max_s", "factor", "jitter", "reset_after_s", "restart_window_s"):
            finite(name, getattr(self, name))
        if self.min_s <= 0:
            raise ValueError(f"min_s must be > 0, got {self.min_s!r}")
        if self.max_s < self.min_s:
            raise ValueError(f"max_s must be >= min_s, got {self.max_s!r} < {self.min_s!r}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter!r}")
        if self.reset_after_s <= 0:
            raise ValueError(f"reset_after_s must be > 0, got {self.reset_after_s!r}")
        if (
            isinstance(self.max_restarts, bool)
            or not isinstance(self.max_restarts, int)
            or self.max_restarts < 0
        ):
            raise ValueError(f"max_restarts must be an int >= 0, got {self.max_restarts!r}")
        if self.restart_window_s <= 0:
            raise ValueError(f"restart_window_s must be > 0, got {self.restart_window_s!r}")

    def base_delay(self, n: int) -> float:
        """The un-jittered delay of the ``n``-th consecutive failure (0-based)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n!r}")
        if self.factor == 1 or self.min_s >= self.max_s:
            return self.min_s
        # Smallest n at which min_s * factor**n reaches max_s; avoids overflow.
        cap = math.log(self.max_s / self.min_s) / math.log(self.factor)
        if n >= cap:
            return self.max_s
        return min(self.max_s, self.min_s * self.factor**n)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a failure: wait ``delay_s``, then restart.

    ``attempt`` is the 1-based number of this failure in the current run of
    consecutive failures; ``escalate`` says the restart budget is exhausted
    (report the child DOWN; restarting continues at ``max_s``).
    """

    delay_s: float
    attempt: int
    escalate: bool


class Backoff:
    """The backoff state of one supervised child (see the module docstring)."""

    __slots__ = ("_failures", "_last_now", "_n", "_started_at", "escalated", "policy")

    def __init__(self, policy: BackoffPolicy | None = None) -> None:
        self.policy = policy if policy is not None else BackoffPolicy()
        self._n = 0
        self._started_at: float | None = None
        # Only the newest max_restarts + 1 failures can decide escalation.
        self._failures: deque[float] = deque(maxlen=self.policy.max_restarts + 1)
        self._last_now = -math.inf
        self.escalated = False
        """True from an escalating failure until a stable run or a calm failure."""

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last reset (the exponent of the next delay)."""
        return self._n

    def _now(self, now_s: float) -> float:
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, got {now_s!r}")
        now_s = max(now_s, self._last_now)
        self._last_now = now_s
        return now_s

    def _maybe_reset(self, now: float) -> bool:
        started = self._started_at
        if started is not None and now - started >= self.policy.reset_after_s:
            self._n = 0
            self.escalated = False
            return True
        return False

    def on_started(self, now_s: float) -> None:
        """The child (re)started at ``now_s``; stability is measured from here."""
        self._started_at = self._now(now_s)

    def on_stable(self, now_s: float) -> bool:
        """Check for a stable run; returns True if the backoff was reset."""
        return self._maybe_reset(self._now(now_s))

    def on_failure(self, now_s: float, rand: float) -> Decision:
        """The child failed at ``now_s``; ``rand`` is uniform in ``[0, 1)``."""
        if not 0 <= rand < 1:
            raise ValueError(f"rand must be in [0, 1), got {rand!r}")
        now = self._now(now_s)
        policy = self.policy
        self._maybe_reset(now)
        self._started_at = None  # not running until on_started again
        failures = self._failures
        failures.append(now)
        horizon = now - policy.restart_window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        escalate = len(failures) > policy.max_restarts
        self.escalated = escalate
        base = policy.max_s if escalate else policy.base_delay(self._n)
        self._n += 1
        delay = base * (1 + policy.jitter * (2 * rand - 1))
        return Decision(delay_s=max(0.0, delay), attempt=self._n, escalate=escalate)
