"""Settling an order-book outcome on the ledgers: fills, reservations, releases.

Pure core, run by the owner of the ledgers (the PortfolioActor's thread, on
copies it swaps in once the outcome is persisted).

The outcome's events are walked **in order**, so every change sees the
account as it was at that moment:

* ``NEW`` of an order whose reservation was approved at placement (the
  ``staged`` plans of :func:`engine.trading.risk.risk_plan`): the
  reservation is taken. ``NEW`` (status NEW) of a bracket's exits once the
  entry has filled: the two exits reserve once, planned against the position
  the entry just built.
* ``TRADE``: the order's next fill is applied to the ledger and consumes its
  share of the reservation (the reduced position first, then the buying
  power).
* Every event that leaves an order not open (``FILLED``, ``CANCELED``,
  ``EXPIRED``) closes it: when no order of its reservation is open any more,
  what is left is released. Any other event of an open order holds at most
  what it has left to fill (an amend that lowers the quantity releases the
  rest, the increasing part first).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.config import TradingConfig
from engine.protocol.enums import ExecutionType
from engine.trading.events import FillIntent, OrderEvent, Outcome
from engine.trading.ledger import FillResult, Ledger, Plan
from engine.trading.order import LegRole, Order, OrderStatus
from engine.trading.risk import lock_price

__all__ = ["Staged", "exit_plan", "settle_outcome"]


@dataclass(frozen=True, slots=True)
class Staged:
    """A reservation approved at placement, taken when the order's ``NEW`` settles."""

    account: str
    order_ids: tuple[int, ...]
    plan: Plan


def exit_plan(ledger: Ledger, exits: Sequence[Order], marks: Mapping[str, Decimal],
              trading: TradingConfig) -> Plan:
    """What a bracket's released exits reserve (one plan for both)."""
    first = exits[0]
    reference = marks.get(first.symbol)
    if reference is None:
        reference = max(p for o in exits for p in (o.price, o.stop_price) if p is not None)
    return ledger.plan(first.symbol, first.side, first.quantity,
                       lock_price(exits, reference, trading.slippage_bps))


def settle_outcome(
    ledgers: MutableMapping[str, Ledger],
    outcome: Outcome,
    staged: Mapping[int, Staged],
    marks: Mapping[str, Decimal],
    trading: TradingConfig,
) -> list[FillResult]:
    """Apply ``outcome`` to ``ledgers`` (changed in place; see the module
    docstring); return the fills' results in order. ``staged`` is keyed by
    the lowest order id of each approved reservation."""
    pending: list[FillIntent] = list(outcome.fills)
    results: list[FillResult] = []
    events = [e for e in outcome.events if isinstance(e, OrderEvent)]
    for i, event in enumerate(events):
        order = event.order
        ledger = ledgers[order.account]
        kind = event.execution_type
        if kind is ExecutionType.NEW:
            _reserve(ledger, order, events[i + 1:], staged, marks, trading)
        elif kind is ExecutionType.TRADE:
            fill = next((f for f in pending if f.order_id == order.order_id), None)
            if fill is not None:
                pending.remove(fill)
                results.append(_apply(ledger, fill))
        if not order.is_open and order.status is not OrderStatus.REJECTED:
            ledger.close(order.order_id)
        elif order.is_open and kind is not ExecutionType.NEW:
            # an amend may have lowered the quantity: hold no more than is left
            ledger.shrink_to(order.order_id, order.quantity - order.filled_quantity)
    for fill in pending:  # a fill without its TRADE event: still the account's
        results.append(_apply(ledgers[fill.account], fill))
    return results


def _apply(ledger: Ledger, fill: FillIntent) -> FillResult:
    result = ledger.apply_fill(fill.symbol, fill.side, fill.quantity, fill.price)
    ledger.consume(fill.order_id, fill.quantity)
    return result


def _reserve(ledger: Ledger, order: Order, later: Sequence[OrderEvent],
             staged: Mapping[int, Staged], marks: Mapping[str, Decimal],
             trading: TradingConfig) -> None:
    if ledger.reservation_of(order.order_id) is not None:
        return
    approved = staged.get(order.order_id)
    if approved is not None:
        ledger.reserve(approved.order_ids, approved.plan)
        return
    if order.status is not OrderStatus.NEW or order.leg not in (LegRole.TAKE_PROFIT,
                                                                LegRole.STOP_LOSS):
        return
    # A bracket's exits, released by the entry's fill: reserve both once.
    exits = [order] + [
        e.order for e in later
        if e.execution_type is ExecutionType.NEW and e.order.list_id == order.list_id
        and e.order.status is OrderStatus.NEW and e.order.order_id != order.order_id
    ]
    ledger.reserve(tuple(o.order_id for o in exits), exit_plan(ledger, exits, marks, trading))
