"""Symbols added while the feed runs: which may be added, and the subscriptions
that wait for their first event.

Pure core, owned by the FeedActor (its thread); time is passed in (the
actor's ``Clock.monotonic()`` seconds). A client's ``subscribe_ticker`` of a
symbol the feed does not serve reaches :meth:`LiveSymbols.add`, which decides:

* already served (another client added it meanwhile): SUBSCRIBED at once, with
  the latest MARKET_UPDATE as a snapshot;
* already pending: the client waits with the others for the same outcome;
* refused at once: the source cannot add symbols (``UNKNOWN_SYMBOL``),
  :data:`MAX_PENDING_SYMBOLS` are pending already (``RATE_LIMITED``), or the
  source's symbol limit is reached (``UNKNOWN_SYMBOL``);
* otherwise :class:`Subscribe`: the actor sends SUBSCRIBE upstream and reports
  its request id (:meth:`LiveSymbols.requested`).

Once the SUBSCRIBE has actually left (it may wait for the upstream's rate
limit; :meth:`LiveSymbols.sent`) the symbol has ``timeout_s`` to produce its
first trade or ticker (:meth:`LiveSymbols.first_event`: SUBSCRIBED to every
waiter, and the symbol is served from then on). If the exchange refuses it
(:meth:`LiveSymbols.refused`) or the time passes (:meth:`LiveSymbols.expired`,
which also withdraws it with :class:`Unsubscribe`), every waiter gets
``UNKNOWN_SYMBOL``; so do the waiters of a symbol the actor gives up on before
subscribing it (:meth:`LiveSymbols.unavailable`: its exchange filters could
not be loaded). :meth:`LiveSymbols.abandon` answers them all when the
feed goes away. Every waiter gets exactly one answer.

Owners: every live symbol belongs to the account whose request added it.
Adding needs an account (the actor refuses anonymous connections before it
gets here), and one account may own at most ``max_per_account`` symbols,
pending or served (``RATE_LIMITED`` beyond). A client joining a symbol that
is already pending or served does not own it.

Removal: the actor reports each change of a live symbol's audience
(:meth:`LiveSymbols.interest`: its first subscriber came, its last one left).
``grace_s`` after the last one left, :meth:`LiveSymbols.expired` withdraws it
(:class:`Withdraw`: no longer served, UNSUBSCRIBE upstream, and its owner may
add another); a subscriber coming back within the grace keeps it. The actor
passes the symbols watched at that moment, so a subscriber whose report is
still on its way is not left with a withdrawn symbol.

Every method returns the decisions as values (:data:`Decision`); the actor
carries them out in order. Bound: at most :data:`MAX_PENDING_SYMBOLS` pending
symbols; waiters per symbol are bounded by the clients' own rate limits; live
symbols by ``max_per_account`` per account (and the source's stream limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from engine.protocol.enums import ErrorCode

__all__ = [
    "MAX_LIVE_PER_ACCOUNT",
    "MAX_PENDING_SYMBOLS",
    "Decision",
    "LiveSymbols",
    "Refused",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Withdraw",
]

#: At most this many live subscriptions may wait for their first event at once.
MAX_PENDING_SYMBOLS = 16

#: Default of ``feed.max_live_symbols_per_account``.
MAX_LIVE_PER_ACCOUNT = 8

W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class Subscribed(Generic[W]):
    """Answer SUBSCRIBED to ``waiters``. ``new``: the symbol has just produced its
    first event, so serve it from now on; otherwise it was served already and each
    waiter also gets the latest MARKET_UPDATE of it."""

    symbol: str
    waiters: tuple[W, ...]
    new: bool


@dataclass(frozen=True, slots=True)
class Refused(Generic[W]):
    """Answer ERROR ``code`` with ``message`` to ``waiters``."""

    symbol: str
    waiters: tuple[W, ...]
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Send SUBSCRIBE for ``symbol`` upstream, then report the request id to
    :meth:`LiveSymbols.requested`."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Send UNSUBSCRIBE for ``symbol`` upstream (its subscription is withdrawn)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Stop serving ``symbol`` (added live; nobody watched it for the grace period)
    and send UNSUBSCRIBE for it upstream."""

    symbol: str
    owner: str


Decision = Subscribed[W] | Refused[W] | Subscribe | Unsubscribe | Withdraw


@dataclass(slots=True)
class _Pending(Generic[W]):
    waiters: list[W]
    owner: str = ""
    request: int | None = None
    #: Set once the SUBSCRIBE has left: the first event must come before it.
    deadline: float | None = None


class LiveSymbols(Generic[W]):
    """The pending live subscriptions; ``W`` is whatever the actor answers (a client
    channel and request id)."""

    def __init__(self, timeout_s: float, max_pending: int = MAX_PENDING_SYMBOLS, *,
                 max_per_account: int | None = None, grace_s: float = 60.0) -> None:
        """``max_per_account`` None: no bound per account (the config's default is
        :data:`MAX_LIVE_PER_ACCOUNT`)."""
        if (timeout_s <= 0 or max_pending < 1 or grace_s < 0
                or (max_per_account is not None and max_per_account < 1)):
            raise ValueError("timeout_s must be > 0, max_pending and max_per_account >= 1, "
                             "grace_s >= 0")
        self._timeout_s = timeout_s
        self._max_pending = max_pending
        self._max_per_account = max_per_account
        self._grace_s = grace_s
        self._pending: dict[str, _Pending[W]] = {}
        #: Served symbols added live -> the account that added them.
        self._owner: dict[str, str] = {}
        #: Live symbols nobody watches -> when they are withdrawn.
        self._unwatched: dict[str, float] = {}

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, symbol: str, waiter: W, *, served: bool, supported: bool, served_count: int,
            max_symbols: int | None, account: str = "") -> list[Decision[W]]:
        """A client of ``account`` asks for ``symbol``. ``served``: the feed serves it
        already; ``supported``: the running source can add symbols live;
        ``served_count``: symbols served now; ``max_symbols``: the source's limit
        (None: none)."""
        if served:
            return [Subscribed(symbol, (waiter,), new=False)]
        pending = self._pending.get(symbol)
        if pending is not None:
            pending.waiters.append(waiter)
            return []
        if not supported:
            return [Refused(symbol, (waiter,), ErrorCode.UNKNOWN_SYMBOL,
                            f"symbol {symbol} is not served by this feed")]
        if len(self._pending) >= self._max_pending:
            return [Refused(symbol, (waiter,), ErrorCode.RATE_LIMITED,
                            "too many symbols being added; try again")]
        if max_symbols is not None and served_count + 1 > max_symbols:
            return [Refused(symbol, (waiter,), ErrorCode.UNKNOWN_SYMBOL,
                            f"symbol {symbol} cannot be added: the feed's stream limit "
                            "is reached")]
        if (self._max_per_account is not None
                and self.owned_by(account) >= self._max_per_account):
            return [Refused(symbol, (waiter,), ErrorCode.RATE_LIMITED,
                            f"account {account} has added {self._max_per_account} symbols "
                            "already (feed.max_live_symbols_per_account); unsubscribe some "
                            "and try again later")]
        self._pending[symbol] = _Pending([waiter], account)
        return [Subscribe(symbol)]

    def owned_by(self, account: str) -> int:
        """Live symbols (pending or served) ``account`` added."""
        return (sum(1 for o in self._owner.values() if o == account)
                + sum(1 for p in self._pending.values() if p.owner == account))

    def owners(self) -> dict[str, str]:
        """Served live symbols and their owners (to carry over to the next generation)."""
        return dict(self._owner)

    def restore(self, owners: dict[str, str], watched: set[str], now: float) -> None:
        """Take over the live symbols of a previous generation; those not ``watched``
        start their grace period at ``now``."""
        for symbol, owner in owners.items():
            self._owner[symbol] = owner
            if symbol not in watched:
                self._unwatched[symbol] = now + self._grace_s

    def interest(self, symbol: str, watched: bool, now: float) -> None:
        """``symbol`` gained its first subscriber (``watched``) or lost its last one."""
        if symbol not in self._owner:
            return  # configured, or not served
        if watched:
            self._unwatched.pop(symbol, None)
        else:
            self._unwatched.setdefault(symbol, now + self._grace_s)

    def requested(self, symbol: str, request: int) -> None:
        """The SUBSCRIBE for ``symbol`` was queued upstream as ``request``."""
        pending = self._pending.get(symbol)
        if pending is not None:
            pending.request = request

    def sent(self, request: int, now: float) -> None:
        """The SUBSCRIBE ``request`` has left at ``now``: its symbol's time starts."""
        for pending in self._pending.values():
            if pending.request == request and pending.deadline is None:
                pending.deadline = now + self._timeout_s

    def refused(self, request: object) -> list[Decision[W]]:
        """The exchange refused ``request`` (the id its error names, whatever its type)."""
        return [self._drop(symbol, ErrorCode.UNKNOWN_SYMBOL,
                           f"symbol {symbol} was refused by the exchange")
                for symbol, p in list(self._pending.items()) if p.request == request]

    def first_event(self, symbol: str) -> Subscribed[W] | None:
        """An event of ``symbol``, not served yet, arrived: if it is pending, it is
        confirmed (serve it; SUBSCRIBED to all). None: nobody asked for it (e.g.
        the tail of a withdrawn subscription): drop the event."""
        pending = self._pending.pop(symbol, None)
        if pending is None:
            return None
        self._owner[symbol] = pending.owner
        return Subscribed(symbol, tuple(pending.waiters), new=True)

    def unavailable(self, symbol: str, message: str) -> list[Decision[W]]:
        """``symbol`` cannot be added before its SUBSCRIBE went out (e.g. its
        exchange filters could not be loaded): every waiter gets
        ``UNKNOWN_SYMBOL`` with ``message``. Nothing for a symbol not pending or
        already requested upstream."""
        pending = self._pending.get(symbol)
        if pending is None or pending.request is not None:
            return []
        return [self._drop(symbol, ErrorCode.UNKNOWN_SYMBOL, message)]

    def expired(self, now: float, watched: frozenset[str] | set[str] = frozenset()
                ) -> list[Decision[W]]:
        """The subscriptions whose time has run out at ``now``: refused and withdrawn;
        and the live symbols unwatched for the grace period (unless in ``watched``,
        the symbols with a subscriber now): :class:`Withdraw`."""
        out: list[Decision[W]] = []
        for symbol, due in list(self._unwatched.items()):
            if due > now:
                continue
            del self._unwatched[symbol]
            if symbol in watched:
                continue
            out.append(Withdraw(symbol, self._owner.pop(symbol)))
        for symbol, p in list(self._pending.items()):
            if p.deadline is not None and p.deadline <= now:
                out.append(self._drop(symbol, ErrorCode.UNKNOWN_SYMBOL,
                                      f"symbol {symbol}: no market data from the exchange "
                                      "(unknown or not trading)"))
                out.append(Unsubscribe(symbol))
        return out

    def abandon(self) -> list[Decision[W]]:
        """The feed is going away (reconnecting): answer every waiter."""
        return [self._drop(symbol, ErrorCode.UNKNOWN_SYMBOL,
                           f"symbol {symbol} could not be checked: the feed is reconnecting; "
                           "try again")
                for symbol in list(self._pending)]

    def next_deadline(self) -> float | None:
        """The earliest running deadline (for the actor's wake-up), or None."""
        deadlines = [p.deadline for p in self._pending.values() if p.deadline is not None]
        deadlines += self._unwatched.values()
        return min(deadlines) if deadlines else None

    def _drop(self, symbol: str, code: ErrorCode, message: str) -> Refused[W]:
        pending = self._pending.pop(symbol)
        return Refused(symbol, tuple(pending.waiters), code, message)
