"""Listen keys of the user data stream: which account a key belongs to, until when.

Pure core; not thread-safe by itself (the Engine holds it behind a lock:
:class:`engine.server.shared_keys.SharedListenKeys`). Binance's rules:

* ``create`` returns the account's active key if it has one (and extends it),
  else registers the caller's fresh random key;
* a key is valid for :data:`VALIDITY_MS` (60 min) after its creation or last
  ``keepalive``; an expired key is unknown (``account`` → ``None``,
  ``keepalive`` → ``False``);
* ``close`` forgets a key at once.

Bounded: at most ``max_keys`` keys (one per account is what ``create`` makes,
so the bound only matters with many accounts). When full, expired keys are
dropped first; if all are live, :class:`ListenKeyLimit` is raised and nothing
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import TickdeskError

__all__ = ["DEFAULT_MAX_KEYS", "VALIDITY_MS", "ListenKeyLimit", "ListenKeys"]

#: A key lives this long after its creation or last keepalive (Binance: 60 minutes).
VALIDITY_MS = 60 * 60 * 1000
DEFAULT_MAX_KEYS = 1024


class ListenKeyLimit(TickdeskError):
    """Every slot holds a live key: no new key now."""


@dataclass(slots=True)
class _Entry:
    account: str
    expires_ms: int


class ListenKeys:
    """See the module docstring."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, validity_ms: int = VALIDITY_MS) -> None:
        if max_keys < 1 or validity_ms < 1:
            raise ValueError("max_keys and validity_ms must be >= 1")
        self._max = max_keys
        self._validity = validity_ms
        self._keys: dict[str, _Entry] = {}
        self._by_account: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def create(self, account: str, now_ms: int, random_key: str) -> str:
        """The account's active key (extended), else ``random_key`` registered for it."""
        current = self._by_account.get(account)
        if current is not None:
            entry = self._keys[current]
            if entry.expires_ms > now_ms:
                entry.expires_ms = now_ms + self._validity
                return current
            self._forget(current)
        if not random_key or random_key in self._keys:
            raise ValueError("random_key must be a fresh, non-empty key")
        if len(self._keys) >= self._max:
            self._purge(now_ms)
            if len(self._keys) >= self._max:
                raise ListenKeyLimit(f"{self._max} listen keys are live; close one first")
        self._keys[random_key] = _Entry(account, now_ms + self._validity)
        self._by_account[account] = random_key
        return random_key

    def keepalive(self, key: str, now_ms: int) -> bool:
        """Extend a live key by :data:`VALIDITY_MS` from now; False if unknown or expired."""
        entry = self._live(key, now_ms)
        if entry is None:
            return False
        entry.expires_ms = now_ms + self._validity
        return True

    def close(self, key: str) -> bool:
        """Forget ``key``; False if it was not known."""
        if key not in self._keys:
            return False
        self._forget(key)
        return True

    def account(self, key: str, now_ms: int) -> str | None:
        """The account of a live key, else None."""
        entry = self._live(key, now_ms)
        return None if entry is None else entry.account

    def owner_of(self, key: str) -> str | None:
        """The account a known key (live or expired, not yet dropped) was made for."""
        entry = self._keys.get(key)
        return None if entry is None else entry.account

    def _live(self, key: str, now_ms: int) -> _Entry | None:
        entry = self._keys.get(key)
        if entry is None:
            return None
        if entry.expires_ms <= now_ms:
            self._forget(key)
            return None
        return entry

    def _forget(self, key: str) -> None:
        entry = self._keys.pop(key)
        if self._by_account.get(entry.account) == key:
            del self._by_account[entry.account]

    def _purge(self, now_ms: int) -> None:
        for key in [k for k, e in self._keys.items() if e.expires_ms <= now_ms]:
            self._forget(key)
