"""Sessions remembered in Redis, so that a client that reconnects to any
gateway gets its market subscriptions back (``resume {session}``).

Edge module; the :class:`~engine.server.sessions.SessionKeeper` contract for a
gateway. One hash per session, ``P:session:ID``:

=============  ==================================================
``a``          the account, as JSON (``null``: anonymous)
``t:SYMBOL``   a ``subscribe_ticker`` subscription (the value orders them)
``b:SYMBOL``   a ``subscribe_book`` subscription
=============  ==================================================

It is written when a subscription (or the account) changes, never per tick:
one pipelined ``HSET``/``HDEL`` + ``PEXPIRE``. Its TTL bounds it whatever
happens to the gateway: an open session's key lives ``keep_s + refresh_s``
and a thread of the gateway renews the keys of its open sessions every
``refresh_s`` (one pipeline for all of them); a closed session's key is set
to expire ``keep_s`` after the close. A gateway killed with ``kill -9`` renews
nothing more: its sessions are kept between ``keep_s`` and
``keep_s + refresh_s`` after the kill. At most ``max_symbols`` ticker and book
symbols are remembered per session (more are not restored).

A Redis error is logged and counted, never raised into a ConnectionActor: the
subscription itself works, only its restore may be missing (``restore``
answers None: ``restored: false``, the client subscribes again).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from engine.server.sessions import new_session_id
from engine.session_registry import MAX_SYMBOLS, Subscriptions

__all__ = ["RedisSessions"]

log = logging.getLogger("tickdesk.redis_sessions")


@dataclass(slots=True)
class _Open:
    """What this gateway knows of one of its open sessions (to bound it and
    to skip writes that change nothing)."""

    session: str
    symbols: set[str] = field(default_factory=set)
    books: set[str] = field(default_factory=set)


class RedisSessions:
    """See the module docstring. ``key(*parts)`` names a Redis key (the bus's
    prefix: :meth:`engine.server.redis_bus.RedisBus.key`)."""

    def __init__(self, client: redis.Redis, key: Callable[..., str], keep_s: float, *,
                 refresh_s: float | None = None, max_symbols: int = MAX_SYMBOLS) -> None:
        self._r = client
        self._key = key
        self.keep_s = keep_s
        self.refresh_s = (refresh_s if refresh_s is not None
                          else min(60.0, max(0.5, keep_s / 2)))
        self._max = max_symbols
        self._lock = threading.Lock()
        self._open: dict[int, _Open] = {}
        self._order = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def _name(self, session: str) -> str:
        return self._key("session", session)

    @property
    def _open_ms(self) -> int:
        return max(1, int((self.keep_s + self.refresh_s) * 1000))

    def _write(self, build: Callable[[Any], object]) -> None:
        try:
            pipe: Any = self._r.pipeline(transaction=False)
            build(pipe)
            pipe.execute()
        except redis.RedisError as exc:
            self.errors += 1
            if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                log.warning("redis sessions: write failed (%d so far): %s", self.errors, exc)

    # -- the contract ------------------------------------------------------------

    def open(self, conn_id: int, account: str | None) -> str:
        session = new_session_id()
        with self._lock:
            self._open[conn_id] = _Open(session)
        name, ttl = self._name(session), self._open_ms

        def build(p: Any) -> None:
            p.hset(name, "a", orjson.dumps(account))
            p.pexpire(name, ttl)
        self._write(build)
        return session

    def set_account(self, conn_id: int, account: str | None) -> None:
        with self._lock:
            got = self._open.get(conn_id)
        if got is not None:
            name = self._name(got.session)
            self._write(lambda p: p.hset(name, "a", orjson.dumps(account)))

    def subscribed(self, conn_id: int, symbol: str, book: bool) -> None:
        with self._lock:
            got = self._open.get(conn_id)
            if got is None:
                return
            table = got.books if book else got.symbols
            if symbol in table or len(table) >= self._max:
                return
            table.add(symbol)
            order = next(self._order)
        name, ttl = self._name(got.session), self._open_ms

        def build(p: Any) -> None:
            p.hset(name, ("b:" if book else "t:") + symbol, order)
            p.pexpire(name, ttl)
        self._write(build)

    def unsubscribed(self, conn_id: int, symbol: str, book: bool) -> None:
        with self._lock:
            got = self._open.get(conn_id)
            if got is None:
                return
            table = got.books if book else got.symbols
            if symbol not in table:
                return
            table.discard(symbol)
        name = self._name(got.session)
        self._write(lambda p: p.hdel(name, ("b:" if book else "t:") + symbol))

    def closed(self, conn_id: int) -> None:
        with self._lock:
            got = self._open.pop(conn_id, None)
        if got is not None:
            name, ttl = self._name(got.session), max(1, int(self.keep_s * 1000))
            self._write(lambda p: p.pexpire(name, ttl))

    def restore(self, session: str, account: str | None) -> Subscriptions | None:
        try:
            got: Any = self._r.hgetall(self._name(session))
        except redis.RedisError as exc:
            self.errors += 1
            log.warning("redis sessions: cannot read session: %s", exc)
            return None
        if not got or b"a" not in got:
            return None
        try:
            if orjson.loads(got[b"a"]) != account:
                return None
            symbols: list[tuple[int, str]] = []
            books: list[tuple[int, str]] = []
            for f, v in got.items():
                if f.startswith((b"t:", b"b:")):
                    (books if f.startswith(b"b:") else symbols).append((int(v), f[2:].decode()))
        except (ValueError, UnicodeDecodeError):  # not written by us: nothing to restore
            return None
        return Subscriptions(tuple(s for _, s in sorted(symbols)[:self._max]),
                             tuple(s for _, s in sorted(books)[:self._max]))

    # -- renewing the open sessions' keys ---------------------------------------------

    def start(self) -> None:
        """Start the thread that renews the keys of this gateway's open sessions."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                            name="redis-sessions")
            self._thread.start()

    def renew(self) -> None:
        """One renewal of every open session's TTL (one pipeline)."""
        with self._lock:
            names = [self._name(o.session) for o in self._open.values()]
        if names:
            ttl = self._open_ms

            def build(p: Any) -> None:
                for name in names:
                    p.pexpire(name, ttl)
            self._write(build)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.renew()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the renewing thread (within ``timeout``) and close the pool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._r.close()
