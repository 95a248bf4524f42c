"""PortfolioActor: owns every account's ledger and the mark prices.

Runs in its own pykka thread. It answers ``get_positions``/``get_portfolio``,
broadcasts POSITION_UPDATE and PORTFOLIO_UPDATE when its TimerActors fire,
applies fills for the OrderMonitorActor (``ask``: the fill is applied, and
persisted when a store is configured, before the caller announces it), and
answers risk checks (``RiskQuery``, decided by :mod:`engine.trading.risk`). The
ledger math is pure (:mod:`engine.trading.ledger`).

Persistence: this actor is the one owner of the :class:`~engine.store.Store`.
It opens it in ``started()`` (its own thread; SQLite's ``check_same_thread``
holds) and closes it in ``cleanup()`` (same thread), loads the ledgers from
it, and on ``Settle`` applies the fills to *copies* of the affected ledgers,
commits the whole outcome in one transaction, and only then swaps the copies
in and replies. If the commit fails nothing in memory changed and the error
goes back to the OrderMonitorActor, which crashes and is restarted from the
store. ``LoadBook`` gives the OrderMonitorActor the persisted orders, so only
this thread ever touches SQLite. After a restart of this actor the ledgers
reload from the store.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from actors.base import FailureHook, TickdeskActor
from actors.messages import AccountRequest, OpenOrdersChanged, Pulse, TradeTick
from engine.config import TradingConfig
from engine.money import Side
from engine.protocol import server_messages as sm
from engine.server.hub import Hub
from engine.store import Store
from engine.trading.events import Outcome
from engine.trading.ledger import Ledger
from engine.trading.order import Order
from engine.trading.risk import risk_reject

__all__ = [
    "BookState",
    "LoadBook",
    "PortfolioActor",
    "RiskQuery",
    "Settle",
]

log = logging.getLogger("tickdesk.portfolio")


@dataclass(frozen=True, slots=True)
class Settle:
    """Apply an order-book outcome's fills (and persist it) before it is announced (ask)."""

    outcome: Outcome
    next_order_id: int
    next_list_id: int


@dataclass(frozen=True, slots=True)
class LoadBook:
    """The persisted orders and id counters for ``OrderBook.restore`` (ask;
    replies a :class:`BookState`, or None when no store is configured)."""


@dataclass(frozen=True, slots=True)
class BookState:
    orders: tuple[Order, ...]
    next_order_id: int
    next_list_id: int


@dataclass(frozen=True, slots=True)
class RiskQuery:
    """Would this order, filled at ``price``, be refused? (ask; replies a reason or None)."""

    account: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal


class PortfolioActor(TickdeskActor):
    def __init__(
        self,
        hub: Hub,
        trading: TradingConfig,
        accounts: tuple[str, ...],
        now_ms: Callable[[], int],
        *,
        store_path: str = "",
        store_synchronous: str = "full",
        on_failure: FailureHook | None = None,
        generation: int = 0,
    ) -> None:
        """``store_path``: the SQLite database (a path, or a ``file:`` URI);
        empty means no persistence."""
        super().__init__("portfolio", on_failure, generation)
        self._store_path = store_path
        self._store_synchronous = store_synchronous
        self._store: Store | None = None
        self._hub = hub
        self._trading = trading
        self._now_ms = now_ms
        self._ledgers = {
            name: Ledger(name, trading.starting_balance, trading.fee_bps) for name in accounts
        }
        self._marks: dict[str, Decimal] = {}
        self._open_orders: dict[str, int] = {}
        self.handlers = {
            TradeTick: self._on_tick,
            AccountRequest: self._on_request,
            Pulse: self._on_pulse,
            OpenOrdersChanged: self._on_open_orders,
            RiskQuery: self._on_risk,
            Settle: self._on_settle,
            LoadBook: self._on_load_book,
        }

    def started(self) -> None:
        if not self._store_path:
            return
        store = Store(self._store_path, self._store_synchronous)
        try:
            state = store.load(self._trading.fee_bps)
            ledgers = dict(state.ledgers)
            for name, ledger in self._ledgers.items():
                ledgers.setdefault(name, ledger)
            store.add_accounts(ledgers.values())
        except BaseException:
            store.close()
            raise
        self._store = store
        self._ledgers = ledgers
        migrated = (f", migrated from v{store.migrated_from}"
                    if store.migrated_from != store.schema_version else "")
        log.info("store %s opened (schema v%d%s): accounts=%d orders=%d",
                 self._store_path, store.schema_version, migrated,
                 len(ledgers), len(state.orders))

    def cleanup(self) -> None:
        store = self._store
        self._store = None
        if store is not None:
            store.close()

    def _ledger(self, account: str) -> Ledger:
        ledger = self._ledgers.get(account)
        if ledger is None:
            raise KeyError(f"unknown account {account!r}")
        return ledger

    def _on_tick(self, msg: TradeTick) -> None:
        self._marks[msg.trade.symbol] = msg.trade.price

    def _on_open_orders(self, msg: OpenOrdersChanged) -> None:
        self._open_orders[msg.account] = msg.count

    def _on_request(self, req: AccountRequest) -> None:
        req.channel.deliver(self._update(req.action == "get_positions", req.account,
                                         self._ledger(req.account), self._now_ms(),
                                         req.request_id))

    def _on_pulse(self, msg: Pulse) -> None:
        now = self._now_ms()
        for account in self._hub.accounts():
            ledger = self._ledgers.get(account)
            if ledger is not None:
                self._hub.to_account(
                    account, self._update(msg.name == "positions", account, ledger, now))

    def _update(self, positions: bool, account: str, ledger: Ledger, now: int,
                request_id: str | int | None = None) -> sm.Outgoing:
        """The POSITION_UPDATE (``positions``) or PORTFOLIO_UPDATE of one account."""
        if positions:
            return sm.position_update(ledger, self._marks, now, request_id)
        return sm.portfolio_update(ledger, self._marks, self._open_orders.get(account, 0),
                                   now, request_id)

    def _on_settle(self, msg: Settle) -> None:
        # Work on copies: if a fill or the commit fails, memory is unchanged.
        changed: dict[str, Ledger] = {}
        for fill in msg.outcome.fills:
            ledger = changed.get(fill.account)
            if ledger is None:
                ledger = changed[fill.account] = copy.deepcopy(self._ledger(fill.account))
            ledger.apply_fill(fill.symbol, fill.side, fill.quantity, fill.price)
        if self._store is not None:
            self._store.settle(msg.outcome, changed, msg.next_order_id, msg.next_list_id)
        self._ledgers.update(changed)

    def _on_load_book(self, _msg: LoadBook) -> BookState | None:
        if self._store is None:
            return None
        state = self._store.load(self._trading.fee_bps)
        return BookState(state.orders, state.next_order_id, state.next_list_id)

    def _on_risk(self, msg: RiskQuery) -> str | None:
        return risk_reject(self._ledger(msg.account), self._marks, self._trading,
                           msg.symbol, msg.side, msg.quantity, msg.price)
