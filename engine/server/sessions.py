"""Where sessions are remembered: the seam between the ConnectionActors and the
record of each session's market subscriptions (``resume {session}``).

Edge module, called from many threads: the I/O thread opens a session when it
announces a connection (:func:`actors.connection.announce`), each
ConnectionActor records its subscriptions, its account and its close. Two
implementations keep one contract:

* :class:`LocalSessions` (one process): the pure
  :class:`~engine.session_registry.SessionRegistry` under a lock, in memory;
* :class:`~engine.server.redis_sessions.RedisSessions` (a gateway): one small
  Redis hash per session with a TTL, so that any gateway can restore it.

The contract (``conn_id`` names a connection of this process):

* ``open(conn_id, account) -> session``: a new, unguessable session id
  (128 random bits, hex; :func:`new_session_id`) for CONNECTED;
* ``set_account(conn_id, account)``: the connection's account changed (``auth``);
* ``subscribed`` / ``unsubscribed(conn_id, symbol, book)``: written when the
  subscription changes, never per tick;
* ``closed(conn_id)``: the connection is gone; its session is kept
  ``server.session_keep_s`` from now;
* ``restore(session, account) -> Subscriptions | None``: the session's
  subscriptions for a connection acting on ``account``; None when unknown,
  expired or of another account (or anonymous-ness). Never raises.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Protocol

from engine.session_registry import DEFAULT_CAP, MAX_SYMBOLS, SessionRegistry, Subscriptions

__all__ = ["LocalSessions", "SessionKeeper", "new_session_id"]


def new_session_id() -> str:
    """128 random bits, as 32 lower-case hex digits."""
    return secrets.token_hex(16)


class SessionKeeper(Protocol):
    """See the module docstring."""

    def open(self, conn_id: int, account: str | None) -> str: ...

    def set_account(self, conn_id: int, account: str | None) -> None: ...

    def subscribed(self, conn_id: int, symbol: str, book: bool) -> None: ...

    def unsubscribed(self, conn_id: int, symbol: str, book: bool) -> None: ...

    def closed(self, conn_id: int) -> None: ...

    def restore(self, session: str, account: str | None) -> Subscriptions | None: ...


class LocalSessions:
    """The sessions of one process, in memory (bounds in
    :mod:`engine.session_registry`: at most ``cap`` sessions, oldest closed
    first; ``keep_s`` after a close)."""

    def __init__(self, keep_s: float, monotonic: Callable[[], float], *,
                 cap: int = DEFAULT_CAP, max_symbols: int = MAX_SYMBOLS) -> None:
        self._reg = SessionRegistry(keep_s, cap, max_symbols)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._of: dict[int, str] = {}  # open connection -> its session

    def __len__(self) -> int:
        with self._lock:
            return len(self._reg)

    def open(self, conn_id: int, account: str | None) -> str:
        session = new_session_id()
        with self._lock:
            self._reg.open(session, account, self._monotonic())
            self._of[conn_id] = session
        return session

    def set_account(self, conn_id: int, account: str | None) -> None:
        with self._lock:
            session = self._of.get(conn_id)
            if session is not None:
                self._reg.set_account(session, account)

    def subscribed(self, conn_id: int, symbol: str, book: bool) -> None:
        with self._lock:
            session = self._of.get(conn_id)
            if session is not None:
                self._reg.subscribe(session, symbol, book)

    def unsubscribed(self, conn_id: int, symbol: str, book: bool) -> None:
        with self._lock:
            session = self._of.get(conn_id)
            if session is not None:
                self._reg.unsubscribe(session, symbol, book)

    def closed(self, conn_id: int) -> None:
        with self._lock:
            session = self._of.pop(conn_id, None)
            if session is not None:
                self._reg.close(session, self._monotonic())

    def restore(self, session: str, account: str | None) -> Subscriptions | None:
        with self._lock:
            return self._reg.restore(session, account, self._monotonic())
