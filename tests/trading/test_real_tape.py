"""The order book on a real trade tape: 12,477 Binance XRP/ETH aggregate trades.

Trailing stops are re-armed after every trigger and checked trade by trade
against an independent, naive re-computation of docs/trading.md's rule; limits,
an OCO and a bracket ride along, and the ledger reconciles exactly at the end.
"""

from __future__ import annotations

from decimal import Decimal

from engine.market.binance_codec import decode_frame
from engine.market.replay_format import records_from_bytes
from engine.messages import Trade
from engine.trading import ExecutionType, OrderBook, OrderEvent, parse_oco, parse_order
from engine.trading.book import bps_fee
from engine.trading.fill_model import FillModel
from engine.trading.ledger import Ledger
from tests.market.conftest import data_file

ACCOUNT = "tape"
DELTA = 50  # bps


def _tape() -> list[Trade]:
    raw = data_file("freqtrade/XRP_OLD-trades.json.gz").read_bytes()
    trades = [decode_frame(rec.frame) for rec in records_from_bytes(raw)]
    out = [t for t in trades if isinstance(t, Trade)]
    assert len(out) == 12477
    return out


def _trailing_body(side: str) -> dict[str, object]:
    return {"symbol": "XRPETH", "side": side, "type": "STOP_LOSS", "quantity": "100",
            "trailingDelta": DELTA}


def test_trailing_stops_on_a_real_tape_match_a_naive_oracle() -> None:
    tape = _tape()
    book = OrderBook(fill_model=FillModel.FULL, fee_for=bps_fee(Decimal(10)), max_open_orders=1000)
    ledger = Ledger.single(ACCOUNT, Decimal(10000), Decimal(10))
    first = tape[0]
    now = first.event_time

    def place(body: dict[str, object], last: Decimal) -> None:
        outcome = book.place(ACCOUNT, parse_order(body), now_ms=now, last_price=last)
        for f in outcome.fills:
            ledger.apply_fill(f.symbol, f.side, f.quantity, f.price)

    place(_trailing_body("SELL"), first.price)
    place(_trailing_body("BUY"), first.price)
    place({"symbol": "XRPETH", "side": "BUY", "type": "LIMIT", "quantity": "10",
           "price": str(first.price * Decimal("0.97"))}, first.price)
    book.place_oco(ACCOUNT, parse_oco({
        "symbol": "XRPETH", "side": "SELL", "quantity": "5",
        "above": {"type": "LIMIT_MAKER", "price": str(first.price * Decimal("1.02"))},
        "below": {"type": "STOP_LOSS", "stopPrice": str(first.price * Decimal("0.98"))}}),
        now_ms=now, last_price=first.price)

    # Oracle state per armed trailing order: side, extreme since placement.
    oracle: dict[int, tuple[str, Decimal]] = {
        o.order_id: (o.side.value, first.price) for o in book.open_orders(ACCOUNT)
        if o.trailing_delta}
    triggers = 0
    oco_fills = 0
    k = Decimal(DELTA) / Decimal(10000)
    for trade in tape[1:]:
        now = trade.event_time
        p = trade.price
        expected = set()
        for oid, (side, extreme) in oracle.items():
            if side == "SELL":
                if p <= extreme * (1 - k):
                    expected.add(oid)
                else:
                    oracle[oid] = (side, max(extreme, p))
            else:
                if p >= extreme * (1 + k):
                    expected.add(oid)
                else:
                    oracle[oid] = (side, min(extreme, p))
        outcome = book.on_trade(trade, now_ms=now, max_tick_age_ms=5000)
        for f in outcome.fills:
            ledger.apply_fill(f.symbol, f.side, f.quantity, f.price)
        filled = {e.order.order_id for e in outcome.events
                  if isinstance(e, OrderEvent) and e.execution_type is ExecutionType.TRADE}
        assert filled & set(oracle) == expected, f"trade {trade.trade_id} at {p}"
        oco_fills += len([e for e in outcome.events if isinstance(e, OrderEvent)
                          and e.order.list_id is not None
                          and e.execution_type is ExecutionType.TRADE])
        for oid in expected:  # re-arm a fresh trailing stop on the same side
            side, _ = oracle.pop(oid)
            triggers += 1
            before = {o.order_id for o in book.open_orders(ACCOUNT)}
            place(_trailing_body(side), p)
            (new,) = {o.order_id for o in book.open_orders(ACCOUNT)} - before
            oracle[new] = (side, p)
    assert triggers >= 10, "the tape should trigger trailing stops repeatedly"
    assert oco_fills <= 1, "an OCO fills one leg at most"
    assert ledger.balance == ledger.starting_balance + ledger.realized_pnl - ledger.home_fees


def test_fill_models_measurement_on_the_xrp_tape() -> None:
    """The docs/trading.md measurement: same grid strategy, same tape, each model."""
    from tickdesk.bench.fill_models import load, run

    frames = load(data_file("freqtrade/XRP_OLD-trades.json.gz"))
    full = run(frames, FillModel.FULL)
    book = run(frames, FillModel.BOOK)
    assert full.partial_fills == 0 and full.fills == full.orders_filled
    assert book.partial_fills > 0 and book.fills > full.fills
    assert book.pnl != full.pnl
