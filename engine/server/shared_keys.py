"""The listen-key registry every thread of a process shares, and its interface.

Edge module. :class:`ListenKeyStore` is the interface the REST API (which
creates keys and keeps them alive) and the WebSocket side (which asks whose a
key is) use; two implementations keep it:

* :class:`SharedListenKeys` (role ``all``): the pure
  :class:`~engine.binance.listen_keys.ListenKeys` behind a lock, in memory;
* :class:`~engine.server.redis_listen_keys.RedisListenKeys` (role
  ``gateway``): the same rules with the keys in Redis, so a key made on one
  gateway is valid on every other.

Both take the time from the caller, as the pure registry does. A store that
cannot be reached raises :class:`ListenKeysUnavailable` (nothing changed).
"""

from __future__ import annotations

import threading
from typing import Protocol

from engine.binance.listen_keys import DEFAULT_MAX_KEYS, VALIDITY_MS, ListenKeys
from engine.errors import TickdeskError

__all__ = ["ListenKeyStore", "ListenKeysUnavailable", "SharedListenKeys"]


class ListenKeysUnavailable(TickdeskError):
    """The shared listen-key store (Redis) could not be reached; nothing changed."""


class ListenKeyStore(Protocol):
    """The rules of :mod:`engine.binance.listen_keys`, callable from any thread.
    Every method may raise :class:`ListenKeysUnavailable`; ``create`` raises
    :class:`~engine.binance.listen_keys.ListenKeyLimit` when every slot is live."""

    def __len__(self) -> int: ...

    def create(self, account: str, now_ms: int, random_key: str) -> str:
        """The account's live key (extended), else ``random_key`` registered for it."""
        ...

    def keepalive(self, key: str, now_ms: int) -> bool:
        """Extend a live key; False when it is unknown or expired."""
        ...

    def close(self, key: str) -> bool:
        """Forget ``key``; False when it was not known."""
        ...

    def account(self, key: str, now_ms: int) -> str | None:
        """The account of a live key, else None."""
        ...

    def owner_of(self, key: str) -> str | None:
        """The account a known key (live, or expired and not yet dropped) was made for."""
        ...


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
