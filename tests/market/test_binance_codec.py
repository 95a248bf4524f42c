"""The Binance codec: exact decoding, every drop reason, builders, and fuzzing."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.binance_codec import (
    CodecStats,
    ControlError,
    ControlReply,
    Decoded,
    Dropped,
    DropReason,
    Ignored,
    ServerShutdown,
    combined_url,
    decode_frame,
    kind_of,
    list_subscriptions_request,
    stream_names,
    streams_per_symbol,
    subscribe_request,
    unsubscribe_request,
)
from engine.messages import Ticker24h, Trade

AGG = {
    "e": "aggTrade",
    "E": 123456789,
    "s": "bnbbtc",
    "a": 12345,
    "p": "0.001",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 123456785,
    "m": True,
    "M": True,
}
TICKER = {
    "e": "24hrTicker", "E": 123456789, "s": "BNBBTC", "p": "-0.0015", "P": "-250.00",
    "w": "0.0018", "x": "0.0009", "c": "0.0025", "Q": "10", "b": "0.0024", "B": "10",
    "a": "0.0026", "A": "100", "o": "0.0010", "h": "0.0025", "l": "0.0010", "v": "10000",
    "q": "18", "O": 0, "C": 86400000, "F": 0, "L": 18150, "n": 18151,
}  # fmt: skip


def dumps(obj: object) -> str:
    # stdlib json: it also writes what orjson refuses (big ints, NaN)
    return json.dumps(obj, separators=(",", ":"))


def with_(base: dict[str, object], **changes: object) -> str:
    d = dict(base)
    for k, v in changes.items():
        if v is _DEL:
            d.pop(k)
        else:
            d[k] = v
    return dumps(d)


_DEL = object()


def test_agg_trade_raw_and_combined_are_equal() -> None:
    expected = Trade(
        symbol="BNBBTC",
        price=Decimal("0.001"),
        quantity=Decimal("100"),
        event_time=123456789,
        trade_time=123456785,
        trade_id=12345,
        buyer_is_maker=True,
    )
    assert decode_frame(dumps(AGG)) == expected
    assert decode_frame(dumps({"stream": "bnbbtc@aggTrade", "data": AGG})) == expected
    assert decode_frame(dumps(AGG).encode()) == expected


def test_trade_event_uses_t_as_id() -> None:
    frame = with_(AGG, e="trade", t=777, a=99999, b=88888)
    got = decode_frame(frame)
    assert isinstance(got, Trade) and got.trade_id == 777


def test_unknown_fields_tolerated_and_m_optional() -> None:
    got = decode_frame(with_(AGG, m=_DEL, extra={"x": [1, 2]}, Z="z"))
    assert isinstance(got, Trade) and got.buyer_is_maker is None


def test_ticker() -> None:
    assert decode_frame(dumps({"stream": "bnbbtc@ticker", "data": TICKER})) == Ticker24h(
        symbol="BNBBTC",
        event_time=123456789,
        price_change=Decimal("-0.0015"),
        price_change_percent=Decimal("-250.00"),
        high=Decimal("0.0025"),
        low=Decimal("0.0010"),
        volume=Decimal("10000"),
        last_price=Decimal("0.0025"),
        bid=Decimal("0.0024"),
        ask=Decimal("0.0026"),
    )


def test_ticker_empty_book_side_and_zero_volume() -> None:
    got = decode_frame(with_(TICKER, b="0.00000000", a=_DEL, v="0.0", c=_DEL))
    assert isinstance(got, Ticker24h)
    assert (got.bid, got.ask, got.volume, got.last_price) == (None, None, Decimal(0), None)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"result":null,"id":1}', ControlReply(1, None)),
        ('{"result":["btcusdt@aggtrade"],"id":3}', ControlReply(3, ["btcusdt@aggtrade"])),
        ('{"result":null,"id":"abc"}', ControlReply("abc", None)),
        (
            '{"error":{"code":2,"msg":"Invalid request: unknown stream"},"id":7}',
            ControlError(7, 2, "Invalid request: unknown stream"),
        ),
        (
            '{"code":0,"msg":"Unknown property","id":null}',
            ControlError(None, 0, "Unknown property"),
        ),
        ('{"e":"serverShutdown","E":1700000000000}', ServerShutdown(1700000000000)),
        ('{"e":"serverShutdown"}', ServerShutdown(None)),
        ('{"stream":"x@depth@100ms","data":{"e":"depthUpdate","E":1}}', Ignored("depthUpdate")),
        ('{"lastUpdateId":5,"bids":[],"asks":[]}', Ignored("depth")),
        ('{"stream":"!ticker@arr","data":[]}', Ignored("ticker")),
        ('[{"e":"24hrTicker"}]', Ignored("array")),
        ('{"e":"kline","E":1,"s":"X","k":{}}', Ignored("kline")),
    ],
)
def test_control_and_ignored(frame: str, expected: Decoded) -> None:
    assert decode_frame(frame) == expected


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("", DropReason.NOT_JSON),
        ("not json", DropReason.NOT_JSON),
        (b"\xff\xfe", DropReason.NOT_JSON),
        ('{"a":1', DropReason.NOT_JSON),
        ("NaN", DropReason.NOT_JSON),
        ("42", DropReason.NOT_OBJECT),
        ('"s"', DropReason.NOT_OBJECT),
        ("null", DropReason.NOT_OBJECT),
        ('{"stream":1,"data":{}}', DropReason.BAD_ENVELOPE),
        ('{"stream":"a@b","data":5}', DropReason.NOT_OBJECT),
        ('{"foo":1}', DropReason.UNRECOGNIZED),
        ('{"e":5}', DropReason.BAD_TYPE),
        ('{"error":"x","id":1}', DropReason.BAD_TYPE),
        ('{"error":{"code":"2","msg":"x"},"id":1}', DropReason.BAD_TYPE),
        ('{"error":{"code":2},"id":1}', DropReason.MISSING_FIELD),
        ('{"result":null,"id":[1]}', DropReason.BAD_TYPE),
        ('{"result":null,"id":true}', DropReason.BAD_TYPE),
        (with_(AGG, p=_DEL), DropReason.MISSING_FIELD),
        (with_(AGG, s=_DEL), DropReason.MISSING_FIELD),
        (with_(AGG, E=_DEL), DropReason.MISSING_FIELD),
        (with_(AGG, a=_DEL), DropReason.MISSING_FIELD),
        (with_(AGG, p=0.001), DropReason.BAD_TYPE),
        (with_(AGG, p=None), DropReason.BAD_TYPE),
        (with_(AGG, p="NaN"), DropReason.BAD_NUMBER),
        (with_(AGG, p="nan"), DropReason.BAD_NUMBER),
        (with_(AGG, p="Infinity"), DropReason.BAD_NUMBER),
        (with_(AGG, p="-Infinity"), DropReason.BAD_NUMBER),
        (with_(AGG, p="1e5"), DropReason.BAD_NUMBER),
        (with_(AGG, p="1_000"), DropReason.BAD_NUMBER),
        (with_(AGG, p=" 1"), DropReason.BAD_NUMBER),
        (with_(AGG, p="\u0661"), DropReason.BAD_NUMBER),  # Arabic-Indic digit one
        (with_(AGG, p="-0.001"), DropReason.BAD_NUMBER),
        (with_(AGG, p=""), DropReason.BAD_NUMBER),
        (with_(AGG, p="1" * 65), DropReason.BAD_NUMBER),
        (with_(AGG, p="0.00000000"), DropReason.NON_POSITIVE),
        (with_(AGG, q="0"), DropReason.NON_POSITIVE),
        (with_(AGG, E="1"), DropReason.BAD_TYPE),
        (with_(AGG, E=1.5), DropReason.BAD_TYPE),
        (with_(AGG, E=True), DropReason.BAD_TYPE),
        (with_(AGG, E=-1), DropReason.BAD_VALUE),
        (with_(AGG, T=10**30), DropReason.BAD_TYPE),  # orjson gives a float
        (with_(AGG, m="true"), DropReason.BAD_TYPE),
        (with_(AGG, s=""), DropReason.BAD_VALUE),
        (with_(AGG, s="BTC/USDT"), DropReason.BAD_VALUE),
        (with_(AGG, s=5), DropReason.BAD_TYPE),
        (with_(TICKER, h="0"), DropReason.NON_POSITIVE),
        (with_(TICKER, p="--1"), DropReason.BAD_NUMBER),
        (with_(TICKER, v="-1"), DropReason.BAD_NUMBER),
        (with_(TICKER, b="x"), DropReason.BAD_NUMBER),
        (with_(TICKER, P=_DEL), DropReason.MISSING_FIELD),
    ],
)
def test_drop_reasons(frame: str | bytes, reason: DropReason) -> None:
    got = decode_frame(frame)
    assert isinstance(got, Dropped), got
    assert got.reason is reason, got


def test_stats_count_by_kind_and_reason() -> None:
    stats = CodecStats()
    frames = [dumps(AGG), dumps(TICKER), "x", "y", '{"e":"kline"}', '{"result":null,"id":1}']
    for f in frames:
        stats.record(decode_frame(f))
    assert stats.total == 6
    assert stats.snapshot() == {
        "decoded": {
            "trade": 1, "ticker": 1, "dropped": 2, "ignored": 1, "control_reply": 1,
        },
        "ignored": {"kline": 1},
        "dropped": {"not_json": 2},
    }  # fmt: skip
    assert kind_of(ServerShutdown(None)) == "server_shutdown"
    assert kind_of(ControlError(1, 2, "m")) == "control_error"


def test_builders() -> None:
    assert stream_names("BTCUSDT") == ["btcusdt@aggTrade", "btcusdt@ticker",
                                       "btcusdt@bookTicker"]
    assert stream_names("BTCUSDT", 10) == ["btcusdt@aggTrade", "btcusdt@ticker",
                                           "btcusdt@bookTicker", "btcusdt@depth10@100ms"]
    assert streams_per_symbol(0) == 3 and streams_per_symbol(20) == 4
    assert (
        combined_url("wss://stream.binance.com:9443/", ["a@aggTrade", "b@ticker"])
        == "wss://stream.binance.com:9443/stream?streams=a@aggTrade/b@ticker"
    )
    assert orjson.loads(subscribe_request(1, ["btcusdt@aggTrade"])) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@aggTrade"],
        "id": 1,
    }
    assert orjson.loads(unsubscribe_request("x", ("a@ticker",))) == {
        "method": "UNSUBSCRIBE",
        "params": ["a@ticker"],
        "id": "x",
    }
    assert list_subscriptions_request(3) == '{"method":"LIST_SUBSCRIPTIONS","id":3}'


@pytest.mark.parametrize(
    "call",
    [
        lambda: stream_names("btc/usdt"),
        lambda: stream_names(""),
        lambda: stream_names("BTCUSDT", 15),
        lambda: streams_per_symbol(1),
        lambda: combined_url("wss://x", []),
        lambda: combined_url("wss://x", "btcusdt@ticker"),
        lambda: combined_url("", ["a@ticker"]),
        lambda: combined_url("wss://x", ["a b"]),
        lambda: combined_url("wss://x", ["a/b"]),
        lambda: combined_url("wss://x", [f"s{i}@ticker" for i in range(1025)]),
        lambda: subscribe_request(True, ["a@ticker"]),
        lambda: subscribe_request(1.5, ["a@ticker"]),  # type: ignore[arg-type, unused-ignore]
        lambda: unsubscribe_request(1, ["a?b"]),
    ],
)
def test_builders_reject_bad_input(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------- fuzzing

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=20,
)
_field_values = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["0", "-1", "NaN", "Infinity", "1e3", "0.5", "00", "1."])
)  # fmt: skip


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_fuzz_bytes_never_raise(data: bytes) -> None:
    assert kind_of(decode_frame(data))


@settings(max_examples=400)
@given(st.text(max_size=200))
def test_fuzz_text_never_raise(text: str) -> None:
    assert kind_of(decode_frame(text))


@settings(max_examples=400)
@given(_json)
def test_fuzz_json_never_raise(value: object) -> None:
    assert kind_of(decode_frame(dumps(value)))
    assert kind_of(decode_frame(dumps({"stream": "x@y", "data": value})))


@settings(max_examples=600)
@given(
    st.sampled_from([AGG, TICKER, dict(AGG, e="trade", t=1)]),
    st.dictionaries(st.sampled_from(sorted(set(AGG) | set(TICKER) | {"t"})), _field_values),
    st.booleans(),
)
def test_fuzz_mutated_events(
    base: dict[str, object], changes: dict[str, object], wrap: bool
) -> None:
    event = {**base, **changes}
    frame = dumps({"stream": "s@aggTrade", "data": event} if wrap else event)
    got = decode_frame(frame)
    assert kind_of(got)
    if isinstance(got, Trade):
        assert got.price > 0 and got.quantity > 0
        assert got.price.is_finite() and got.quantity.is_finite()
        assert got.symbol == got.symbol.upper()
