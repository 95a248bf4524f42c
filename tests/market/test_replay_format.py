"""Replay formats from in-memory text (no files), and pacing."""

from __future__ import annotations

import contextlib
import gzip
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.market.replay_format import (
    DEFAULT_MAX_DELAY_MS,
    ReplayFormat,
    ReplayRecord,
    detect_format,
    freqtrade_records,
    iter_records,
    json_document_records,
    records_from_bytes,
    replay_delay_ms,
)

FRAME = '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}'
CRYPTOFEED = (
    "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade <-> 1633998511.159679\n"
    f"1633998512.0633569: {FRAME}\n"
    '1633998513: {"a": "b: c"}\n'
    "garbage line\n"
    "\n"
)


def test_cryptofeed_lines() -> None:
    assert list(iter_records(io.StringIO(CRYPTOFEED))) == [
        ReplayRecord(1633998512063, FRAME),
        ReplayRecord(1633998513000, '{"a": "b: c"}'),
        ReplayRecord(None, "garbage line"),  # passed on: the codec drops it visibly
    ]
    assert detect_format(CRYPTOFEED.encode()) is ReplayFormat.CRYPTOFEED


def test_json_lines_skip_blank_lines() -> None:
    text = f'\n{FRAME}\n\n   \n{{"result":null,"id":1}}\r\n'
    assert list(iter_records(text.splitlines())) == [
        ReplayRecord(None, FRAME),
        ReplayRecord(None, '{"result":null,"id":1}'),
    ]
    assert detect_format(text.encode()) is ReplayFormat.JSON_LINES
    assert records_from_bytes(text.encode()) == list(iter_records(text.splitlines()))


def test_empty_inputs() -> None:
    assert list(iter_records([])) == []
    assert list(iter_records(["", "  "])) == []
    assert detect_format(b"") is ReplayFormat.UNKNOWN
    assert detect_format(b"hello") is ReplayFormat.UNKNOWN
    with pytest.raises(ValueError):
        records_from_bytes(b"hello")


def test_json_document_object_and_array() -> None:
    pretty = json.dumps(json.loads(FRAME), indent=2)
    assert detect_format(pretty.encode()) is ReplayFormat.JSON_DOCUMENT
    assert json_document_records(pretty) == [ReplayRecord(None, pretty)]
    array = json.dumps([json.loads(FRAME), {"result": None, "id": 1}], indent=1)
    assert detect_format(array.encode()) is ReplayFormat.JSON_DOCUMENT
    assert records_from_bytes(array.encode()) == [
        ReplayRecord(None, FRAME),
        ReplayRecord(None, '{"result":null,"id":1}'),
    ]
    assert json_document_records("{broken") == [ReplayRecord(None, "{broken")]


def _ccxt(a: int, info: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "info": info
        if info is not None
        else {"a": a, "p": "0.5", "q": "2", "f": a, "l": a, "T": 1000 + a, "m": False},
        "symbol": "XRP/ETH",
        "id": str(a),
        "price": 0.5,
    }


def test_freqtrade_gzip_and_plain() -> None:
    trades = [_ccxt(1), _ccxt(2), 5, {"symbol": "XRP/ETH"}]
    plain = json.dumps(trades).encode()
    gz = gzip.compress(plain)
    assert detect_format(gz) is ReplayFormat.GZIP
    assert detect_format(plain) is ReplayFormat.FREQTRADE_TRADES
    expected = [
        ReplayRecord(
            None,
            '{"e":"aggTrade","E":1001,"s":"XRPETH","a":1,"p":"0.5","q":"2","f":1,"l":1,'
            '"T":1001,"m":false}',
        ),
        ReplayRecord(
            None,
            '{"e":"aggTrade","E":1002,"s":"XRPETH","a":2,"p":"0.5","q":"2","f":2,"l":2,'
            '"T":1002,"m":false}',
        ),
        ReplayRecord(None, "5"),
        ReplayRecord(None, '{"symbol":"XRP/ETH"}'),
    ]
    assert records_from_bytes(gz) == expected
    assert freqtrade_records(gz) == expected
    assert freqtrade_records(plain.decode()) == expected
    with pytest.raises(ValueError):
        freqtrade_records(b"{}")


def test_bad_gzip_raises_value_error() -> None:
    with pytest.raises(ValueError, match="gzip"):
        records_from_bytes(b"\x1f\x8bnot really gzip")


@pytest.mark.parametrize(
    ("prev", "nxt", "speed", "expected"),
    [
        (None, 1000, 1.0, 0),  # first frame
        (1000, 1250, 1.0, 250),
        (1000, 1250, 2.0, 125),
        (1000, 1250, 0.5, 500),
        (1000, 1250, 0.0, 0),  # as fast as possible
        (1000, 1000, 1.0, 0),
        (1000, 900, 1.0, 0),  # out of order
        (0, 3_600_000, 1.0, DEFAULT_MAX_DELAY_MS),  # an hour's hole: capped at 5 s
        (0, 4000, 0.5, DEFAULT_MAX_DELAY_MS),
        (0, 10**12, 5e-324, DEFAULT_MAX_DELAY_MS),
        (0, 3, 2.0, 2),  # 1.5 rounds to even
    ],
)
def test_replay_delay(prev: int | None, nxt: int, speed: float, expected: int) -> None:
    assert replay_delay_ms(prev, nxt, speed) == expected


@pytest.mark.parametrize("speed", [-1.0, float("nan"), float("inf")])
def test_replay_delay_rejects_bad_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        replay_delay_ms(0, 1, speed)


@given(
    st.none() | st.integers(-(10**15), 10**15),
    st.integers(-(10**15), 10**15),
    st.floats(0, 1000),
    st.integers(0, 60_000),
)
def test_replay_delay_bounds(prev: int | None, nxt: int, speed: float, cap: int) -> None:
    assert 0 <= replay_delay_ms(prev, nxt, speed, cap) <= cap


@given(st.lists(st.text(max_size=80), max_size=20))
def test_iter_records_never_raises(lines: list[str]) -> None:
    for rec in iter_records(lines):
        assert isinstance(rec.frame, str)


@given(st.binary(max_size=300))
def test_detect_format_never_raises(head: bytes) -> None:
    assert isinstance(detect_format(head), ReplayFormat)


@given(st.binary(max_size=400))
def test_records_from_bytes_raises_only_value_error(data: bytes) -> None:
    try:
        records = records_from_bytes(data)
    except ValueError:
        return
    assert all(isinstance(r.frame, str) for r in records)


@given(st.binary(max_size=400))
def test_records_from_gzip_bytes_raises_only_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):  # only ValueError may escape
        records_from_bytes(gzip.compress(data))
