"""Which Binance user data events one settled order-book outcome makes.

Pure core (the OrderMonitorActor's thread calls it after it has announced the
outcome's ORDER_UPDATE / ORDER_LIST_UPDATE messages). The same outcome our own
protocol announces, nothing else: each order event becomes an
``executionReport`` (a fill's commission and commission asset from the fill
the ledger settled), each list event a ``listStatus``, and each account whose
balances the settle changed gets one ``outboundAccountPosition`` last, with
the assets that changed.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.binance import stream_payloads as bp
from engine.protocol.enums import ExecutionType
from engine.trading.events import FillIntent, ListEvent, OrderEvent, Outcome
from engine.trading.order import Order, OrderType

__all__ = ["AccountChange", "user_events"]

#: Types that rest on the book at a limit price (once triggered, for the stops).
_RESTING = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT,
                      OrderType.TAKE_PROFIT_LIMIT})


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What a settle changed in one account: the assets whose free or locked
    amount moved (after the change) and when."""

    balances: tuple[bp.BalanceRow, ...]
    update_time: int


def user_events(outcome: Outcome, *, from_command: bool,
                fee_assets: Sequence[str | None],
                changes: Mapping[str, AccountChange],
                lookup: Callable[[int], Order | None],
                next_trade_id: Callable[[], int],
                now_ms: int) -> dict[str, list[bytes]]:
    """The encoded events of ``outcome`` per account, in the order Binance would
    send them. ``fee_assets[i]`` is the commission asset of ``outcome.fills[i]``;
    ``from_command``: the outcome of a placement (its fills took liquidity), else
    of a trade (a resting order's fill made it); ``lookup`` finds a list member
    not in the outcome."""
    fills: dict[int, deque[tuple[FillIntent, str | None]]] = defaultdict(deque)
    for i, fill in enumerate(outcome.fills):
        fills[fill.order_id].append((fill, fee_assets[i] if i < len(fee_assets) else None))
    client_ids = {e.order.order_id: e.order.client_order_id
                  for e in outcome.events if isinstance(e, OrderEvent)}
    out: dict[str, list[bytes]] = defaultdict(list)
    for event in outcome.events:
        if isinstance(event, OrderEvent):
            facts = None
            if event.execution_type is ExecutionType.TRADE:
                queue = fills.get(event.order.order_id)
                fee, asset = Decimal(0), None
                if queue:
                    fill, asset = queue.popleft()
                    fee = fill.fee
                maker = not from_command and event.order.type in _RESTING
                facts = bp.FillFacts(fee, asset, next_trade_id(), maker)
            out[event.account].append(bp.execution_report(event, now_ms, facts))
        elif isinstance(event, ListEvent):
            ids = dict(client_ids)
            for oid in event.order_list.order_ids:
                if oid not in ids:
                    order = lookup(oid)
                    if order is not None:
                        ids[oid] = order.client_order_id
            out[event.account].append(bp.list_status(event, now_ms, ids))
    for account, change in sorted(changes.items()):
        if change.balances:
            out[account].append(bp.outbound_account_position(change.balances,
                                                             change.update_time, now_ms))
    return dict(out)
