"""Decode every frame of the real recorded Binance files; exact counts and values."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from engine.market.agg_gaps import AggGapTracker
from engine.market.binance_codec import CodecStats, Decoded, decode_frame
from engine.market.replay_format import (
    ReplayFormat,
    ReplayRecord,
    detect_format,
    records_from_bytes,
)
from engine.messages import Ticker24h, Trade
from tests.market.conftest import data_file


def _decode_all(relative: str) -> tuple[list[ReplayRecord], list[Decoded], CodecStats]:
    data = data_file(relative).read_bytes()
    records = records_from_bytes(data)
    stats = CodecStats()
    decoded = [stats.record(decode_frame(r.frame)) for r in records]
    return records, decoded, stats


@pytest.mark.parametrize(
    ("relative", "fmt"),
    [
        ("cryptofeed/BINANCE.ws.1.0", ReplayFormat.CRYPTOFEED),
        ("cryptofeed/BINANCE_US.ws.1.0", ReplayFormat.CRYPTOFEED),
        ("gocryptotrader/wsSpot.json", ReplayFormat.JSON_LINES),
        ("nautilus_trader/ws_spot_trade.json", ReplayFormat.JSON_DOCUMENT),
        ("freqtrade/XRP_OLD-trades.json.gz", ReplayFormat.GZIP),
    ],
)
def test_detect_format(relative: str, fmt: ReplayFormat) -> None:
    assert detect_format(data_file(relative).read_bytes()[:65536]) is fmt


def test_cryptofeed_binance() -> None:
    records, decoded, stats = _decode_all("cryptofeed/BINANCE.ws.1.0")
    assert len(records) == 265
    assert stats.snapshot() == {
        "decoded": {"ignored": 179, "book_ticker": 84, "trade": 2},
        "ignored": {"depthUpdate": 177, "kline": 2},
        "dropped": {},
    }
    assert records[0].recv_time_ms == 1633998512063  # 1633998512.0633569 s, floored
    assert all(r.recv_time_ms is not None for r in records)
    trades = [d for d in decoded if isinstance(d, Trade)]
    assert trades[0] == Trade(
        symbol="NKNUSDT",
        price=Decimal("0.35280000"),
        quantity=Decimal("58.00000000"),
        event_time=1633998523963,
        trade_time=1633998523963,
        trade_id=15683430,
        buyer_is_maker=False,
    )
    assert str(trades[0].price) == "0.35280000"  # exact text kept
    index = decoded.index(trades[0])
    assert records[index].recv_time_ms == 1633998523957


def test_cryptofeed_binance_us() -> None:
    records, decoded, stats = _decode_all("cryptofeed/BINANCE_US.ws.1.0")
    assert len(records) == 480
    assert stats.snapshot() == {
        "decoded": {"ignored": 341, "book_ticker": 128, "trade": 11},
        "ignored": {"depthUpdate": 336, "kline": 5},
        "dropped": {},
    }
    trades = [d for d in decoded if isinstance(d, Trade)]
    assert Counter(t.symbol for t in trades) == {"OMGBUSD": 11}
    assert trades[-1] == Trade(
        symbol="OMGBUSD",
        price=Decimal("13.76040000"),
        quantity=Decimal("10.00000000"),
        event_time=1633998301807,
        trade_time=1633998301807,
        trade_id=425095,
        buyer_is_maker=True,
    )
    # receive times never go backwards in a capture
    times = [r.recv_time_ms for r in records]
    assert times == sorted(t for t in times if t is not None)


def test_gocryptotrader_ws_spot() -> None:
    records, decoded, stats = _decode_all("gocryptotrader/wsSpot.json")
    assert len(records) == 9
    assert stats.snapshot() == {
        "decoded": {"trade": 1, "ticker": 1, "depth": 2, "ignored": 5},
        "ignored": {"kline": 2, "depthUpdate": 3},
        "dropped": {},
    }
    assert decoded[0] == Trade(
        symbol="BTCUSDT",
        price=Decimal("86104.02000000"),
        quantity=Decimal("0.00011000"),
        event_time=1791284980615,
        trade_time=1791284980614,
        trade_id=6739446511,
        buyer_is_maker=True,
    )
    assert decoded[1] == Ticker24h(
        symbol="BTCUSDT",
        event_time=1791284981016,
        price_change=Decimal("156.02000000"),
        price_change_percent=Decimal("0.182"),
        high=Decimal("86725.12000000"),
        low=Decimal("84972.01000000"),
        volume=Decimal("13625.56497000"),
        last_price=Decimal("86104.02000000"),
        bid=Decimal("86104.01000000"),
        ask=Decimal("86104.02000000"),
    )


def test_nautilus_pretty_printed_trade() -> None:
    records, decoded, stats = _decode_all("nautilus_trader/ws_spot_trade.json")
    assert len(records) == 1
    assert stats.snapshot()["decoded"] == {"trade": 1}
    # "a" here is the seller order id of a raw @trade event, not the trade id
    assert decoded[0] == Trade(
        symbol="ETHUSDT",
        price=Decimal("4149.74000000"),
        quantity=Decimal("0.43870000"),
        event_time=1639351062244,
        trade_time=1639351062243,
        trade_id=705291099,
        buyer_is_maker=True,
    )


def test_freqtrade_aggregate_trades() -> None:
    records, decoded, stats = _decode_all("freqtrade/XRP_OLD-trades.json.gz")
    assert len(records) == 12477
    assert stats.snapshot() == {"decoded": {"trade": 12477}, "ignored": {}, "dropped": {}}
    trades = [d for d in decoded if isinstance(d, Trade)]
    assert trades[0] == Trade(
        symbol="XRPETH",
        price=Decimal("0.00141342"),
        quantity=Decimal("23.00000000"),
        event_time=1570752011620,
        trade_time=1570752011620,
        trade_id=13519807,
        buyer_is_maker=True,
    )
    assert trades[-1].trade_id == 13532283
    assert trades[-1].price == Decimal("0.00152787")
    assert trades[-1].quantity == Decimal("130.00000000")
    tracker = AggGapTracker()
    gaps = [tracker.observe(t.symbol, t.trade_id or 0) for t in trades]
    assert sum(gaps) == 0
    st = tracker.stats("XRPETH")
    assert st is not None
    assert (st.observed, st.gaps, st.duplicates, st.out_of_order) == (12477, 0, 0, 0)
    assert all(r.recv_time_ms is None for r in records)
    # trade times are in order, so replay pacing can use them
    times = [t.trade_time for t in trades]
    assert times == sorted(times)
