"""Connection limits: how many live WebSocket connections, in total and per IP.

Edge module, shared by the HTTP handler threads (which admit) and the reader
threads (which release when a transport closes). A handshake over
``server.max_connections`` or ``server.max_connections_per_ip`` is refused
with HTTP 503 before the upgrade, so a refused client costs no thread beyond
its short-lived handler.
"""

from __future__ import annotations

import threading
from collections import Counter

from engine.server.http import Refusal

__all__ = ["ConnectionLimits", "peer_ip"]


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
