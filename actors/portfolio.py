"""PortfolioActor: owns every account's ledger and the mark prices.

Runs in its own pykka thread. It answers ``get_positions``/``get_portfolio``,
broadcasts POSITION_UPDATE and PORTFOLIO_UPDATE when its TimerActors fire,
applies fills for the OrderMonitorActor (``ask``: the fill is applied, and
persisted when a store is configured, before the caller announces it), and
answers buying-power checks. The ledger math is pure (:mod:`engine.trading.ledger`).

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
from typing import Any

from actors.base import FailureHook, TickdeskActor
from actors.messages import AccountRequest, BookTick, OpenOrdersChanged, Pulse, TradeTick
from engine.config import TradingConfig
from engine.money import Side
from engine.protocol import server_messages as sm
from engine.server.hub import Hub
from engine.store import Store
from engine.trading.events import Outcome
from engine.trading.ledger import Ledger
from engine.trading.order import Order

__all__ = [
    "BookState",
    "LoadBook",
    "PortfolioActor",
    "RiskQuery",
    "Settle",
    "portfolio_wire",
    "positions_wire",
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


def positions_wire(ledger: Ledger, marks: dict[str, Decimal]) -> list[dict[str, Any]]:
    """The POSITION_UPDATE ``positions`` list (flat positions are not listed)."""
    out: list[dict[str, Any]] = []
    for pos in ledger.open_positions():
        mark = marks.get(pos.symbol)
        qty = abs(pos.quantity)
        out.append(
            {
                "symbol": pos.symbol,
                "side": "LONG" if pos.quantity > 0 else "SHORT",
                "quantity": qty,
                "entryPrice": pos.entry_price,
                "markPrice": mark,
                "unrealizedPnl": pos.unrealized(mark),
                "realizedPnl": pos.realized_pnl,
                "notional": qty * (mark if mark is not None else pos.entry_price),
            }
        )
    return out


def portfolio_wire(ledger: Ledger, marks: dict[str, Decimal], open_orders: int) -> dict[str, Any]:
    """The PORTFOLIO_UPDATE ``portfolio`` object. ``totalPnl`` is
    ``realizedPnl + unrealizedPnl - fees`` (equity minus the starting balance)."""
    unrealized = ledger.unrealized_pnl(marks)
    return {
        "balance": ledger.balance,
        "equity": ledger.balance + unrealized,
        "unrealizedPnl": unrealized,
        "realizedPnl": ledger.realized_pnl,
        "totalPnl": ledger.realized_pnl + unrealized - ledger.fees,
        "fees": ledger.fees,
        "positionsCount": len(ledger.open_positions()),
        "openOrdersCount": open_orders,
    }


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
            BookTick: self._on_book,
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

    def _on_book(self, msg: BookTick) -> None:
        """A book change: positions are marked at the last trade, so nothing to do."""

    def _on_open_orders(self, msg: OpenOrdersChanged) -> None:
        self._open_orders[msg.account] = msg.count

    def _on_request(self, req: AccountRequest) -> None:
        ledger = self._ledger(req.account)
        now = self._now_ms()
        if req.action == "get_positions":
            out = sm.position_update(positions_wire(ledger, self._marks), now, req.request_id)
        else:
            out = sm.portfolio_update(
                portfolio_wire(ledger, self._marks, self._open_orders.get(req.account, 0)),
                now,
                req.request_id,
            )
        req.channel.deliver(out)

    def _on_pulse(self, msg: Pulse) -> None:
        now = self._now_ms()
        for account in self._hub.accounts():
            ledger = self._ledgers.get(account)
            if ledger is None:
                continue
            if msg.name == "positions":
                out = sm.position_update(positions_wire(ledger, self._marks), now)
            else:
                out = sm.portfolio_update(
                    portfolio_wire(ledger, self._marks, self._open_orders.get(account, 0)), now
                )
            self._hub.to_account(account, out)

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
        ledger = self._ledger(msg.account)
        if not self._trading.allow_short:
            after = ledger.position(msg.symbol).quantity + msg.quantity * msg.side.sign
            if after < 0:
                return "SHORT_NOT_ALLOWED"
        marks = dict(self._marks)
        marks[msg.symbol] = msg.price
        if ledger.exceeds_buying_power(
            msg.symbol, msg.side, msg.quantity, msg.price, marks, self._trading.max_leverage
        ):
            return "INSUFFICIENT_BALANCE"
        return None
