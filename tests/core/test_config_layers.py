"""Defaults, file, environment and flags layered into the effective configuration."""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields, is_dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import Config, parse_config
from engine.config_layers import DEFAULT, Override, env_overrides, load_effective
from engine.config_render import REDACTED, render_effective
from engine.data_dir import default_store_path
from engine.errors import ConfigError

HOME = {"HOME": "/home/trader"}


def _file(tmp_path: Path, text: str, name: str = "config.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _port(path: str | None, env: dict[str, str], flag: str | None) -> tuple[int, str]:
    flags = [Override("server.port", flag, "flag --port")] if flag else []
    eff = load_effective(path, {**HOME, **env}, flags, cwd="/")
    return eff.config.server.port, eff.origin("server.port")


def test_precedence_is_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    path = _file(tmp_path, "[server]\nport = 1111\n")
    env = {"TICKDESK_SERVER__PORT": "2222"}
    assert _port(path, env, "3333") == (3333, "flag --port")
    assert _port(path, env, None) == (2222, "env TICKDESK_SERVER__PORT")
    assert _port(path, {}, None) == (1111, path)
    assert _port(None, {}, None) == (8000, DEFAULT)


def test_nested_sections_and_every_type_parse_as_toml_values() -> None:
    env = {
        "TICKDESK_FEED__SIMULATED__SEED": "7",
        "TICKDESK_FEED__SIMULATED__TICKS_PER_SECOND": "2.5",
        "TICKDESK_FEED__DYNAMIC_SYMBOLS": "false",
        "TICKDESK_FEED__SYMBOLS": '["btcusdt", "ETHUSDT"]',
        "TICKDESK_SERVER__ALLOWED_ORIGINS": "https://a.example,https://b.example",
        "TICKDESK_SERVER__HOST": "localhost",
        "TICKDESK_TRADING__FEE_BPS": "7.5",
        "TICKDESK_TRADING__BALANCES": "{USDT = 500, BTC = '0.25'}",
        "TICKDESK_LOG__FORMAT": '"json"',
    }
    eff = load_effective(None, {**HOME, **env})
    cfg = eff.config
    assert (cfg.feed.simulated.seed, cfg.feed.simulated.ticks_per_second) == (7, 2.5)
    assert cfg.feed.dynamic_symbols is False
    assert cfg.feed.symbols == ("BTCUSDT", "ETHUSDT")
    assert cfg.server.allowed_origins == ("https://a.example", "https://b.example")
    assert cfg.server.host == "localhost" and cfg.log.format == "json"
    assert cfg.trading.fee_bps == Decimal("7.5")
    assert cfg.trading.balances == (("BTC", Decimal("0.25")), ("USDT", Decimal(500)))
    assert eff.origin("feed.simulated.seed") == "env TICKDESK_FEED__SIMULATED__SEED"
    assert eff.origin("feed.simulated.ticks_per_second").startswith("env ")
    assert eff.origin("feed.source") == DEFAULT


@pytest.mark.parametrize(("key", "text"), [
    ("server.port", "70000"),
    ("server.port", "eighty"),
    ("server.rate_limit_burst", "2.5"),
    ("trading.fee_bps", "abc"),
    ("feed.source", "kraken"),
    ("feed.symbols", "BTC-USDT"),
    ("trading.allow_short", "yes"),
])
def test_an_env_value_is_validated_exactly_as_the_same_toml_value(key: str, text: str) -> None:
    section, leaf = key.split(".")
    name = f"TICKDESK_{section.upper()}__{leaf.upper()}"
    with pytest.raises(ConfigError) as from_env:
        load_effective(None, {**HOME, name: text})
    toml_value = tomllib.loads(f"v = {text}")["v"] if text[0].isdigit() else text
    if key == "feed.symbols":
        toml_value = [text]
    with pytest.raises(ConfigError) as from_toml:
        parse_config({section: {leaf: toml_value}})
    assert from_env.value.key == from_toml.value.key == key
    assert from_env.value.message.startswith(from_toml.value.message)  # + what was given
    assert repr(text) in from_env.value.message
    assert from_env.value.origin == f"env {name}"
    assert name in str(from_env.value)


@pytest.mark.parametrize(("name", "key"), [
    ("TICKDESK_SERVER__PROT", "server.prot"),
    ("TICKDESK_SERVR__PORT", "servr"),
    ("TICKDESK_FEED__SIMULATED", "feed.simulated"),
    ("TICKDESK_SERVER__PORT__X", "server.port.x"),
    ("TICKDESK_ACCOUNTS__TOKEN", "accounts.token"),
    ("TICKDESK_SYMBOLS__TICK_SIZE", "symbols.tick_size"),
    ("TICKDESK_SERVER__", "server."),
])
def test_an_unknown_key_in_the_env_prefix_space_names_the_variable(name: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_effective(None, {**HOME, name: "1"})
    assert info.value.origin == f"env {name}"
    assert key in str(info.value)


def test_other_tickdesk_variables_are_not_configuration() -> None:
    env = {**HOME, "TICKDESK_TOKEN": "x", "TICKDESK_URL": "ws://h", "TICKDESK_BOT_TOKEN": "y",
           "TICKDESK_TEST_TIMEOUT": "2"}
    assert env_overrides(env) == []
    assert load_effective(None, env).config == replace(
        Config(), store=replace(Config().store, path=default_store_path(env)))


@pytest.mark.parametrize(("key", "given", "stored"), [
    ("log.level", "debug", "DEBUG"),
    ("log.level", "Warning", "WARNING"),
    ("log.format", "JSON", "json"),
    ("store.synchronous", "NORMAL", "normal"),
    ("feed.source", "Simulated", "simulated"),
    ("trading.fill_model", "Queue", "queue"),
])
def test_enum_values_are_case_insensitive_everywhere(tmp_path: Path, key: str, given: str,
                                                     stored: str) -> None:
    section, leaf = key.split(".")
    cfg = parse_config({section: {leaf: given}})
    assert getattr(getattr(cfg, section), leaf) == stored
    name = f"TICKDESK_{section.upper()}__{leaf.upper()}"
    eff = load_effective(None, {**HOME, name: given})
    assert getattr(getattr(eff.config, section), leaf) == stored
    path = _file(tmp_path, f'[{section}]\n{leaf} = "{given}"\n')
    eff = load_effective(path, HOME)
    assert getattr(getattr(eff.config, section), leaf) == stored


def test_a_bad_file_value_names_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "[server]\nport = 'eighty'\n")
    with pytest.raises(ConfigError) as info:
        load_effective(path, HOME)
    assert info.value.key == "server.port" and path in str(info.value)


def test_a_toml_syntax_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = _file(tmp_path, '[server]\nport = 1\n[feed\nsource = "simulated"\n', "mine.toml")
    with pytest.raises(ConfigError) as info:
        load_effective(path, HOME)
    text = str(info.value)
    assert path in text and "line 3" in text and "column" in text


def test_the_default_store_is_in_the_user_data_directory() -> None:
    eff = load_effective(None, {"HOME": "/home/trader", "XDG_DATA_HOME": "/data/xdg"})
    assert eff.config.store.path == "/data/xdg/tickdesk/tickdesk.db"
    assert eff.origin("store.path") == DEFAULT
    # unset, empty or relative XDG_DATA_HOME: ~/.local/share (the XDG rule)
    for xdg in ({}, {"XDG_DATA_HOME": ""}, {"XDG_DATA_HOME": "rel/dir"}):
        eff = load_effective(None, {"HOME": "/home/trader", **xdg})
        assert eff.config.store.path == "/home/trader/.local/share/tickdesk/tickdesk.db"


def test_a_relative_store_path_is_resolved_against_where_it_was_given(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    path = _file(conf_dir, '[store]\npath = "ledger/desk.db"\n')
    eff = load_effective(path, HOME, cwd=str(tmp_path / "elsewhere"))
    assert eff.config.store.path == str(conf_dir / "ledger" / "desk.db")
    eff = load_effective(path, {**HOME, "TICKDESK_STORE__PATH": "env.db"}, cwd="/run/here")
    assert eff.config.store.path == "/run/here/env.db"
    flag = [Override("store.path", "flag.db", "flag --store")]
    eff = load_effective(path, HOME, flag, cwd="/run/here")
    assert eff.config.store.path == "/run/here/flag.db"
    for memory in ("", ":memory:"):
        eff = load_effective(path, HOME, [Override("store.path", memory, "flag --store")])
        assert eff.config.store.path == memory
    # a relative --config path: the file's directory is still the base
    eff = load_effective(os.path.relpath(path, tmp_path), HOME, cwd=str(tmp_path))
    assert eff.config.store.path == str(conf_dir / "ledger" / "desk.db")


def _leaf_keys(obj: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out += _leaf_keys(value, f"{prefix}{f.name}.")
        elif not isinstance(value, tuple) or prefix:
            out.append(f"{prefix}{f.name}")
    return out


def test_print_config_is_valid_toml_of_every_key_with_its_origin(tmp_path: Path) -> None:
    path = _file(tmp_path, '[feed]\nsymbols = ["BTCUSDT"]\n[trading]\nfee_bps = "7.25"\n'
                           'balances = {USDT = 100, BTC = "0.5"}\n'
                           '[[symbols]]\nsymbol = "BTCUSDT"\ntick_size = "0.1"\n')
    env = {**HOME, "TICKDESK_FEED__SIMULATED__SEED": "9"}
    eff = load_effective(path, env, [Override("server.port", "0", "flag --port")])
    text = render_effective(eff)
    data = tomllib.loads(text)
    assert parse_config(data) == eff.config  # the printout loads back to the same thing
    lines = {line.split(" = ", 1)[0]: line for line in text.splitlines() if " = " in line}
    for key in _leaf_keys(eff.config):
        leaf = key.rsplit(".", 1)[-1]
        assert leaf in lines, f"{key} not printed"
    assert 'port = 0  # flag --port' in text
    assert 'seed = 9  # env TICKDESK_FEED__SIMULATED__SEED' in text
    assert f'symbols = ["BTCUSDT"]  # {path}' in text
    assert f'fee_bps = "7.25"  # {path}' in text
    assert 'host = "127.0.0.1"  # default' in text
    assert f'path = "{default_store_path(env)}"  # default' in text


def test_print_config_redacts_tokens(tmp_path: Path) -> None:
    path = _file(tmp_path, '[[accounts]]\nname = "alice"\ntoken = "alice-secret-token"\n'
                           '[[accounts]]\nname = "bot"\ntoken_env = "BOT_TOKEN"\n')
    eff = load_effective(path, {**HOME, "BOT_TOKEN": "bot-secret-token"})
    text = render_effective(eff)
    assert "alice-secret-token" not in text and "bot-secret-token" not in text
    assert f'token = "{REDACTED}"  # {path}' in text
    assert 'token_env = "BOT_TOKEN"' in text
    assert tomllib.loads(text)["accounts"][1] == {"name": "bot", "token_env": "BOT_TOKEN"}


def test_every_key_can_come_from_the_environment() -> None:
    """Generic over the dataclasses: each key printed by --print-config, set back
    through its ``TICKDESK_`` variable, gives the same configuration and is
    shown as coming from that variable (a key added later is covered too)."""
    base = load_effective(None, HOME)
    env: dict[str, str] = {}
    section = ""
    for line in render_effective(base).splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line:
            name, rest = line.split(" = ", 1)
            key = f"{section}.{name}"
            env["TICKDESK_" + "__".join(p.upper() for p in key.split("."))] = \
                rest.rsplit("  # ", 1)[0]
    assert len(env) == len(_leaf_keys(base.config))
    eff = load_effective(None, {**HOME, **env})
    assert eff.config == base.config
    for name in env:
        key = ".".join(p.lower() for p in name.removeprefix("TICKDESK_").split("__"))
        assert eff.origin(key) == f"env {name}"
