"""Fixed-deadline schedules: no drift, no catch-up storms.

Pure core. A periodic job anchored at ``anchor`` fires at ``anchor + k·period``.
When the job runs late (a busy machine, a paused process), the missed slots
are skipped, never replayed in a burst: the next deadline is the first slot
strictly after ``now``.
"""

from __future__ import annotations

import math

__all__ = ["next_deadline"]


def next_deadline(anchor: float, period: float, now: float) -> float:
    """The first ``anchor + k·period`` (k ≥ 1) strictly after ``now``."""
    if period <= 0:
        raise ValueError("period must be > 0")
    if now < anchor:
        return anchor + period
    k = math.floor((now - anchor) / period) + 1
    deadline = anchor + k * period
    if deadline <= now:  # float rounding at an exact multiple
        deadline += period
    return deadline
