"""The one symbol rule (engine.protocol.symbols) and everyone who applies it."""

from __future__ import annotations

import json

import pytest

from engine.config import parse_config
from engine.errors import ConfigError, UnknownSymbol
from engine.protocol.commands import decode_command
from engine.protocol.symbols import SYMBOL_PATTERN, is_symbol, normalize_symbol
from engine.trading.validation import symbol_field

GOOD = ["BTCUSDT", "1INCHUSDT", "AB", "X" * 20, "btcusdt", "EthBtc"]
BAD = ["", "B", "X" * 21, "BTC-USDT", "BTC USDT", "BTCUSDT\n", " BTCUSDT", "\u0131\u0131",
       "BTC\u00dcSDT", "BTCUSDT\u0000"]


@pytest.mark.parametrize("text", GOOD)
def test_symbols_are_upper_cased(text: str) -> None:
    assert normalize_symbol(text) == text.upper()
    assert is_symbol(text.upper())


@pytest.mark.parametrize("text", BAD)
def test_anything_else_is_not_a_symbol(text: str) -> None:
    assert normalize_symbol(text) is None
    assert not is_symbol(text)


def test_the_wire_form_is_upper_case() -> None:
    assert not is_symbol("btcusdt")
    assert SYMBOL_PATTERN == "[A-Z0-9]{2,20}"


@pytest.mark.parametrize("text", BAD)
def test_config_decoder_and_order_parser_agree(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config({"feed": {"symbols": [text]}})
    with pytest.raises(UnknownSymbol):
        symbol_field("symbol", text)
    with pytest.raises(UnknownSymbol):
        decode_command(json.dumps({"action": "unsubscribe_ticker", "symbol": text}))
