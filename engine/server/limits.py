"""Connection and abuse limits of the edge.

Edge module, thread-safe (the I/O thread admits and releases; actors check
account budgets).

* :class:`ConnectionLimits`: live WebSocket connections in total and per IP;
  a handshake over ``server.max_connections`` or
  ``server.max_connections_per_ip`` is refused with HTTP 503 before the
  upgrade.
* :class:`AuthFailures`: failed token handshakes per IP
  (``server.auth_failure_rate_per_s`` / ``auth_failure_burst``); past the
  budget a handshake with a token from that address is refused 429 before
  its token is even compared, so guessing is slowed to the refill rate.
* :class:`SharedBudgets`: one command budget per account
  (``server.account_rate_limit_per_s``), shared by all its connections.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from engine.rate_limit import KeyedBuckets
from engine.server.http import Refusal
from engine.stats import counter

__all__ = ["AuthFailures", "AuthStatistics", "ConnectionLimits", "SharedBudgets", "peer_ip"]


def peer_ip(peer: str) -> str:
    """The address part of ``"host:port"`` (IPv6 hosts contain colons too)."""
    host, sep, _port = peer.rpartition(":")
    return host if sep else peer


class ConnectionLimits:
    """Counts live connections; :meth:`admit` raises ``Refusal(503)`` when full."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self._lock = threading.Lock()
        self._by_ip: Counter[str] = Counter()
        self._total = 0
        #: Handshakes refused because of a limit (for /metrics).
        self.refused = 0

    def admit(self, ip: str) -> None:
        """Reserve a slot for one connection from ``ip`` (pair with :meth:`release`)."""
        with self._lock:
            if self._total >= self.max_total:
                self.refused += 1
                raise Refusal(503, "too many connections")
            if self._by_ip[ip] >= self.max_per_ip:
                self.refused += 1
                raise Refusal(503, "too many connections from this address")
            self._total += 1
            self._by_ip[ip] += 1

    def release(self, ip: str) -> None:
        with self._lock:
            if self._by_ip[ip] <= 0:
                return
            self._total -= 1
            self._by_ip[ip] -= 1
            if not self._by_ip[ip]:
                del self._by_ip[ip]

    @property
    def live(self) -> int:
        return self._total

    def live_from(self, ip: str) -> int:
        with self._lock:
            return self._by_ip.get(ip, 0)


@dataclass(frozen=True, slots=True)
class AuthStatistics:
    """Token handshakes that failed (``/metrics``: ``tickdesk_auth_*``)."""

    failures: int = counter("Handshakes refused for a wrong ?token= (HTTP 401).")
    refused: int = counter("Token handshakes refused 429: their address failed too often.")


class AuthFailures:
    """Failed token handshakes per IP (see the module docstring)."""

    def __init__(self, rate_per_s: float, burst: int, max_ips: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._buckets = KeyedBuckets(rate_per_s, burst, max_ips)
        #: Failed token handshakes since start (tickdesk_auth_failures_total).
        self.failures = 0
        #: Token handshakes refused 429 because their address failed too often.
        self.refused = 0

    def statistics(self) -> AuthStatistics:
        return AuthStatistics(self.failures, self.refused)

    def check(self, ip: str, now_s: float) -> None:
        """Raise ``Refusal(429)`` while ``ip`` has no failure budget left."""
        with self._lock:
            if not self._buckets.has_token(ip, now_s):
                self.refused += 1
                raise Refusal(429, "too many failed token attempts; try again later")

    def failed(self, ip: str, now_s: float) -> None:
        with self._lock:
            self.failures += 1
            self._buckets.try_take(ip, now_s)


class SharedBudgets:
    """Token buckets by key, shared by threads (one lock)."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._buckets = KeyedBuckets(rate_per_s, burst, max_keys)

    def try_take(self, key: str, now_s: float) -> bool:
        with self._lock:
            return self._buckets.try_take(key, now_s)
