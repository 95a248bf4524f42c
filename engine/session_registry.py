"""Remembered sessions: each connection's market subscriptions, kept for a while
after it closes so that ``resume {session}`` can restore them.

Pure core (no threads, no clock): ``now`` is passed in (monotonic seconds) and
the caller holds any lock (:class:`engine.server.sessions.LocalSessions`, one
process). A session is named by the ``session`` of its ``CONNECTED`` (the
caller makes the id: 128 random bits). It records:

* the account the connection acts on (``None``: anonymous); it follows
  ``auth``, and :meth:`SessionRegistry.restore` gives a session's
  subscriptions only to a connection of the same account (or to an
  anonymous one for an anonymous session), so an id never restores another
  account's session;
* its ``subscribe_ticker`` symbols and its ``subscribe_book`` symbols, in the
  order they were subscribed.

Bounds and overflow policies:

* a closed session is forgotten ``keep_s`` after it closed (checked on every
  call: nothing runs in between);
* at most ``cap`` sessions (open and closed) are remembered: one more drops the
  oldest closed session first (the one that closed first), and only when none
  is closed the oldest open one (which then cannot be restored; its later
  subscription changes are ignored);
* at most ``max_symbols`` ticker and ``max_symbols`` book symbols a session:
  more are not remembered (not restored), the subscriptions themselves work.

A restore copies: the old session stays as it was until it expires (its
connection may not even have noticed it is gone yet), and the new connection
has its own session, which the restored subscriptions are recorded in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["DEFAULT_CAP", "MAX_SYMBOLS", "SessionRegistry", "Subscriptions"]

#: Sessions remembered at most (open and closed together).
DEFAULT_CAP = 10_000
#: Ticker symbols (and, apart, book symbols) remembered per session at most.
MAX_SYMBOLS = 1024


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """A session's market subscriptions: ``subscribe_ticker`` symbols and
    ``subscribe_book`` symbols, each in the order they were subscribed."""

    symbols: tuple[str, ...] = ()
    books: tuple[str, ...] = ()


@dataclass(slots=True)
class _Session:
    account: str | None
    symbols: dict[str, None] = field(default_factory=dict)  # ordered sets
    books: dict[str, None] = field(default_factory=dict)
    closed_at: float | None = None


class SessionRegistry:
    """The sessions of one process (see the module docstring)."""

    def __init__(self, keep_s: float, cap: int = DEFAULT_CAP,
                 max_symbols: int = MAX_SYMBOLS) -> None:
        if keep_s < 0:
            raise ValueError("keep_s must be >= 0")
        if cap < 1 or max_symbols < 1:
            raise ValueError("cap and max_symbols must be >= 1")
        self.keep_s = keep_s
        self.cap = cap
        self.max_symbols = max_symbols
        self._open: OrderedDict[str, _Session] = OrderedDict()    # by opening time
        self._closed: OrderedDict[str, _Session] = OrderedDict()  # by closing time

    def __len__(self) -> int:
        return len(self._open) + len(self._closed)

    def open(self, session: str, account: str | None, now: float) -> None:
        """A new connection's session (an id already known is replaced)."""
        self._expire(now)
        self._closed.pop(session, None)
        self._open.pop(session, None)
        self._open[session] = _Session(account)
        while len(self) > self.cap:
            victims = self._closed if self._closed else self._open
            victims.popitem(last=False)

    def set_account(self, session: str, account: str | None) -> None:
        """The session's connection now acts on ``account`` (``auth``)."""
        rec = self._open.get(session)
        if rec is not None:
            rec.account = account

    def subscribe(self, session: str, symbol: str, book: bool = False) -> bool:
        """Remember a subscription; False when not (unknown or closed session,
        already there, or the session is at ``max_symbols``)."""
        rec = self._open.get(session)
        if rec is None:
            return False
        table = rec.books if book else rec.symbols
        if symbol in table or len(table) >= self.max_symbols:
            return False
        table[symbol] = None
        return True

    def unsubscribe(self, session: str, symbol: str, book: bool = False) -> bool:
        rec = self._open.get(session)
        if rec is None:
            return False
        table = rec.books if book else rec.symbols
        return table.pop(symbol, False) is None

    def close(self, session: str, now: float) -> None:
        """The session's connection closed: kept ``keep_s`` from ``now``."""
        rec = self._open.pop(session, None)
        if rec is None:
            return
        rec.closed_at = now
        self._closed[session] = rec
        self._expire(now)

    def restore(self, session: str, account: str | None, now: float) -> Subscriptions | None:
        """What a connection acting on ``account`` restores from ``session``:
        None when the session is unknown, expired, or of another account."""
        self._expire(now)
        rec = self._open.get(session) or self._closed.get(session)
        if rec is None or rec.account != account:
            return None
        return Subscriptions(tuple(rec.symbols), tuple(rec.books))

    def _expire(self, now: float) -> None:
        closed = self._closed
        while closed:
            rec = next(iter(closed.values()))
            if rec.closed_at is None or now - rec.closed_at < self.keep_s:
                return
            closed.popitem(last=False)
