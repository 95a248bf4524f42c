"""GET /api/v3/klines: the engine's bars in Binance's row layout, read by ccxt and
python-binance; Binance's parameter errors."""

from __future__ import annotations

from decimal import Decimal

from binance.client import Client

from tests.binance.helpers import ALICE_KEY, ALICE_SECRET, Rest, accounts_config, ccxt_exchange
from tests.conftest import wait_until
from tickdesk import Engine


def test_klines_rows_as_binance_writes_them_and_the_libraries_read_them() -> None:
    eng = Engine(accounts_config()).start()
    try:
        wait_until(lambda: bool(eng.klines("BTCUSDT", "1m")), 10, "a first bar")
        rest = Rest(eng.port)
        # the current bar moves with every trade: compare a read taken while the
        # engine's bars stayed the same before and after it
        got: dict[str, object] = {}

        def stable() -> bool:
            before = eng.klines("BTCUSDT", "1m")
            rows = rest.public("GET", "/api/v3/klines", symbol="BTCUSDT",
                               interval="1m").json()
            if eng.klines("BTCUSDT", "1m") != before:
                return False
            got.update(rows=rows, bars=before)
            return True

        wait_until(stable, 10, "a read between two trades")
        rows, bars = got["rows"], got["bars"]
        assert isinstance(rows, list) and isinstance(bars, list)
        assert [r[0] for r in rows] == [b.open_time for b in bars]
        first, bar = rows[0], bars[0]
        # Binance: [openTime, open, high, low, close, volume, closeTime, quoteVolume,
        #           trades, takerBuyBase, takerBuyQuote, ignore]
        assert len(first) == 12
        assert (first[0], first[6]) == (bar.open_time, bar.open_time + 60_000 - 1)
        assert Decimal(first[1]) == bar.open and Decimal(first[2]) == bar.high
        assert Decimal(first[3]) == bar.low and Decimal(first[4]) == bar.close
        assert Decimal(first[5]) == bar.volume and Decimal(first[7]) == bar.quote_volume
        assert isinstance(first[8], int) and first[8] >= 1
        for bad, code in (({"interval": "7m"}, -1120), ({}, -1102),
                          ({"interval": "1m", "limit": "0"}, -1130)):
            r = rest.public("GET", "/api/v3/klines", symbol="BTCUSDT", **bad)
            assert r.status_code == 400 and r.json()["code"] == code
        ex = ccxt_exchange(eng.port)
        candles = ex.fetch_ohlcv("BTC/USDT", "1m")
        assert candles and candles[0][0] == bar.open_time
        assert all(c[3] <= min(c[1], c[4]) <= max(c[1], c[4]) <= c[2] for c in candles)
        client = Client(ALICE_KEY, ALICE_SECRET, ping=False)
        client.API_URL = f"http://127.0.0.1:{eng.port}/api"
        try:
            assert client.get_klines(symbol="BTCUSDT", interval="1m")[0][0] == bar.open_time
        finally:
            client.close_connection()
    finally:
        eng.stop()
