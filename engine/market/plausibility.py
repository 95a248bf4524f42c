"""Implausible upstream trades: which trades may move prices, ids and orders.

Pure core, owned by the FeedActor (its thread); no clock is needed. One
upstream trade with a wild aggregate-trade id or price (a corrupt frame, a
bug upstream) must not fill resting orders, become the price clients see, or
become the id watermark that de-duplicates later trades (a watermark at
``2**63-1`` would drop every genuine trade after it as "not newer").

:class:`TradeGuard` keeps, per symbol, a *reference*: the id and price of the
last trade it let through, and checks each new trade against it:

* ``id_jump``: the id is more than ``max_id_jump`` ahead of the reference id;
* ``price_band``: the price is more than ``max_deviation_pct`` percent away
  from the reference price.

A trade that fails a check is **held as a suspect**, not routed. The next
trade of the symbol decides: if it *agrees with the suspect* (its id is
ahead of the suspect's by at most ``max_id_jump`` and its price is within the
band around the suspect's), the suspect was genuine (the market really moved,
or trades were really missed): both are routed, in order, and become the
reference. Otherwise the suspect is **dropped** (:attr:`Verdict.dropped`, with
its reason) and the new trade is checked on its own. So a single poison
trade is never routed and genuine trades after it keep flowing, while a
genuine level shift costs no trade, only the delay of one.

No reference: the id reference is per connection generation (a new
:class:`TradeGuard` per FeedActor, so a stale id never freezes a new
connection). :meth:`seed` gives it the previous generation's last id and
price as a *soft* reference; a trade that agrees with a soft reference is
routed at once, and one that does not (ids moved on during a long outage, an
upstream whose ids restarted) is held as ``unconfirmed`` until the next
trade vouches for it, as above. The very first trade of a symbol since the
daemon started has no reference at all and is held the same way (the first
price appears with the second trade). :meth:`note_quote` (a 24 h ticker's
last price, a book's mid) gives a soft *price* reference when there is none.

Trades at or below a *trusted* reference id are passed through untouched:
they are duplicates (the overlap of two connections during a rotation), which
:class:`~engine.market.dedupe.Watermarks` drops. Trades without an id are
checked by price only and never held.

Bound: one reference and at most one suspect per symbol served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.messages import Trade

__all__ = ["REASONS", "Reference", "TradeGuard", "Verdict"]

#: The reasons a trade is dropped, as counted and exported.
REASONS = ("id_jump", "price_band", "unconfirmed")


@dataclass(frozen=True, slots=True)
class Reference:
    """The last trusted id and price of a symbol."""

    trade_id: int | None
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one trade: route ``route`` (in order, possibly empty: the
    trade is held as a suspect), and count/log ``dropped`` (earlier suspects
    given up, each with its reason)."""

    route: tuple[Trade, ...]
    dropped: tuple[tuple[Trade, str], ...] = ()


@dataclass(slots=True)
class _State:
    ref_id: int | None = None
    ref_price: Decimal | None = None
    #: False while the reference is only a seed or a quote (not yet a trade
    #: let through by this guard).
    confirmed: bool = False
    suspect: Trade | None = None
    suspect_reason: str = ""


class TradeGuard:
    """Per-symbol plausibility of trades (see the module docstring)."""

    def __init__(self, max_id_jump: int, max_deviation_pct: float | Decimal) -> None:
        if max_id_jump < 1 or Decimal(str(max_deviation_pct)) <= 0:
            raise ValueError("max_id_jump must be >= 1 and max_deviation_pct > 0")
        self._jump = max_id_jump
        self._band = Decimal(str(max_deviation_pct)) / 100
        self._symbols: dict[str, _State] = {}

    # -- references ----------------------------------------------------------

    def seed(self, references: Mapping[str, Reference]) -> None:
        """Soft references (a previous connection's last trusted trades)."""
        for symbol, ref in references.items():
            st = self._state(symbol)
            if not st.confirmed:
                st.ref_id, st.ref_price = ref.trade_id, ref.price

    def note_quote(self, symbol: str, price: Decimal | None) -> None:
        """A quoted price (ticker last price, book mid): the price reference while
        no trade has been let through."""
        if price is None or price <= 0:
            return
        st = self._state(symbol)
        if not st.confirmed:
            st.ref_price = price

    def references(self) -> dict[str, Reference]:
        """The trusted references (to seed the next connection's guard)."""
        return {s: Reference(st.ref_id, st.ref_price) for s, st in self._symbols.items()
                if st.ref_id is not None or st.ref_price is not None}

    def pending(self) -> int:
        """Trades held as suspects now."""
        return sum(1 for st in self._symbols.values() if st.suspect is not None)

    # -- checking --------------------------------------------------------------

    def check(self, trade: Trade) -> Verdict:
        """Decide about one trade of the feed, in feed order."""
        st = self._state(trade.symbol)
        tid = trade.trade_id
        if tid is None:
            if st.ref_price is not None and not self._near(trade.price, st.ref_price):
                return Verdict((), ((trade, "price_band"),))
            self._trust(st, trade)
            return Verdict((trade,))
        dropped: tuple[tuple[Trade, str], ...] = ()
        suspect = st.suspect
        if suspect is not None:
            assert suspect.trade_id is not None
            if tid == suspect.trade_id and trade.price == suspect.price:
                return Verdict(())  # the suspect again (two connections overlap)
            if self._agrees(trade, suspect.trade_id, suspect.price):
                st.suspect = None
                self._trust(st, trade)
                return Verdict((suspect, trade))
            dropped = ((suspect, st.suspect_reason),)
            st.suspect = None
        reason = self._doubt(st, trade, tid)
        if reason is None:
            if st.ref_id is None or tid > st.ref_id:
                self._trust(st, trade)
            return Verdict((trade,), dropped)
        st.suspect, st.suspect_reason = trade, reason
        return Verdict((), dropped)

    def give_up(self) -> list[tuple[Trade, str]]:
        """Every suspect still held (the feed is going away): drop them."""
        out: list[tuple[Trade, str]] = []
        for st in self._symbols.values():
            if st.suspect is not None:
                out.append((st.suspect, st.suspect_reason))
                st.suspect = None
        return out

    def forget(self, symbols: Iterable[str]) -> None:
        """Symbols no longer served."""
        for s in symbols:
            self._symbols.pop(s, None)

    # -- internals -------------------------------------------------------------

    def _doubt(self, st: _State, trade: Trade, tid: int) -> str | None:
        """Why ``trade`` cannot be routed at once (None: it can)."""
        if st.ref_id is None:
            return "unconfirmed"
        if st.confirmed and tid <= st.ref_id:
            return None  # a duplicate or older trade: the watermark's business
        if not st.confirmed and not 0 < tid - st.ref_id <= self._jump:
            return "unconfirmed"  # the seed is stale (outage) or the ids restarted
        if tid - st.ref_id > self._jump:
            return "id_jump"
        if st.ref_price is not None and not self._near(trade.price, st.ref_price):
            return "price_band" if st.confirmed else "unconfirmed"
        return None

    def _agrees(self, trade: Trade, ref_id: int, ref_price: Decimal) -> bool:
        tid = trade.trade_id
        return (tid is not None and 0 < tid - ref_id <= self._jump
                and self._near(trade.price, ref_price))

    def _near(self, price: Decimal, ref: Decimal) -> bool:
        return abs(price - ref) <= ref * self._band

    @staticmethod
    def _trust(st: _State, trade: Trade) -> None:
        if trade.trade_id is not None:
            st.ref_id = trade.trade_id
        st.ref_price = trade.price
        st.confirmed = True

    def _state(self, symbol: str) -> _State:
        st = self._symbols.get(symbol)
        if st is None:
            st = self._symbols[symbol] = _State()
        return st
