"""``get_klines``: decoding, and the KLINES reply's Binance-shaped rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from engine.errors import BadRequest, UnknownSymbol
from engine.market.klines import Kline, KlineQuery
from engine.protocol import server_messages as sm
from engine.protocol.commands import decode_command
from engine.protocol.enums import Action


def _decode(**body: Any) -> Any:
    return decode_command(orjson.dumps({"action": "get_klines", "id": 7, **body}))


def test_a_full_command_decodes_to_its_query() -> None:
    cmd = _decode(symbol="btcusdt", interval="4h", limit=2, startTime=0, endTime=10)
    assert cmd.action is Action.GET_KLINES
    assert cmd.args == KlineQuery("BTCUSDT", "4h", start_ms=0, end_ms=10, limit=2)
    assert _decode(symbol="BTCUSDT", interval="1m").args == KlineQuery("BTCUSDT", "1m")


@pytest.mark.parametrize(("body", "message"), [
    ({"symbol": "BTCUSDT"}, "interval: is required"),
    ({"symbol": "BTCUSDT", "interval": 1}, "interval: must be a string"),
    ({"symbol": "BTCUSDT", "interval": "1w"}, "unknown interval '1w'"),
    ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, "limit: must be between 1 and 1000"),
    ({"symbol": "BTCUSDT", "interval": "1m", "limit": 2.5}, "limit: must be a JSON integer"),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": -1}, "startTime: must be between"),
    ({"symbol": "BTCUSDT", "interval": "1m", "endTime": True}, "endTime: must be a JSON integer"),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 2, "endTime": 1},
     "startTime must not be after endTime"),
    ({"interval": "1m"}, "symbol: is required"),
])
def test_a_bad_field_is_bad_request_with_the_id(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as err:
        _decode(**body)
    assert message in err.value.message
    assert err.value.request_id == 7


def test_a_string_that_is_no_symbol_is_unknown_symbol() -> None:
    with pytest.raises(UnknownSymbol) as err:
        _decode(symbol="BTC/USDT", interval="1m")
    assert err.value.request_id == 7


def test_rows_are_binances_with_exact_decimal_strings() -> None:
    bar = Kline("BTCUSDT", "1m", 60_000, 119_999, Decimal("86104.02000000"),
                Decimal("86110.5"), Decimal("86100"), Decimal("86108.01"),
                Decimal("0.00000001"), Decimal("1E-3"), 3)
    msg = orjson.loads(sm.klines("BTCUSDT", "1m", [bar], 5, "k").payload)
    assert msg == {"type": "KLINES", "symbol": "BTCUSDT", "interval": "1m", "klines": [
        [60_000, "86104.02000000", "86110.5", "86100", "86108.01", "0.00000001", 119_999,
         "0.001", 3]], "timestamp": 5, "id": "k"}
