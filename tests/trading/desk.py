"""A pure trading desk for tests: one OrderBook, the ledgers, risk and settlement
wired the way the PortfolioActor and the OrderMonitorActor wire them (risk at
placement stages a plan; the settle of the same outcome takes it), without
threads or clocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine.config import TradingConfig
from engine.messages import Trade
from engine.trading.book import OrderBook, bps_fee
from engine.trading.events import Outcome
from engine.trading.ledger import FillResult, Ledger
from engine.trading.order import Order
from engine.trading.requests import parse_bracket, parse_oco, parse_order
from engine.trading.risk import risk_plan
from engine.trading.settlement import Staged, settle_outcome

ACCOUNT = "alice"


class Desk:
    def __init__(self, balances: Mapping[str, object], *, fee_bps: object = 0,
                 home: str = "USDT", **trading: Any) -> None:
        self.trading = replace(TradingConfig(**trading), fee_bps=Decimal(str(fee_bps)))
        fee = self.trading.fee_bps
        self.book = OrderBook(fee_for=bps_fee(fee))
        start = {a: Decimal(str(v)) for a, v in balances.items()}
        self.ledger = Ledger(ACCOUNT, start, fee, home)
        self.ledgers = {ACCOUNT: self.ledger}
        self.marks: dict[str, Decimal] = {}
        self.staged: dict[int, Staged] = {}
        self.results: list[FillResult] = []
        self.now = 0

    # -- the PortfolioActor's part
    def risk(self, orders: Sequence[Order], reference: Decimal) -> str | None:
        plan, reason = risk_plan(self.ledgers[orders[0].account], self.marks, self.trading,
                                 orders, reference)
        if reason is None:
            ids = tuple(o.order_id for o in orders)
            self.staged[min(ids)] = Staged(orders[0].account, ids, plan)
        return reason

    def settle(self, outcome: Outcome) -> Outcome:
        self.results += settle_outcome(self.ledgers, outcome, self.staged, self.marks,
                                       self.trading)
        self.staged = {}
        return outcome

    # -- the OrderMonitorActor's part
    def trade(self, symbol: str, price: object) -> Outcome:
        self.now += 1
        p = Decimal(str(price))
        self.marks[symbol] = p
        return self.settle(self.book.on_trade(Trade(symbol, p, Decimal(1), self.now, self.now),
                                              now_ms=self.now,
                                              slippage_bps=self.trading.slippage_bps))

    def place(self, **body: Any) -> Outcome:
        self.now += 1
        req = parse_order({k: str(v) if isinstance(v, (int, float)) else v
                           for k, v in body.items()})
        return self.settle(self.book.place(ACCOUNT, req, now_ms=self.now,
                                           last_price=self.marks.get(req.symbol),
                                           slippage_bps=self.trading.slippage_bps,
                                           risk=self.risk))

    def oco(self, **body: Any) -> Outcome:
        self.now += 1
        req = parse_oco(body)
        return self.settle(self.book.place_oco(ACCOUNT, req, now_ms=self.now,
                                               last_price=self.marks.get(req.symbol),
                                               risk=self.risk))

    def bracket(self, **body: Any) -> Outcome:
        self.now += 1
        req = parse_bracket(body)
        return self.settle(self.book.place_bracket(ACCOUNT, req, now_ms=self.now,
                                                   last_price=self.marks.get(req.symbol),
                                                   slippage_bps=self.trading.slippage_bps,
                                                   risk=self.risk))

    def cancel(self, order_id: int) -> Outcome:
        self.now += 1
        return self.settle(self.book.cancel(ACCOUNT, order_id=order_id, now_ms=self.now))


def reason(outcome: Outcome) -> str | None:
    """The reject reason of a refused placement, None if it was accepted."""
    rejected = [e.order.reject_reason for e in outcome.order_events()
                if e.order.reject_reason is not None]
    return rejected[0] if rejected else None
