"""PortfolioActor: owns every account's ledger and the mark prices.

Runs in its own pykka thread. It answers ``get_positions``/``get_portfolio``,
broadcasts POSITION_UPDATE and PORTFOLIO_UPDATE when its TimerActors fire,
applies fills for the OrderMonitorActor (``ask``: the fill is applied, and
persisted when a store is configured, before the caller announces it), and
answers buying-power checks. The ledger math is pure (:mod:`engine.trading.ledger`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.base import FailureHook, TickdeskActor
from actors.messages import AccountRequest, OpenOrdersChanged, Pulse, TradeTick
from engine.config import TradingConfig
from engine.protocol import server_messages as sm
from engine.server.hub import Hub
from engine.trading.events import Outcome
from engine.trading.ledger import FillResult, Ledger, Side

__all__ = ["ApplyFill", "PortfolioActor", "RiskQuery", "Settle", "portfolio_wire", "positions_wire"]


@dataclass(frozen=True, slots=True)
class ApplyFill:
    """Apply one fill to an account (ask; replies with a FillResult)."""

    account: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class Settle:
    """Apply an order-book outcome's fills (and persist it) before it is announced (ask)."""

    outcome: Outcome
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
        on_failure: FailureHook | None = None,
        generation: int = 0,
    ) -> None:
        super().__init__("portfolio", on_failure, generation)
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
            ApplyFill: self._on_fill,
            RiskQuery: self._on_risk,
            Settle: self._on_settle,
        }

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

    def _on_fill(self, msg: ApplyFill) -> FillResult:
        return self._ledger(msg.account).apply_fill(msg.symbol, msg.side, msg.quantity, msg.price)

    def _on_settle(self, msg: Settle) -> None:
        for fill in msg.outcome.fills:
            self._ledger(fill.account).apply_fill(fill.symbol, fill.side, fill.quantity,
                                                  fill.price)

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
