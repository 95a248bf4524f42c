"""Fills at the book on a real Binance.US recording (OMGBUSD, 2021-10-12:
58 bookTicker and 11 aggTrade frames in arrival order).

The test reads the recording with its own small reader (no engine parser),
places a set of orders, and checks every fill the engine makes (which order,
on which frame, quantity, price, status, cumulative quantity and average
price) against a reference simulation written here from the rules in
docs/trading.md "Fill model" (best bid/ask only, as the tape has no depth
snapshots). The reference never calls the engine's fill model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from engine.messages import BookTicker, Trade
from engine.trading import ExecutionType, OrderBook, OrderEvent, parse_amend, parse_order
from engine.trading.errors import AmendRefused
from engine.trading.fill_model import FillModel
from tests.market.conftest import data_file

SYMBOL = "OMGBUSD"
ACCOUNT = "tape"
SLIP = Decimal(5)  # bps
BPS = Decimal(10000)


@dataclass(frozen=True)
class Frame:
    index: int
    at_ms: int
    item: BookTicker | Trade


def _frames() -> list[Frame]:
    """``<receive seconds>: <combined-stream frame>`` lines, OMGBUSD only."""
    lines = data_file("cryptofeed/BINANCE_US.ws.1.0").read_text().split("\n")[1:]
    out: list[Frame] = []
    for line in lines:
        if not line:
            continue
        seconds, _, text = line.partition(": ")
        frame = json.loads(text)
        stream: str = frame["stream"]
        data = frame["data"]
        at = int(Decimal(seconds) * 1000)
        if stream == "omgbusd@bookTicker":
            item: BookTicker | Trade = BookTicker(
                SYMBOL, Decimal(data["b"]), Decimal(data["B"]), Decimal(data["a"]),
                Decimal(data["A"]), int(data["u"]), at)
        elif stream == "omgbusd@aggTrade":
            item = Trade(SYMBOL, Decimal(data["p"]), Decimal(data["q"]), int(data["E"]),
                         int(data["T"]), int(data["a"]), bool(data["m"]))
        else:
            continue
        out.append(Frame(len(out), at, item))
    assert sum(isinstance(f.item, Trade) for f in out) == 11
    assert sum(isinstance(f.item, BookTicker) for f in out) == 58
    return out


# Orders placed right after the bookTicker with this update id.
P1 = 77819474  # bid 13.7664 x 30.28, ask 13.7950 x 2.49, no trade yet
P2 = 77819555  # after the 13.8048 / 13.8076 prints: last trade 13.8076
P3 = 77819613  # amend time
ORDERS: dict[int, list[dict[str, Any]]] = {
    P1: [
        {"clientOrderId": "A", "side": "BUY", "type": "MARKET", "quantity": "10"},
        {"clientOrderId": "B", "side": "BUY", "type": "LIMIT", "quantity": "50",
         "price": "13.7664"},
        {"clientOrderId": "C", "side": "SELL", "type": "LIMIT", "quantity": "100",
         "price": "13.8000"},
        {"clientOrderId": "D1", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "5",
         "price": "13.7950"},
        {"clientOrderId": "D2", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "5",
         "price": "13.7900"},
        {"clientOrderId": "E", "side": "BUY", "type": "LIMIT", "quantity": "10",
         "price": "13.7950", "timeInForce": "IOC"},
        {"clientOrderId": "F1", "side": "BUY", "type": "LIMIT", "quantity": "10",
         "price": "13.7950", "timeInForce": "FOK"},
        {"clientOrderId": "F2", "side": "BUY", "type": "LIMIT", "quantity": "2",
         "price": "13.7950", "timeInForce": "FOK"},
        {"clientOrderId": "G", "side": "SELL", "type": "STOP_LOSS", "quantity": "3",
         "stopPrice": "13.7800"},
        {"clientOrderId": "H", "side": "SELL", "type": "LIMIT", "quantity": "30",
         "price": "13.8000", "icebergQty": "10"},
        {"clientOrderId": "I", "side": "BUY", "type": "LIMIT", "quantity": "40",
         "price": "13.7769"},
    ],
    P2: [
        {"clientOrderId": "J", "side": "SELL", "type": "LIMIT_MAKER", "quantity": "5",
         "price": "13.8000"},
    ],
}
AMENDS = {P3: [("I", Decimal(20)), ("I", Decimal(25))]}  # the second is an increase


# ------------------------------------------------------------ the reference


@dataclass
class RefOrder:
    key: str
    side: str
    kind: str
    quantity: Decimal
    price: Decimal | None
    tif: str
    iceberg: Decimal | None
    stop: Decimal | None
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: str = "NEW"
    resting: bool = False
    ahead: Decimal | None = Decimal(0)  # None: the book has not shown our price yet
    slice: Decimal | None = None
    log: list[tuple[int, Decimal, Decimal, str, Decimal, Decimal]] = field(default_factory=list)


class Reference:
    """docs/trading.md's rules with a best bid/ask book, one order at a time."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.bid: tuple[Decimal, Decimal] | None = None
        self.ask: tuple[Decimal, Decimal] | None = None
        self.orders: list[RefOrder] = []
        self.rejected: list[str] = []

    def fill(self, o: RefOrder, index: int, qty: Decimal, price: Decimal) -> None:
        o.filled += qty
        o.notional += qty * price
        o.status = "FILLED" if o.filled == o.quantity else "PARTIALLY_FILLED"
        o.log.append((index, qty, price, o.status, o.filled, o.notional / o.filled))

    def join(self, o: RefOrder) -> None:
        """Start resting (or refill an iceberg slice): behind what the book shows."""
        o.resting = True
        o.ahead = Decimal(0)
        if self.model == "queue":
            best = self.bid if o.side == "BUY" else self.ask
            assert best is not None and o.price is not None
            if best[0] == o.price:
                o.ahead = best[1]
            elif (best[0] > o.price) if o.side == "BUY" else (best[0] < o.price):
                o.ahead = None  # deeper than the one level we know
        if o.iceberg is not None:
            o.slice = min(o.iceberg, o.quantity - o.filled)

    def take(self, o: RefOrder, index: int, limit: Decimal | None) -> None:
        """Walk the one known level, then beyond it at the slipped price."""
        best = self.ask if o.side == "BUY" else self.bid
        assert best is not None
        price, size = best
        left = o.quantity - o.filled
        buy = o.side == "BUY"
        if limit is not None and (price > limit if buy else price < limit):
            parts: list[tuple[Decimal, Decimal]] = []
        else:
            parts = [(min(left, size), price)]
            rest = left - parts[0][0]
            beyond = price * (BPS + SLIP) / BPS if buy else price * (BPS - SLIP) / BPS
            if rest > 0 and (limit is None or (beyond <= limit if buy else beyond >= limit)):
                parts.append((rest, beyond))
        if o.tif == "FOK" and sum(q for q, _ in parts) < left:
            parts = []
        for qty, p in parts:
            self.fill(o, index, qty, p)
        if o.status != "FILLED" and limit is not None:
            if o.tif in ("IOC", "FOK"):
                o.status = "EXPIRED"
            else:
                self.join(o)

    def place(self, body: dict[str, Any], index: int) -> None:
        kind = body["type"]
        price = Decimal(body["price"]) if "price" in body else None
        o = RefOrder(body["clientOrderId"], body["side"], kind, Decimal(body["quantity"]),
                     price, body.get("timeInForce", "GTC"),
                     Decimal(body["icebergQty"]) if "icebergQty" in body else None,
                     Decimal(body["stopPrice"]) if "stopPrice" in body else None)
        if kind == "LIMIT_MAKER":
            assert price is not None and self.bid is not None and self.ask is not None
            if (price >= self.ask[0]) if o.side == "BUY" else (price <= self.bid[0]):
                self.rejected.append(o.key)
                return
            self.join(o)
        elif kind in ("MARKET", "LIMIT"):
            self.take(o, index, price)
        self.orders.append(o)

    def on_book(self, b: BookTicker) -> None:
        self.bid, self.ask = (b.bid, b.bid_qty), (b.ask, b.ask_qty)
        if self.model != "queue":
            return
        for o in self.orders:
            if not o.resting or o.status not in ("NEW", "PARTIALLY_FILLED"):
                continue
            level = self.bid if o.side == "BUY" else self.ask
            assert o.price is not None
            if level[0] == o.price:
                o.ahead = level[1] if o.ahead is None else min(o.ahead, level[1])
            elif (level[0] < o.price) if o.side == "BUY" else (level[0] > o.price):
                o.ahead = Decimal(0)  # our price is now better than the best: nothing ahead

    def on_trade(self, t: Trade, index: int) -> None:
        for o in self.orders:
            if o.status not in ("NEW", "PARTIALLY_FILLED"):
                continue
            buy = o.side == "BUY"
            if o.resting:
                assert o.price is not None
                if not (t.price <= o.price if buy else t.price >= o.price):
                    continue
                volume = t.quantity
                if self.model == "queue":
                    if o.ahead is None:
                        o.ahead = Decimal(0)
                    if t.price == o.price:
                        eaten = min(o.ahead, volume)
                        o.ahead -= eaten
                        volume -= eaten
                    else:
                        o.ahead = Decimal(0)
                visible = o.slice if o.slice is not None else o.quantity - o.filled
                qty = min(visible, volume)
                if qty > 0:
                    self.fill(o, index, qty, o.price)
                    if o.slice is not None:
                        o.slice -= qty
                        if o.slice == 0 and o.status != "FILLED":
                            self.join(o)
            elif o.kind == "STOP_LOSS":
                assert o.stop is not None
                if (t.price >= o.stop) if buy else (t.price <= o.stop):
                    o.kind = "TRIGGERED"
                    self.take(o, index, None)

    def amend(self, key: str, qty: Decimal) -> bool:
        (o,) = [o for o in self.orders if o.key == key]
        if not o.filled < qty < o.quantity:
            return False
        o.quantity = qty
        if o.slice is not None:
            o.slice = min(o.slice, qty - o.filled)
        return True


# ------------------------------------------------------------ the engine run


def _run_engine(model: FillModel, frames: list[Frame]) -> tuple[
        dict[str, list[tuple[int, Decimal, Decimal, str, Decimal, Decimal]]], set[str],
        dict[str, str], list[bool]]:
    book = OrderBook(fill_model=model, max_open_orders=100)
    keys: dict[int, str] = {}
    log: dict[str, list[tuple[int, Decimal, Decimal, str, Decimal, Decimal]]] = {}
    rejected: set[str] = set()
    amended: list[bool] = []
    last: Decimal | None = None

    def record(index: int, at: int, events: list[OrderEvent], fills: list[Any]) -> None:
        trade_events = [e for e in events if e.execution_type is ExecutionType.TRADE]
        assert len(trade_events) == len(fills)
        for event, f in zip(trade_events, fills, strict=True):
            order = event.order
            keys.setdefault(order.order_id, order.client_order_id)
            assert f.time == at, "a fill happens on the frame that caused it"
            assert (event.last_qty, event.last_price) == (f.quantity, f.price)
            log.setdefault(order.client_order_id, []).append(
                (index, f.quantity, f.price, order.status.value, order.filled_quantity,
                 order.avg_price))

    for frame in frames:
        item = frame.item
        if isinstance(item, BookTicker):
            book.on_book(item, now_ms=frame.at_ms)
            for body in ORDERS.get(item.update_id, []):
                out = book.place(ACCOUNT, parse_order({"symbol": SYMBOL, **body}),
                                 now_ms=frame.at_ms, last_price=last, slippage_bps=SLIP)
                events = out.order_events()
                if events[0].execution_type is ExecutionType.REJECTED:
                    rejected.add(body["clientOrderId"])
                record(frame.index, frame.at_ms, events, list(out.fills))
            for key, qty in AMENDS.get(item.update_id, []):
                try:
                    book.amend(ACCOUNT, parse_amend({"clientOrderId": key, "newQty": str(qty)}),
                               now_ms=frame.at_ms)
                    amended.append(True)
                except AmendRefused:
                    amended.append(False)
        else:
            last = item.price
            out = book.on_trade(item, now_ms=frame.at_ms, slippage_bps=SLIP)
            record(frame.index, frame.at_ms, out.order_events(), list(out.fills))
    final = {o.client_order_id: o.status.value for o in book.all_orders(ACCOUNT)}
    return log, rejected, final, amended


def _run_reference(model: str, frames: list[Frame]) -> tuple[
        dict[str, list[tuple[int, Decimal, Decimal, str, Decimal, Decimal]]], set[str],
        dict[str, str], list[bool]]:
    ref = Reference(model)
    amended: list[bool] = []
    for frame in frames:
        item = frame.item
        if isinstance(item, BookTicker):
            ref.on_book(item)
            for body in ORDERS.get(item.update_id, []):
                ref.place(body, frame.index)
            for key, qty in AMENDS.get(item.update_id, []):
                amended.append(ref.amend(key, qty))
        else:
            ref.on_trade(item, frame.index)
    log = {o.key: o.log for o in ref.orders if o.log}
    return log, set(ref.rejected), {o.key: o.status for o in ref.orders}, amended


@pytest.mark.parametrize("model", [FillModel.BOOK, FillModel.QUEUE])
def test_every_fill_on_a_real_tape_follows_the_documented_model(model: FillModel) -> None:
    frames = _frames()
    got = _run_engine(model, frames)
    want = _run_reference(model.value, frames)
    log, rejected, final, amended = got
    assert log == want[0]
    assert rejected == want[1] == {"D1"}
    assert final == want[2]
    assert amended == want[3] == [True, False]
    # the tape exercises what it should: partial fills, walking past the best
    # level, an expired IOC remainder, an expired FOK, a triggered stop, and
    # an iceberg filling more than one slice
    partial = {k for k, fs in log.items() if any(f[3] == "PARTIALLY_FILLED" for f in fs)}
    assert {"A", "B", "C", "H", "I"} <= partial
    assert final["E"] == "EXPIRED" and log["E"][0][1] == Decimal("2.49")
    assert final["F1"] == "EXPIRED" and "F1" not in log
    assert final["F2"] == "FILLED" and "G" in log
    assert len(log["H"]) >= 3 and final["J"] == "FILLED"


def test_the_queue_model_fills_less_than_the_book_model_on_the_same_tape() -> None:
    frames = _frames()
    book_log = _run_engine(FillModel.BOOK, frames)[0]
    queue_log = _run_engine(FillModel.QUEUE, frames)[0]
    # B rested at the best bid behind 30.28: the 30.28 print at its price only
    # moved the queue, so it filled less
    assert sum(q for _, q, *_ in queue_log["B"]) < sum(q for _, q, *_ in book_log["B"])
