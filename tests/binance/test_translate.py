"""The pure translation rules: parameters, Binance's number format, error mapping,
the spot view of a netted account, and request weights per minute."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.binance import translate as tr
from engine.binance.errors import BinanceError
from engine.binance.weights import WeightBook


def test_params_from_query_and_body_and_duplicates() -> None:
    assert tr.parse_params("a=1&b=x%20y", b"c=3") == {"a": "1", "b": "x y", "c": "3"}
    with pytest.raises(BinanceError) as info:
        tr.parse_params("a=1", b"a=2")
    assert info.value.code == -1101


def test_binance_number_format() -> None:
    assert tr.fmt(Decimal("0.01")) == "0.01000000"
    assert tr.fmt(Decimal("85875.5")) == "85875.50000000"
    assert tr.fmt(None) == "0.00000000"
    assert tr.fmt(Decimal("0.000000001")) == "0.000000001"  # never rounded away


@pytest.mark.parametrize(("reason", "code", "msg"), [
    ("INSUFFICIENT_BALANCE: USDT available 1 < needed 2", -2010,
     "Account has insufficient balance for requested action."),
    ("Filter failure: LOT_SIZE", -1013, "Filter failure: LOT_SIZE"),
    ("ORDER_WOULD_MATCH_IMMEDIATELY", -2010, "Order would immediately match and take."),
    ("DUPLICATE_CLIENT_ORDER_ID", -2010, "Duplicate order sent."),
])
def test_reject_reasons(reason: str, code: int, msg: str) -> None:
    err = tr.reject_error(reason)
    assert (err.code, err.msg, err.status) == (code, msg, 400)


def test_order_command_maps_binance_names() -> None:
    cmd = tr.order_command({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS_LIMIT",
                            "timeInForce": "GTC", "quantity": "0.5", "price": "10",
                            "stopPrice": "11", "newClientOrderId": "my-1"}, "r1")
    assert cmd == {"action": "place_order", "id": "r1", "symbol": "BTCUSDT", "side": "SELL",
                   "type": "STOP_LOSS_LIMIT", "quantity": "0.5", "price": "10",
                   "stopPrice": "11", "timeInForce": "GTC", "clientOrderId": "my-1"}
    for params, code in (({"side": "BUY", "type": "MARKET", "quantity": "1"}, -1102),
                         ({"symbol": "BTCUSDT", "side": "UP", "type": "MARKET"}, -1117),
                         ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                           "quantity": "abc"}, -1130),
                         ({"symbol": "btc usdt", "side": "BUY", "type": "MARKET"}, -1100)):
        with pytest.raises(BinanceError) as info:
            tr.order_command(params, "r")
        assert info.value.code == code


def test_spot_view_of_a_netted_account() -> None:
    portfolio = {"balances": [{"asset": "USDT", "total": Decimal("9999"),
                               "locked": Decimal("100")},
                              {"asset": "BTC", "total": Decimal("1"), "locked": Decimal(0)}]}
    positions = [{"symbol": "BTCUSDT", "side": "LONG", "quantity": Decimal("0.5"),
                  "entryPrice": Decimal("100")},
                 {"symbol": "ETHBTC", "side": "SHORT", "quantity": Decimal("2"),
                  "entryPrice": Decimal("0.05")}]
    assets = {"BTCUSDT": ("BTC", "USDT"), "ETHBTC": ("ETH", "BTC")}
    view = tr.spot_balances(portfolio, positions, assets.get)
    # USDT: 9999 - 0.5 x 100 = 9949, of which 100 locked
    assert view["USDT"] == (Decimal("9849"), Decimal("100"))
    # BTC: 1 + 0.5 (bought) + 2 x 0.05 (received for the ETH sold short)
    assert view["BTC"] == (Decimal("1.6"), Decimal(0))
    assert view["ETH"] == (Decimal("-2"), Decimal(0))


def test_weights_per_ip_and_minute() -> None:
    book = WeightBook(10)
    assert book.take("a", 6, 1_000).allowed
    over = book.take("a", 6, 2_000)
    assert not over.allowed and over.used == 6 and over.retry_after_s == 58
    assert book.take("b", 10, 2_000).allowed  # another address has its own budget
    fresh = book.take("a", 6, 60_000)  # the next minute
    assert fresh.allowed and fresh.used == 6


def test_weights_track_a_bounded_number_of_addresses() -> None:
    book = WeightBook(10, max_ips=2)
    book.take("a", 1, 0)
    book.take("b", 1, 60_000)
    book.take("c", 1, 60_000)  # "a" (a past minute) is dropped first
    assert len(book) == 2
    assert book.take("b", 9, 60_001).used == 10
