from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config import Config, load_config_text, parse_config
from engine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_the_documented_ones() -> None:
    cfg = Config()
    assert (cfg.server.host, cfg.server.port, cfg.server.max_message_bytes) == (
        "127.0.0.1", 8000, 65536)
    assert cfg.server.ping_interval_s == 20 and cfg.server.allowed_origins == ()
    assert cfg.feed.source == "simulated"
    assert cfg.feed.binance.url == "wss://stream.binance.com:9443"
    assert cfg.feed.binance.stall_timeout_s == 10
    assert (cfg.intervals.positions_s, cfg.intervals.portfolio_s) == (1.0, 2.0)
    t = cfg.trading
    assert (t.starting_balance, t.fee_bps, t.slippage_bps, t.max_leverage) == (
        Decimal(10000), Decimal(10), Decimal(0), Decimal(1))
    assert t.allow_short is True and t.max_tick_age_s == 5
    assert cfg.store.path is None  # the user's data directory (engine.data_dir)
    srv = cfg.server
    assert (srv.rate_limit_per_s, srv.rate_limit_burst) == (20, 40)
    assert (srv.max_connections, srv.max_connections_per_ip) == (1000, 100)


def test_shipped_config_toml_is_valid_and_equals_the_defaults() -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    assert load_config_text(text) == Config()


def test_every_key_is_documented_in_config_toml_and_docs() -> None:
    toml = (ROOT / "config.toml").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    from dataclasses import fields

    def keys(obj: object, prefix: str) -> list[str]:
        out: list[str] = []
        for f in fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            if hasattr(value, "__dataclass_fields__"):
                out += keys(value, f"{prefix}{f.name}.")
            elif f.name not in ("accounts", "symbols"):  # arrays of tables, below
                out.append(f"{prefix}{f.name}")
        return out

    for key in keys(Config(), ""):
        leaf = key.rsplit(".", 1)[-1]
        assert re.search(rf"^#?\s*{leaf}\s*=", toml, re.M), f"{key} missing from config.toml"
        assert f"`{key}`" in docs, f"{key} missing from docs/configuration.md"


def test_every_symbols_key_is_documented_in_config_toml_and_docs() -> None:
    from engine.market.symbol_info import OVERRIDE_FIELDS

    toml = (ROOT / "config.toml").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "# [[symbols]]" in toml
    for name in ("symbol", *OVERRIDE_FIELDS):
        assert re.search(rf"^# {name} = ", toml, re.M), f"symbols.{name} missing from config.toml"
        assert f"`{name}`" in docs, f"symbols.{name} missing from docs/configuration.md"


def test_symbol_overrides_parse_exactly() -> None:
    cfg = parse_config({"symbols": [{"symbol": "btcusdt", "tick_size": "0.1",
                                     "apply_min_to_market": False,
                                     "min_trailing_above_delta": 5}]})
    (o,) = cfg.symbols
    assert (o.symbol, o.tick_size, o.apply_min_to_market) == ("BTCUSDT", Decimal("0.1"), False)
    assert o.min_trailing_above_delta == 5 and o.step_size is None


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"server": {"prot": 1}}, "server.prot"),
        ({"bogus": {}}, "bogus"),
        ({"server": {"port": "8000"}}, "server.port"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"port": True}}, "server.port"),
        ({"server": {"ping_interval_s": -1}}, "server.ping_interval_s"),
        ({"server": {"allowed_origins": ["evil.com"]}}, "server.allowed_origins"),
        ({"feed": {"source": "kraken"}}, "feed.source"),
        ({"feed": {"symbols": []}}, "feed.symbols"),
        ({"feed": {"symbols": ["BTC-USDT"]}}, "feed.symbols"),
        ({"feed": {"symbols": ["BTCUSDT\n"]}}, "feed.symbols"),
        ({"feed": {"symbols": ["\u0131\u0131"]}}, "feed.symbols"),
        ({"feed": {"simulated": {"ticks_per_second": 0}}}, "feed.simulated.ticks_per_second"),
        ({"feed": {"binance": {"url": "http://x"}}}, "feed.binance.url"),
        ({"feed": {"source": "replay"}}, "feed.replay.path"),
        ({"trading": {"fee_bps": "abc"}}, "trading.fee_bps"),
        ({"trading": {"starting_balance": -5}}, "trading.starting_balance"),
        ({"trading": {"max_leverage": 0}}, "trading.max_leverage"),
        ({"supervisor": {"backoff_min_s": 5, "backoff_max_s": 1}}, "supervisor.backoff_max_s"),
        ({"accounts": [{"name": "a"}]}, "accounts[0].token"),
        ({"accounts": [{"name": "a", "token": "short"}]}, "accounts[0].token"),
        ({"accounts": [{"name": "a", "token": "x" * 10, "extra": 1}]}, "accounts[0].extra"),
        ({"server": {"host": "0.0.0.0"}}, "server.host"),
        ({"server": {"rate_limit_per_s": 0}}, "server.rate_limit_per_s"),
        ({"server": {"rate_limit_burst": 0}}, "server.rate_limit_burst"),
        ({"server": {"rate_limit_burst": 2.5}}, "server.rate_limit_burst"),
        ({"server": {"max_connections": 0}}, "server.max_connections"),
        ({"server": {"max_connections_per_ip": -1}}, "server.max_connections_per_ip"),
        ({"feed": {"binance": {"rest_url": "ftp://x"}}}, "feed.binance.rest_url"),
        ({"feed": {"binance": {"rest_timeout_s": 0}}}, "feed.binance.rest_timeout_s"),
        ({"symbols": {"symbol": "BTCUSDT"}}, "symbols"),
        ({"symbols": [{"tick_size": "0.1"}]}, "symbols[0].symbol"),
        ({"symbols": [{"symbol": "BTC-USDT"}]}, "symbols[0].symbol"),
        ({"symbols": [{"symbol": "BTCUSDT", "tick": "0.1"}]}, "symbols[0].tick"),
        ({"symbols": [{"symbol": "BTCUSDT", "tick_size": "-1"}]}, "symbols[0].tick_size"),
        ({"symbols": [{"symbol": "BTCUSDT", "tick_size": "abc"}]}, "symbols[0].tick_size"),
        ({"symbols": [{"symbol": "BTCUSDT", "apply_min_to_market": 1}]},
         "symbols[0].apply_min_to_market"),
        ({"symbols": [{"symbol": "BTCUSDT"}, {"symbol": "ETHUSDT", "min_qty": True}]},
         "symbols[1].min_qty"),
        ({"symbols": [{"symbol": "BTCUSDT"}, {"symbol": "btcusdt"}]}, "symbols"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.key == key


def test_symbols_are_upper_cased_and_decimals_exact() -> None:
    cfg = parse_config({"feed": {"symbols": ["btcusdt"]}, "trading": {"fee_bps": 7.5}})
    assert cfg.feed.symbols == ("BTCUSDT",)
    assert cfg.trading.fee_bps == Decimal("7.5")


def test_non_loopback_host_is_allowed_with_accounts() -> None:
    cfg = parse_config({"server": {"host": "0.0.0.0"},
                        "accounts": [{"name": "alice", "token": "alice-secret-1"}]})
    assert not cfg.open_mode


def test_toml_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_config_text("[server\nport = 1")


def test_tokens_can_come_from_the_environment() -> None:
    data = {"server": {"host": "0.0.0.0"},
            "accounts": [{"name": "alice", "token_env": "ALICE_TOKEN"}]}
    cfg = parse_config(data, {"ALICE_TOKEN": "from-the-env-123"})
    assert cfg.accounts[0].token == "from-the-env-123"
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    assert info.value.key == "accounts[0].token_env"
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{"name": "a", "token": "x" * 9, "token_env": "T"}]},
                     {"T": "y" * 9})
    assert info.value.key == "accounts[0].token"
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{"name": "a", "token_env": "T"},
                                   {"name": "b", "token": "same-token"}]},
                     {"T": "same-token"})
    assert info.value.key == "accounts"
