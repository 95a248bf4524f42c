"""The pure Binance builders and stream-name rules, with plain values: the field
names and values Binance documents, our execution types mapped to Binance's."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from engine.binance import stream_payloads as bp
from engine.binance.stream_names import (
    StreamError,
    StreamKind,
    decode_request,
    is_stream_path,
    parse_stream,
    route,
)
from engine.messages import Trade
from engine.money import Side
from engine.protocol.enums import ExecutionType
from engine.trading.events import OrderEvent
from engine.trading.order import Order, OrderStatus, OrderType, TimeInForce


def _order(**kw: object) -> Order:
    base: dict[str, object] = dict(order_id=7, client_order_id="c7", account="a",
                                   symbol="BTCUSDT", side=Side.SELL, type=OrderType.LIMIT,
                                   status=OrderStatus.NEW, quantity=Decimal("0.5"),
                                   create_time=1000, update_time=1000,
                                   price=Decimal("100.5"), time_in_force=TimeInForce.GTC)
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


def _report(event: OrderEvent, fill: bp.FillFacts | None = None) -> dict[str, object]:
    return dict(orjson.loads(bp.execution_report(event, 2000, fill)))


def test_decimal_text_has_eight_places_and_keeps_finer_values_exact() -> None:
    assert bp.decimal_text(Decimal("1")) == "1.00000000"
    assert bp.decimal_text(Decimal("0.123456789")) == "0.123456789"
    assert bp.decimal_text(None) == "0.00000000"


@pytest.mark.parametrize(("ours", "binance"), [
    (ExecutionType.NEW, "NEW"), (ExecutionType.TRIGGERED, "NEW"),
    (ExecutionType.AMENDED, "REPLACED"), (ExecutionType.TRADE, "TRADE"),
    (ExecutionType.CANCELED, "CANCELED"), (ExecutionType.EXPIRED, "EXPIRED"),
    (ExecutionType.REJECTED, "REJECTED"),
])
def test_every_execution_type_has_a_binance_x(ours: ExecutionType, binance: str) -> None:
    assert _report(OrderEvent(ours, _order()))["x"] == binance


def test_a_partial_fill_report() -> None:
    order = _order(status=OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("0.2"),
                   avg_price=Decimal("100.5"), fee=Decimal("0.02"), update_time=1500)
    msg = _report(OrderEvent(ExecutionType.TRADE, order, Decimal("0.2"), Decimal("100.5")),
                  bp.FillFacts(Decimal("0.0201"), "USDT", 42, True))
    assert msg["e"] == "executionReport" and msg["E"] == 2000
    assert (msg["s"], msg["c"], msg["S"], msg["o"], msg["f"]) == (
        "BTCUSDT", "c7", "SELL", "LIMIT", "GTC")
    assert (msg["q"], msg["p"], msg["P"], msg["F"]) == (
        "0.50000000", "100.50000000", "0.00000000", "0.00000000")
    assert (msg["x"], msg["X"], msg["r"], msg["i"], msg["g"], msg["C"]) == (
        "TRADE", "PARTIALLY_FILLED", "NONE", 7, -1, "")
    assert (msg["l"], msg["z"], msg["L"]) == ("0.20000000", "0.20000000", "100.50000000")
    assert (msg["n"], msg["N"], msg["t"], msg["m"]) == ("0.02010000", "USDT", 42, True)
    assert (msg["T"], msg["O"], msg["W"], msg["w"]) == (1500, 1000, 1000, True)
    assert msg["Z"] == msg["Y"] == "20.10000000"  # 0.2 x 100.5
    assert "d" not in msg


def test_a_waiting_trailing_stop_is_binance_stop_loss_with_d_and_not_working() -> None:
    order = _order(type=OrderType.TRAILING_STOP, price=None, stop_price=None,
                   trailing_delta=150, time_in_force=None)
    msg = _report(OrderEvent(ExecutionType.NEW, order))
    assert (msg["o"], msg["d"], msg["w"], msg["f"]) == ("STOP_LOSS", 150, False, "GTC")
    assert "W" not in msg and msg["N"] is None and msg["t"] == -1


def test_a_cancel_names_the_canceled_client_id_and_a_reject_its_reason() -> None:
    canceled = _report(OrderEvent(ExecutionType.CANCELED, _order(status=OrderStatus.CANCELED)))
    assert (canceled["C"], canceled["w"]) == ("c7", False)
    rejected = _report(OrderEvent(ExecutionType.REJECTED, _order(
        status=OrderStatus.REJECTED, reject_reason="INSUFFICIENT_BALANCE: USDT ...")))
    assert rejected["r"] == "INSUFFICIENT_BALANCES"


def test_market_payloads() -> None:
    t = Trade("ETHUSDT", Decimal("2000.1"), Decimal("0.3"), 5, 4, 99, True)
    assert orjson.loads(bp.trade(t, 99, 5)) == {
        "e": "trade", "E": 5, "s": "ETHUSDT", "t": 99, "p": "2000.10000000",
        "q": "0.30000000", "T": 4, "m": True, "M": True}
    agg = orjson.loads(bp.agg_trade(t, 99, 5))
    assert (agg["a"], agg["f"], agg["l"]) == (99, 99, 99)
    assert orjson.loads(bp.book_ticker("ETHUSDT", 3, Decimal(1), Decimal(2), Decimal(3),
                                       Decimal(4))) == {
        "u": 3, "s": "ETHUSDT", "b": "1.00000000", "B": "2.00000000", "a": "3.00000000",
        "A": "4.00000000"}


def test_wrappings() -> None:
    payload = b'{"e":"trade"}'
    assert orjson.loads(bp.combined("x@trade", payload).payload) == {
        "stream": "x@trade", "data": {"e": "trade"}}
    assert orjson.loads(bp.subscription_event(0, payload).payload) == {
        "subscriptionId": 0, "event": {"e": "trade"}}
    assert bp.combined("x@bookTicker", payload, "k").conflate_key == "c:k"


def test_stream_names_and_paths() -> None:
    s = parse_stream("btcusdt@kline_1m")
    assert (s.symbol, s.kind, s.interval) == ("BTCUSDT", StreamKind.KLINE, "1m")
    assert parse_stream("btcusdt@aggTrade").kind is StreamKind.AGG_TRADE
    for bad in ("BTCUSDT@trade", "btcusdt@aggtrade", "btcusdt", "btcusdt@kline_2m"):
        with pytest.raises(ValueError):
            parse_stream(bad)
    assert all(is_stream_path(p) for p in ("/ws", "/ws/x@trade", "/stream", "/ws/key"))
    assert not any(is_stream_path(p) for p in ("/ws/a/b", "/wsx", "/api/ws/realtime"))
    r = route("/stream", {"streams": ["btcusdt@trade/lk1/btcusdt@trade"]})
    assert r.combined and r.listen_key == "lk1" and [x.name for x in r.streams] == [
        "btcusdt@trade"]


@pytest.mark.parametrize(("frame", "code", "rid"), [
    (b"[1]", 3, None),
    (b'{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": true}', 1, None),
    (b'{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": "not-alnum!"}', 1, None),
    (b'{"method": "SUBSCRIBE", "params": [], "id": 4}', 1, 4),
    (b'{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 4, "extra": 0}', 0, 4),
])
def test_bad_requests(frame: bytes, code: int, rid: object) -> None:
    with pytest.raises(StreamError) as info:
        decode_request(frame)
    assert (int(info.value.code), info.value.request_id) == (code, rid)


def test_request_ids_binance_accepts() -> None:
    for rid in (None, 0, 2 ** 63 - 1, "abc123"):
        assert decode_request(orjson.dumps({"method": "LIST_SUBSCRIPTIONS",
                                            "id": rid})).request_id == rid


def test_kline_events_send_the_replaced_bar_final_then_the_new_one() -> None:
    from engine.market.klines import KlineBook

    book = KlineBook(max_bars=10)
    events = bp.KlineEvents()
    wanted = {"btcusdt@kline_1m"}.__contains__
    first = events.on_bars(book.on_trade("BTCUSDT", Decimal("10"), Decimal("1"), 60_000),
                           60_001, wanted)
    assert [(name, final) for name, _, final in first] == [("btcusdt@kline_1m", False)]
    k = orjson.loads(first[0][1])["k"]
    assert (k["t"], k["T"], k["i"], k["o"], k["c"], k["n"], k["x"]) == (
        60_000, 119_999, "1m", "10.00000000", "10.00000000", 1, False)
    events.on_bars(book.on_trade("BTCUSDT", Decimal("12"), Decimal("2"), 61_000), 61_001,
                   wanted)
    rolled = events.on_bars(book.on_trade("BTCUSDT", Decimal("11"), Decimal("1"), 120_000),
                            120_001, wanted)
    assert [final for _, _, final in rolled] == [True, False]
    final, new = (orjson.loads(p)["k"] for _, p, _ in rolled)
    assert (final["t"], final["x"], final["h"], final["c"], final["v"], final["q"]) == (
        60_000, True, "12.00000000", "12.00000000", "3.00000000", "34.00000000")
    assert (new["t"], new["x"], new["o"]) == (120_000, False, "11.00000000")
