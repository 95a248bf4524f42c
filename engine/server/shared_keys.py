"""The engine's one listen-key registry, shared by every thread.

Edge module: :class:`SharedListenKeys` is :class:`~engine.binance.listen_keys.ListenKeys`
behind a lock (the REST workers create and keep keys alive; the WebSocket
side asks whose a key is). Same methods, same answers; it takes the time from
the caller, as the pure registry does.
"""

from __future__ import annotations

import threading

from engine.binance.listen_keys import DEFAULT_MAX_KEYS, VALIDITY_MS, ListenKeys

__all__ = ["SharedListenKeys"]


class SharedListenKeys:
    """Thread-safe :class:`ListenKeys` (any thread)."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, validity_ms: int = VALIDITY_MS) -> None:
        self._lock = threading.Lock()
        self._keys = ListenKeys(max_keys, validity_ms)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def create(self, account: str, now_ms: int, random_key: str) -> str:
        with self._lock:
            return self._keys.create(account, now_ms, random_key)

    def keepalive(self, key: str, now_ms: int) -> bool:
        with self._lock:
            return self._keys.keepalive(key, now_ms)

    def close(self, key: str) -> bool:
        with self._lock:
            return self._keys.close(key)

    def account(self, key: str, now_ms: int) -> str | None:
        with self._lock:
            return self._keys.account(key, now_ms)

    def owner_of(self, key: str) -> str | None:
        with self._lock:
            return self._keys.owner_of(key)
