"""Request weight per IP address and minute, as Binance counts it.

Pure core; the caller holds it behind a lock and passes the time. Binance
counts weight in fixed windows of one minute (``X-MBX-USED-WEIGHT-1M`` is the
weight used in the current minute, this request included). A request that
would pass the budget is refused (HTTP 429, -1003, ``Retry-After`` = seconds
to the next minute) and not counted.

Bounded: at most ``max_ips`` addresses are tracked; beyond, the windows of a
past minute are dropped first, then the least recently seen address.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["MINUTE_MS", "WeightBook", "WeightVerdict"]

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class WeightVerdict:
    allowed: bool
    #: Weight used in this minute (this request included when allowed).
    used: int
    #: Whole seconds until the window resets (for ``Retry-After``).
    retry_after_s: int


class WeightBook:
    def __init__(self, limit_per_minute: int, max_ips: int = 4096) -> None:
        if limit_per_minute < 1 or max_ips < 1:
            raise ValueError("limit_per_minute and max_ips must be >= 1")
        self.limit = limit_per_minute
        self._max = max_ips
        self._windows: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def take(self, ip: str, weight: int, now_ms: int) -> WeightVerdict:
        minute = now_ms // MINUTE_MS
        start, used = self._windows.get(ip, (minute, 0))
        if start != minute:
            used = 0
        retry = max(1, -(-((minute + 1) * MINUTE_MS - now_ms) // 1000))
        if used + weight > self.limit:
            self._remember(ip, minute, used)
            return WeightVerdict(False, used, retry)
        used += weight
        self._remember(ip, minute, used)
        return WeightVerdict(True, used, retry)

    def _remember(self, ip: str, minute: int, used: int) -> None:
        self._windows[ip] = (minute, used)
        self._windows.move_to_end(ip)
        if len(self._windows) > self._max:
            stale = [k for k, (m, _u) in self._windows.items() if m != minute]
            for k in stale[: len(self._windows) - self._max]:
                del self._windows[k]
            while len(self._windows) > self._max:
                self._windows.popitem(last=False)
