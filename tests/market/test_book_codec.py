"""The codec's book frames: @bookTicker and partial depth, from real captured frames,
and every way a bad book frame is dropped (typed, counted, never raised)."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.binance_codec import (
    CodecStats,
    Dropped,
    DropReason,
    Ignored,
    decode_frame,
    kind_of,
)
from engine.market.replay_format import records_from_bytes
from engine.messages import BookTicker, DepthSnapshot
from tests.market.conftest import data_file

# Frames copied byte for byte from the captures in shared/data (cryptofeed
# BINANCE.ws.1.0 line 12; gocryptotrader wsSpot.json lines 5 and 6).
BOOK_TICKER = (
    '{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000",'
    '"B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}'
)
DEPTH5 = (
    '{"stream":"btcusdt@depth5","data":{"lastUpdateId":101096708675,"bids":[["86104.01000000",'
    '"7.31683000"],["86104.00000000","0.02991000"]],"asks":[["86104.02000000","5.55365000"],'
    '["86104.03000000","0.00072000"]]}}'
)
DEPTH10 = (
    '{"stream":"btcusdt@depth10@100ms","data":{"lastUpdateId":101096708778,"bids":'
    '[["86104.01000000","7.31528000"],["86104.00000000","0.02997000"]],"asks":'
    '[["86104.02000000","5.48779000"],["86104.03000000","0.00072000"]]}}'
)
D = Decimal


def test_book_ticker_combined_uses_the_receive_time() -> None:
    assert decode_frame(BOOK_TICKER, received_ms=1633998513377) == BookTicker(
        symbol="NKNUSDT", bid=D("0.35210000"), bid_qty=D("672.00000000"),
        ask=D("0.35260000"), ask_qty=D("3199.00000000"), update_id=499869768,
        event_time=1633998513377,
    )  # fmt: skip


def test_book_ticker_raw_equals_combined_and_an_E_field_wins() -> None:
    data = json.loads(BOOK_TICKER)["data"]
    assert decode_frame(json.dumps(data), 7) == decode_frame(BOOK_TICKER, 7)
    got = decode_frame(json.dumps({**data, "E": 1633998513380}), 7)
    assert isinstance(got, BookTicker) and got.event_time == 1633998513380


def test_partial_depth_takes_the_symbol_from_the_stream_name() -> None:
    got = decode_frame(DEPTH5, received_ms=5)
    assert got == DepthSnapshot(
        symbol="BTCUSDT",
        bids=((D("86104.01000000"), D("7.31683000")), (D("86104.00000000"), D("0.02991000"))),
        asks=((D("86104.02000000"), D("5.55365000")), (D("86104.03000000"), D("0.00072000"))),
        last_update_id=101096708675,
        event_time=5,
    )
    ten = decode_frame(DEPTH10, 6)
    assert isinstance(ten, DepthSnapshot) and ten.last_update_id == 101096708778
    assert kind_of(got) == "depth" and kind_of(decode_frame(BOOK_TICKER)) == "book_ticker"


def test_raw_partial_depth_has_no_symbol_and_is_ignored() -> None:
    raw = json.dumps(json.loads(DEPTH5)["data"])
    assert decode_frame(raw) == Ignored("depth")


def test_empty_depth_sides_are_a_thin_book_not_an_error() -> None:
    got = decode_frame('{"stream":"btcusdt@depth5@100ms","data":'
                       '{"lastUpdateId":3,"bids":[],"asks":[["1.5","2"]]}}')
    assert isinstance(got, DepthSnapshot) and got.bids == () and got.asks == ((D("1.5"), D(2)),)


def _bt(**changes: object) -> str:
    data: dict[str, object] = dict(json.loads(BOOK_TICKER)["data"])
    for k, v in changes.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    return json.dumps({"stream": "nknusdt@bookTicker", "data": data})


def _depth(bids: object, asks: object, uid: object = 9) -> str:
    return json.dumps({"stream": "btcusdt@depth5@100ms",
                       "data": {"lastUpdateId": uid, "bids": bids, "asks": asks}})


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_bt(a=None), DropReason.MISSING_FIELD),
        (_bt(A=None), DropReason.MISSING_FIELD),
        (_bt(u=None), DropReason.MISSING_FIELD),
        (_bt(b=0.3521), DropReason.BAD_TYPE),
        (_bt(b="1e-3"), DropReason.BAD_NUMBER),
        (_bt(B="0"), DropReason.NON_POSITIVE),
        (_bt(a="0.00000000"), DropReason.NON_POSITIVE),
        (_bt(u=-1), DropReason.BAD_VALUE),
        (_bt(u="5"), DropReason.BAD_TYPE),
        (_bt(s="NKN/USDT"), DropReason.BAD_VALUE),
        (_bt(b="0.35260000"), DropReason.CROSSED_BOOK),  # bid == ask
        (_bt(b="0.40000000"), DropReason.CROSSED_BOOK),
        (_depth([["2", "1"], ["3", "1"]], []), DropReason.BAD_VALUE),  # bids ascending
        (_depth([], [["3", "1"], ["3", "2"]]), DropReason.BAD_VALUE),  # asks repeat a price
        (_depth([["3", "1"]], [["3", "1"]]), DropReason.CROSSED_BOOK),
        (_depth([["3", "0"]], []), DropReason.NON_POSITIVE),
        (_depth([[3, "1"]], []), DropReason.BAD_TYPE),
        (_depth([["3"]], []), DropReason.BAD_TYPE),
        (_depth("x", []), DropReason.BAD_TYPE),
        (_depth([], [["NaN", "1"]]), DropReason.BAD_NUMBER),
        (_depth([], [], uid=True), DropReason.BAD_TYPE),
        (_depth([[str(1000 - i), "1"] for i in range(101)], []), DropReason.BAD_VALUE),
        ('{"stream":"btcusdt@depth5","data":{"bids":[],"asks":[]}}', DropReason.MISSING_FIELD),
    ],
)
def test_bad_book_frames_are_dropped_with_a_reason(frame: str, reason: DropReason) -> None:
    got = decode_frame(frame)
    assert isinstance(got, Dropped), got
    assert got.reason is reason, got
    stats = CodecStats()
    stats.record(got)
    assert stats.snapshot()["dropped"] == {reason.value: 1}


@pytest.mark.parametrize("relative", ["cryptofeed/BINANCE.ws.1.0", "cryptofeed/BINANCE_US.ws.1.0"])
def test_every_recorded_book_ticker_decodes_in_update_order(relative: str) -> None:
    records = records_from_bytes(data_file(relative).read_bytes())
    frames = [r for r in records if "@bookTicker" in r.frame]
    books = [decode_frame(r.frame, r.recv_time_ms or 0) for r in frames]
    assert frames and all(isinstance(b, BookTicker) for b in books)
    last: dict[str, int] = defaultdict(int)
    for rec, book in zip(frames, books, strict=True):
        assert isinstance(book, BookTicker)
        assert book.event_time == rec.recv_time_ms
        assert book.bid < book.ask and book.bid_qty > 0 and book.ask_qty > 0
        assert book.update_id > last[book.symbol]  # per symbol, ids only grow
        last[book.symbol] = book.update_id
        # the exact text survives: the decimal strings of the frame, unchanged
        assert f'"b":"{book.bid}"' in rec.frame and f'"A":"{book.ask_qty}"' in rec.frame


_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2**64), st.floats(allow_nan=True),
    st.sampled_from(["0", "1", "1.5", "-1", "1e3", "NaN", "", "abc", "0.35260000"]),
    st.lists(st.lists(st.sampled_from(["1", "2", "0", "x", 3]), max_size=3), max_size=4),
)


@settings(max_examples=400)
@given(
    st.sampled_from(["nknusdt@bookTicker", "btcusdt@depth5", "btcusdt@depth20@100ms"]),
    st.dictionaries(st.sampled_from(["u", "s", "b", "B", "a", "A", "E", "lastUpdateId",
                                     "bids", "asks"]), _values, max_size=4),
)
def test_fuzz_mutated_book_frames_never_raise(stream: str, changes: dict[str, object]) -> None:
    base = json.loads(BOOK_TICKER if "bookTicker" in stream else DEPTH5)["data"]
    got = decode_frame(json.dumps({"stream": stream, "data": {**base, **changes}}), 1)
    assert kind_of(got)
    if isinstance(got, BookTicker):
        assert 0 < got.bid < got.ask and got.bid_qty > 0 and got.ask_qty > 0
    if isinstance(got, DepthSnapshot):
        assert all(a[0] > b[0] for a, b in itertools.pairwise(got.bids))
        assert all(a[0] < b[0] for a, b in itertools.pairwise(got.asks))
        assert all(p > 0 and q > 0 for p, q in got.bids + got.asks)
        assert not (got.bids and got.asks) or got.bids[0][0] < got.asks[0][0]
