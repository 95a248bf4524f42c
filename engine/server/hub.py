"""The hub: who is connected, which symbols each client watches (market updates and,
separately, books, and Binance's named streams), which account each acts on (and
which Binance user data streams follow it).

Edge module, shared by every thread. Writers (connect, subscribe, auth,
disconnect) take one lock and replace immutable tuples; readers on the hot
path (the feed's fan-out, account broadcasts) read a tuple without locking,
so publishing a tick costs one dict lookup plus one ``deliver`` per
subscriber, with the message encoded and framed once by the caller.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from engine.protocol.server_messages import Outgoing
from engine.server.channel import Channel
from engine.stats import gauge

__all__ = ["PACE_CHUNK", "PACE_MIN", "PACE_WAIT_S", "Hub", "HubStatistics", "StreamMaker",
           "UserStream"]

#: A MARKET_UPDATE fan-out to at least this many subscribers holds back periodic
#: account updates while it runs (:meth:`Hub.to_account_paced`).
PACE_MIN = 64
#: Connections a periodic account update goes to between two looks at the fan-out.
PACE_CHUNK = 64
#: The longest a chunk of a periodic account update waits for a fan-out to end.
PACE_WAIT_S = 0.05

#: ``make(combined)`` builds a Binance stream's message once per tick: the raw
#: payload (False) or its ``{"stream", "data"}`` wrapping (True).
StreamMaker = Callable[[bool], Outgoing]


@dataclass(frozen=True, slots=True)
class UserStream:
    """A Binance user data stream following an account: its channel and how its
    events are wrapped (``stream``: the combined stream's name, the listen key;
    ``subscription_id``: the WebSocket API's ``{"subscriptionId", "event"}``;
    neither: raw)."""

    channel: Channel
    stream: str | None = None
    subscription_id: int | None = None


@dataclass(frozen=True, slots=True)
class HubStatistics:
    """The routing tables' sizes now (``/metrics``: ``tickdesk_hub_*``)."""

    subscriptions: int = gauge("Symbol subscriptions of all sessions together.")
    symbols_watched: int = gauge("Symbols with at least one subscriber.")
    accounts_connected: int = gauge("Accounts with at least one session.")


class Hub:
    """Routing tables for channels (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[int, Channel] = {}
        self._all: tuple[Channel, ...] = ()
        self._by_symbol: dict[str, tuple[Channel, ...]] = {}
        self._by_account: dict[str, tuple[Channel, ...]] = {}
        self._symbols_of: dict[int, set[str]] = {}
        #: BOOK_UPDATE subscribers, kept apart from the MARKET_UPDATE ones.
        self._book_by_symbol: dict[str, tuple[Channel, ...]] = {}
        self._books_of: dict[int, set[str]] = {}
        self._account_of: dict[int, str] = {}
        #: Binance's named streams (``btcusdt@trade``): raw and combined subscribers.
        self._stream_raw: dict[str, tuple[Channel, ...]] = {}
        self._stream_combined: dict[str, tuple[Channel, ...]] = {}
        self._streams_of: dict[int, dict[str, str]] = {}
        self._stream_symbols: Counter[str] = Counter()
        self._users: dict[str, tuple[UserStream, ...]] = {}
        self._user_of: dict[int, tuple[str, UserStream]] = {}
        #: Called with (symbol, watched) when a symbol gains its first or loses its
        #: last subscriber, outside the lock, in the caller's thread (the FeedActor
        #: withdraws live symbols nobody watches). Must not block.
        self.on_interest: Callable[[str, bool], None] | None = None
        #: Set except while a large MARKET_UPDATE fan-out runs (see :meth:`to_account_paced`).
        self._fanout_quiet = threading.Event()
        self._fanout_quiet.set()

    # -- membership ---------------------------------------------------------

    def add(self, ch: Channel) -> None:
        with self._lock:
            self._channels[ch.conn_id] = ch
            self._all = tuple(self._channels.values())
            self._symbols_of[ch.conn_id] = set()
            self._books_of[ch.conn_id] = set()
            self._streams_of[ch.conn_id] = {}

    def remove(self, ch: Channel) -> None:
        lost: list[str] = []
        with self._lock:
            if self._channels.pop(ch.conn_id, None) is None:
                return
            self._all = tuple(self._channels.values())
            for sym in self._symbols_of.pop(ch.conn_id, set()):
                if self._drop(self._by_symbol, sym, ch) and not self._watched(sym):
                    lost.append(sym)
            for sym in self._books_of.pop(ch.conn_id, set()):
                if self._drop(self._book_by_symbol, sym, ch) and not self._watched(sym):
                    lost.append(sym)
            account = self._account_of.pop(ch.conn_id, None)
            if account is not None:
                self._drop(self._by_account, account, ch)
            for name, sym in self._streams_of.pop(ch.conn_id, {}).items():
                if self._drop_stream(ch, name, sym):
                    lost.append(sym)
            self._drop_user(ch)
        for sym in lost:
            self._interest(sym, False)

    def set_account(self, ch: Channel, account: str) -> None:
        with self._lock:
            if ch.conn_id not in self._channels:
                return
            old = self._account_of.get(ch.conn_id)
            if old == account:
                return
            if old is not None:
                self._drop(self._by_account, old, ch)
            self._account_of[ch.conn_id] = account
            self._by_account[account] = (*self._by_account.get(account, ()), ch)

    def clear_account(self, ch: Channel) -> None:
        """The client no longer acts on any account (a failed ``auth``)."""
        with self._lock:
            old = self._account_of.pop(ch.conn_id, None)
            if old is not None:
                self._drop(self._by_account, old, ch)

    def subscribe(self, ch: Channel, symbol: str) -> bool:
        """Add ``symbol`` to the client's watch list; False if already there."""
        with self._lock:
            syms = self._symbols_of.get(ch.conn_id)
            if syms is None or symbol in syms:
                return False
            syms.add(symbol)
            first = not self._watched(symbol)
            self._by_symbol[symbol] = (*self._by_symbol.get(symbol, ()), ch)
        if first:
            self._interest(symbol, True)
        return True

    def unsubscribe(self, ch: Channel, symbol: str) -> bool:
        """Remove ``symbol`` from the client's watch list; False if it was not there."""
        with self._lock:
            syms = self._symbols_of.get(ch.conn_id)
            if syms is None or symbol not in syms:
                return False
            syms.discard(symbol)
            last = self._drop(self._by_symbol, symbol, ch) and not self._watched(symbol)
        if last:
            self._interest(symbol, False)
        return True

    def subscribe_book(self, ch: Channel, symbol: str) -> bool:
        """Add ``symbol`` to the client's book subscriptions; False if already there."""
        with self._lock:
            books = self._books_of.get(ch.conn_id)
            if books is None or symbol in books:
                return False
            books.add(symbol)
            first = not self._watched(symbol)
            self._book_by_symbol[symbol] = (*self._book_by_symbol.get(symbol, ()), ch)
        if first:
            self._interest(symbol, True)
        return True

    def unsubscribe_book(self, ch: Channel, symbol: str) -> bool:
        """Remove ``symbol`` from the client's book subscriptions; False if it was not there."""
        with self._lock:
            books = self._books_of.get(ch.conn_id)
            if books is None or symbol not in books:
                return False
            books.discard(symbol)
            last = self._drop(self._book_by_symbol, symbol, ch) and not self._watched(symbol)
        if last:
            self._interest(symbol, False)
        return True

    # -- Binance streams -------------------------------------------------------

    def subscribe_stream(self, ch: Channel, name: str, symbol: str, combined: bool) -> bool:
        """Add Binance stream ``name`` (of ``symbol``) to the client's; False if it
        has it already. ``combined``: its events are wrapped ``{"stream", "data"}``."""
        with self._lock:
            names = self._streams_of.get(ch.conn_id)
            if names is None or name in names:
                return False
            first = not self._watched(symbol)
            names[name] = symbol
            table = self._stream_combined if combined else self._stream_raw
            table[name] = (*table.get(name, ()), ch)
            self._stream_symbols[symbol] += 1
        if first:
            self._interest(symbol, True)
        return True

    def unsubscribe_stream(self, ch: Channel, name: str) -> bool:
        """Remove Binance stream ``name`` from the client's; False if it had not."""
        with self._lock:
            names = self._streams_of.get(ch.conn_id)
            if names is None or name not in names:
                return False
            symbol = names.pop(name)
            last = self._drop_stream(ch, name, symbol)
        if last:
            self._interest(symbol, False)
        return True

    def streams_of(self, ch: Channel) -> list[str]:
        """The client's Binance streams, in the order it subscribed them."""
        with self._lock:
            return list(self._streams_of.get(ch.conn_id, {}))

    def has_stream(self, name: str) -> bool:
        """Someone subscribes Binance stream ``name`` (lock-free: the hot path asks)."""
        return name in self._stream_raw or name in self._stream_combined

    def stream_names(self) -> list[str]:
        """Every Binance stream name someone here subscribes (what a gateway
        announces to the engine: :mod:`engine.server.redis_bus`)."""
        with self._lock:
            return sorted(set(self._stream_raw) | set(self._stream_combined))

    def user_accounts(self) -> list[str]:
        """The accounts that have a Binance user data stream here."""
        with self._lock:
            return sorted(self._users)

    def publish_stream(self, name: str, make: StreamMaker) -> int:
        """Deliver one event of Binance stream ``name``: built by ``make`` at most
        once per wrapping, only if that wrapping has subscribers; returns how many."""
        raw = self._stream_raw.get(name, ())
        comb = self._stream_combined.get(name, ())
        if raw:
            out = make(False)
            for ch in raw:
                ch.deliver(out)
        if comb:
            out = make(True)
            for ch in comb:
                ch.deliver(out)
        return len(raw) + len(comb)

    def add_user_stream(self, stream: UserStream, account: str) -> None:
        """Binance user data events of ``account`` go to this stream's channel
        (one user stream per channel: a new one replaces the old)."""
        with self._lock:
            if stream.channel.conn_id not in self._channels:
                return
            self._drop_user(stream.channel)
            self._user_of[stream.channel.conn_id] = (account, stream)
            self._users[account] = (*self._users.get(account, ()), stream)

    def remove_user_stream(self, ch: Channel) -> bool:
        with self._lock:
            return self._drop_user(ch)

    def user_streams(self, account: str) -> tuple[UserStream, ...]:
        """The Binance user data streams following ``account`` (lock-free)."""
        return self._users.get(account, ())

    # -- publishing (lock-free reads) ----------------------------------------

    def publish(self, symbol: str, out: Outgoing) -> int:
        """Deliver a market message to the symbol's subscribers; returns how many.

        A fan-out to at least :data:`PACE_MIN` subscribers marks itself as
        running, so that periodic account updates (:meth:`to_account_paced`)
        wait for its end instead of interleaving with it."""
        subs = self._by_symbol.get(symbol, ())
        if len(subs) < PACE_MIN:
            for ch in subs:
                ch.deliver(out)
            return len(subs)
        quiet = self._fanout_quiet
        quiet.clear()
        try:
            for ch in subs:
                ch.deliver(out)
        finally:
            quiet.set()
        return len(subs)

    def publish_book(self, symbol: str, out: Outgoing) -> int:
        """Deliver a BOOK_UPDATE to the symbol's book subscribers; returns how many."""
        subs = self._book_by_symbol.get(symbol, ())
        for ch in subs:
            ch.deliver(out)
        return len(subs)

    def book_subscriber_count(self, symbol: str) -> int:
        return len(self._book_by_symbol.get(symbol, ()))

    def to_account(self, account: str, out: Outgoing, skip: Channel | None = None) -> None:
        for ch in self._by_account.get(account, ()):
            if ch is not skip:
                ch.deliver(out)

    def to_account_paced(self, account: str, out: Outgoing) -> None:
        """A periodic account message (POSITION_UPDATE, PORTFOLIO_UPDATE) to every
        connection of ``account``, :data:`PACE_CHUNK` connections at a time, each
        chunk after the MARKET_UPDATE fan-out running meanwhile (if any) ended.

        Every connection still gets the message, in the caller's thread; it is
        only held back while a tick's fan-out runs (each wait at most
        :data:`PACE_WAIT_S`), because sending both at once from two threads
        makes them take turns on the GIL at every ``send``, and the tick's last
        subscribers see it one periodic broadcast later."""
        chans = self._by_account.get(account, ())
        quiet = self._fanout_quiet
        for i in range(0, len(chans), PACE_CHUNK):
            quiet.wait(PACE_WAIT_S)
            for ch in chans[i:i + PACE_CHUNK]:
                ch.deliver(out)

    def broadcast(self, out: Outgoing) -> None:
        for ch in self._all:
            ch.deliver(out)

    def accounts(self) -> list[str]:
        """Accounts that have at least one connection now."""
        return [a for a, chans in self._by_account.items() if chans]

    def channels(self) -> tuple[Channel, ...]:
        return self._all

    def channel(self, conn_id: int) -> Channel | None:
        """The connected channel with ``conn_id`` (a reply's address), if any."""
        return self._channels.get(conn_id)

    def subscriber_count(self, symbol: str) -> int:
        return len(self._by_symbol.get(symbol, ()))

    def watched_symbols(self) -> set[str]:
        """Symbols with at least one subscriber now (of MARKET_UPDATE, BOOK_UPDATE or
        a Binance stream)."""
        with self._lock:
            return set(self._by_symbol) | set(self._book_by_symbol) | set(self._stream_symbols)

    def statistics(self) -> HubStatistics:
        with self._lock:
            return HubStatistics(
                subscriptions=sum(len(chans) for chans in self._by_symbol.values()),
                symbols_watched=len(self._by_symbol),
                accounts_connected=len(self._by_account))

    def __len__(self) -> int:
        return len(self._all)

    # -- internals ----------------------------------------------------------

    @staticmethod
    def _drop(table: dict[str, tuple[Channel, ...]], key: str, ch: Channel) -> bool:
        """Remove ``ch`` from ``table[key]`` (the key goes when that empties it);
        True if it did."""
        remaining = tuple(c for c in table.get(key, ()) if c is not ch)
        if remaining:
            table[key] = remaining
            return False
        table.pop(key, None)
        return True

    def _watched(self, symbol: str) -> bool:
        """Anyone watches ``symbol`` (call with the lock held)."""
        return (symbol in self._by_symbol or symbol in self._book_by_symbol
                or symbol in self._stream_symbols)

    def _drop_stream(self, ch: Channel, name: str, symbol: str) -> bool:
        """Remove ``ch`` from stream ``name`` (lock held); True if ``symbol`` is now
        watched by nobody."""
        self._drop(self._stream_raw, name, ch)
        self._drop(self._stream_combined, name, ch)
        self._stream_symbols[symbol] -= 1
        if self._stream_symbols[symbol] <= 0:
            del self._stream_symbols[symbol]
        return not self._watched(symbol)

    def _drop_user(self, ch: Channel) -> bool:
        entry = self._user_of.pop(ch.conn_id, None)
        if entry is None:
            return False
        account, _stream = entry
        remaining = tuple(u for u in self._users.get(account, ()) if u.channel is not ch)
        if remaining:
            self._users[account] = remaining
        else:
            self._users.pop(account, None)
        return True

    def _interest(self, symbol: str, watched: bool) -> None:
        cb = self.on_interest
        if cb is not None:
            cb(symbol, watched)
