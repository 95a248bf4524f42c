"""The feed's configuration keys added with the live and replay sources."""

from __future__ import annotations

import pytest

from engine.config import load_config_text
from engine.errors import ConfigError


def test_defaults() -> None:
    feed = load_config_text("").feed
    assert feed.dynamic_symbols is True
    assert feed.binance.rotate_after_s == 85800.0  # 23 h 50 min, before Binance's 24 h
    assert feed.binance.subscribe_timeout_s == 5.0


def test_keys_parse() -> None:
    feed = load_config_text(
        '[feed]\nsource = "binance"\ndynamic_symbols = false\n'
        '[feed.binance]\nurl = "ws://127.0.0.1:9"\nrotate_after_s = 60\n'
        "subscribe_timeout_s = 1.5\n").feed
    assert (feed.dynamic_symbols, feed.binance.rotate_after_s,
            feed.binance.subscribe_timeout_s) == (False, 60.0, 1.5)


@pytest.mark.parametrize(("text", "key"), [
    ("[feed]\ndynamic_symbols = 1\n", "feed.dynamic_symbols"),
    ("[feed.binance]\nrotate_after_s = 90000\n", "feed.binance.rotate_after_s"),
    ("[feed.binance]\nsubscribe_timeout_s = 0\n", "feed.binance.subscribe_timeout_s"),
])
def test_bad_values_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text)
    assert key in str(info.value)
