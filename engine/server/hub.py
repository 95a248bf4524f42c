"""The hub: who is connected, which symbols each client watches (market updates and,
separately, books), which account each acts on.

Edge module, shared by every thread. Writers (connect, subscribe, auth,
disconnect) take one lock and replace immutable tuples; readers on the hot
path (the feed's fan-out, account broadcasts) read a tuple without locking,
so publishing a tick costs one dict lookup plus one ``deliver`` per
subscriber, with the message encoded and framed once by the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.protocol.server_messages import Outgoing
from engine.server.channel import Channel
from engine.stats import gauge

__all__ = ["Hub", "HubStatistics"]


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
        #: Called with (symbol, watched) when a symbol gains its first or loses its
        #: last subscriber, outside the lock, in the caller's thread (the FeedActor
        #: withdraws live symbols nobody watches). Must not block.
        self.on_interest: Callable[[str, bool], None] | None = None

    # -- membership ---------------------------------------------------------

    def add(self, ch: Channel) -> None:
        with self._lock:
            self._channels[ch.conn_id] = ch
            self._all = tuple(self._channels.values())
            self._symbols_of[ch.conn_id] = set()
            self._books_of[ch.conn_id] = set()

    def remove(self, ch: Channel) -> None:
        lost: list[str] = []
        with self._lock:
            if self._channels.pop(ch.conn_id, None) is None:
                return
            self._all = tuple(self._channels.values())
            for sym in self._symbols_of.pop(ch.conn_id, set()):
                if self._drop(self._by_symbol, sym, ch) and sym not in self._book_by_symbol:
                    lost.append(sym)
            for sym in self._books_of.pop(ch.conn_id, set()):
                if self._drop(self._book_by_symbol, sym, ch) and sym not in self._by_symbol:
                    lost.append(sym)
            account = self._account_of.pop(ch.conn_id, None)
            if account is not None:
                self._drop(self._by_account, account, ch)
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
            current = self._by_symbol.get(symbol, ())
            self._by_symbol[symbol] = (*current, ch)
            first = not current and symbol not in self._book_by_symbol
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
            last = self._drop(self._by_symbol, symbol, ch) and symbol not in self._book_by_symbol
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
            current = self._book_by_symbol.get(symbol, ())
            self._book_by_symbol[symbol] = (*current, ch)
            first = not current and symbol not in self._by_symbol
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
            last = self._drop(self._book_by_symbol, symbol, ch) and symbol not in self._by_symbol
        if last:
            self._interest(symbol, False)
        return True

    # -- publishing (lock-free reads) ----------------------------------------

    def publish(self, symbol: str, out: Outgoing) -> int:
        """Deliver a market message to the symbol's subscribers; returns how many."""
        subs = self._by_symbol.get(symbol, ())
        for ch in subs:
            ch.deliver(out)
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
        """Symbols with at least one subscriber now (of MARKET_UPDATE or BOOK_UPDATE)."""
        with self._lock:
            return set(self._by_symbol) | set(self._book_by_symbol)

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

    def _interest(self, symbol: str, watched: bool) -> None:
        cb = self.on_interest
        if cb is not None:
            cb(symbol, watched)
