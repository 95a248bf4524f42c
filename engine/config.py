"""Configuration: the schema, its defaults and its validation.

Pure core: takes the text of a TOML document (or an already parsed mapping)
and returns a frozen :class:`Config`, or raises :class:`~engine.errors.ConfigError`
naming the offending key (``server.port``, ``accounts[1].token``...). Unknown
keys, wrong types and out-of-range values are all rejected; nothing is
silently ignored. Reading the file is the caller's (the CLI or the Engine).

Every key, its default and its meaning is documented in ``config.toml`` at
the repository root and in ``docs/configuration.md``; a test keeps the three
in step.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from engine.errors import ConfigError
from engine.market.binance_codec import MAX_STREAMS_PER_CONNECTION, streams_per_symbol
from engine.market.symbol_info import SymbolOverride
from engine.protocol.symbols import SYMBOL_PATTERN, is_symbol, normalize_symbol

__all__ = [
    "FEED_SOURCES",
    "AccountConfig",
    "BinanceConfig",
    "ClusterConfig",
    "Config",
    "FeedConfig",
    "IntervalsConfig",
    "LogConfig",
    "MarketConfig",
    "ReplayConfig",
    "ServerConfig",
    "SimulatedConfig",
    "StoreConfig",
    "SupervisorConfig",
    "SymbolOverride",
    "TradingConfig",
    "account_start",
    "is_loopback_host",
    "load_config",
    "load_config_text",
    "parse_config",
    "parse_toml",
    "read_toml",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_API_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")

Check = Callable[[Any], str | None]


def _opt(default: Any, check: Check | None = None, *, secret: bool = False) -> Any:
    """A config field with its default and an optional range check; a
    ``secret`` one is left out of the dataclass's ``repr`` (never printed)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"check": check}, repr=not secret)


def _asset(v: Any) -> str | None:
    return None if re.fullmatch(r"[A-Z0-9]{2,20}", v) else "must be an asset name, [A-Z0-9]{2,20}"


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _between(lo: float, hi: float) -> Check:
    def check(v: Any) -> str | None:
        return None if lo <= v <= hi else f"must be between {lo} and {hi}"

    return check


class _OneOf:
    """The check of an enum-like string key: its value must be one of ``choices``,
    matched case-insensitively (:meth:`canonical` gives the spelling stored)."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def canonical(self, v: str) -> str:
        for choice in self.choices:
            if choice.casefold() == v.casefold():
                return choice
        return v

    def __call__(self, v: Any) -> str | None:
        if v in self.choices:
            return None
        return f"must be one of {', '.join(map(repr, self.choices))}"


def _one_of(*choices: str) -> Check:
    return _OneOf(choices)


def _int_one_of(*choices: int) -> Check:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(map(str, choices))}"

    return check


def _symbols(v: Any) -> str | None:
    if not v:
        return "must list at least one symbol"
    for s in v:
        if not is_symbol(s):
            return f"{s!r} is not a symbol ({SYMBOL_PATTERN})"
    if len(set(v)) != len(v):
        return "lists a symbol twice"
    return None


def _ws_url(v: Any) -> str | None:
    return None if re.match(r"^wss?://[^\s/]+", v) else "must be a ws:// or wss:// URL"


def _http_url(v: Any) -> str | None:
    return None if re.match(r"^https?://[^\s/]+/?$", v) else "must be an http:// or https:// URL"


def _origins(v: Any) -> str | None:
    for o in v:
        if not re.match(r"^https?://[^\s/]+$", o):
            return f"{o!r} is not an origin like 'https://example.com:8443'"
    return None


_HOST_RE = re.compile(r"^(\*|[a-z0-9]([a-z0-9.-]{0,252})|\[[0-9a-f:.]+\])$")


def _hosts(v: Any) -> str | None:
    for h in v:
        if not _HOST_RE.match(h):
            return f"{h!r} is not a host name like 'trade.example.com', '10.0.0.5' or '[::1]'"
    return None


def _path(v: Any) -> str | None:
    return None if v == "" or re.match(r"^/[A-Za-z0-9/_.-]*$", v) else "must be '' or a /path"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = _opt("127.0.0.1")
    port: int = _opt(8000, _between(0, 65535))
    max_message_bytes: int = _opt(65536, _between(256, 16 * 1024 * 1024))
    ping_interval_s: float = _opt(20.0, _between(0.05, 3600))
    allowed_origins: tuple[str, ...] = _opt((), _origins)
    write_timeout_s: float = _opt(10.0, _between(0.05, 600))
    max_queued_bytes: int = _opt(1024 * 1024, _between(4096, 256 * 1024 * 1024))
    echo_path: str = _opt("", _path)
    rate_limit_per_s: float = _opt(20.0, _between(0.001, 1_000_000))
    rate_limit_burst: int = _opt(40, _between(1, 1_000_000))
    max_connections: int = _opt(1000, _between(1, 1_000_000))
    max_connections_per_ip: int = _opt(100, _between(1, 1_000_000))
    handshake_timeout_s: float = _opt(10.0, _between(0.05, 3600))
    max_header_bytes: int = _opt(16384, _between(1024, 1024 * 1024))
    max_pending_connections: int = _opt(512, _between(1, 1_000_000))
    max_pending_per_ip: int = _opt(64, _between(1, 1_000_000))
    allowed_hosts: tuple[str, ...] = _opt(("localhost", "127.0.0.1", "[::1]"), _hosts)
    auth_failure_rate_per_s: float = _opt(0.2, _between(0.001, 1_000_000))
    auth_failure_burst: int = _opt(10, _between(1, 1_000_000))
    account_rate_limit_per_s: float = _opt(50.0, _between(0.001, 1_000_000))
    # -- Binance-compatible REST API (docs/binance-compat.md) --
    #: Request weight one IP address may use per minute on /api/v3/ (Binance: 6000).
    api_weight_per_minute: int = _opt(6000, _between(1, 10_000_000))
    #: Account commands of one account waiting for an engine actor (beyond: ERROR BUSY).
    account_queue_limit: int = _opt(64, _between(1, 1_000_000))
    #: How long a closed connection's market subscriptions are kept for
    #: ``resume {session}`` (docs/protocol.md, resume).
    session_keep_s: float = _opt(300.0, _between(1, 86400))


@dataclass(frozen=True, slots=True)
class SimulatedConfig:
    seed: int = _opt(42)
    ticks_per_second: float = _opt(5.0, _between(0.01, 10000))


@dataclass(frozen=True, slots=True)
class BinanceConfig:
    url: str = _opt("wss://stream.binance.com:9443", _ws_url)
    stall_timeout_s: float = _opt(10.0, _between(0.1, 3600))
    #: Replace the connection this long after it opened (Binance cuts it at 24 h).
    rotate_after_s: float = _opt(85800.0, _between(1, 86000))
    #: A symbol subscribed live that sends no data within this time is unknown.
    subscribe_timeout_s: float = _opt(5.0, _between(0.1, 60))
    #: TCP connect, TLS and WebSocket handshake together must finish within this.
    connect_timeout_s: float = _opt(10.0, _between(0.1, 600))
    #: A frame (or a fragmented message) longer than this closes the connection.
    max_frame_bytes: int = _opt(1 << 20, _between(1024, 1 << 30))
    #: An aggregate-trade id more than this far ahead of the last one is implausible.
    max_trade_id_jump: int = _opt(1_000_000, _between(1, 1 << 62))
    #: A trade price further than this (percent) from the reference is implausible.
    max_price_deviation_pct: float = _opt(20.0, _between(0.01, 1000))
    #: A symbol added live is unsubscribed this long after its last subscriber left.
    unsubscribe_grace_s: float = _opt(60.0, _between(0, 86400))
    #: REST API base of ``GET /api/v3/exchangeInfo`` (the symbols' filters).
    rest_url: str = _opt("https://api.binance.com", _http_url)
    #: Timeout of one exchangeInfo request (3 attempts at most).
    rest_timeout_s: float = _opt(5.0, _between(0.1, 60))
    #: Also subscribe ``<symbol>@depth<N>@100ms`` (the top N levels); 0 = best bid/ask only.
    depth_levels: int = _opt(0, _int_one_of(0, 5, 10, 20))


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    path: str = _opt("")
    speed: float = _opt(1.0, _between(0, 1000))
    loop: bool = _opt(False)


#: The names ``feed.source`` accepts: the keys of ``engine.feeds.registry.SOURCES``
#: (that edge module holds each source's factory and capabilities; a test keeps
#: both lists equal).
FEED_SOURCES: tuple[str, ...] = ("simulated", "binance", "replay")


@dataclass(frozen=True, slots=True)
class FeedConfig:
    source: str = _opt("simulated", _one_of(*FEED_SOURCES))
    symbols: tuple[str, ...] = _opt(("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"), _symbols)
    simulated: SimulatedConfig = field(default_factory=SimulatedConfig)
    binance: BinanceConfig = field(default_factory=BinanceConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    #: Binance only: ``subscribe_ticker`` of a symbol not in ``symbols`` subscribes
    #: it upstream live (ERROR UNKNOWN_SYMBOL if Binance sends nothing for it).
    dynamic_symbols: bool = _opt(True)
    #: Symbols one account may have added live (pending or subscribed) at once.
    max_live_symbols_per_account: int = _opt(8, _between(1, 512))


@dataclass(frozen=True, slots=True)
class IntervalsConfig:
    positions_s: float = _opt(1.0, _between(0.01, 3600))
    portfolio_s: float = _opt(2.0, _between(0.01, 3600))
    equity_s: float = _opt(60.0, _between(0.01, 86400))


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    backoff_min_s: float = _opt(0.5, _between(0.001, 3600))
    backoff_max_s: float = _opt(30.0, _between(0.001, 86400))
    backoff_factor: float = _opt(2.0, _between(1, 100))
    backoff_jitter: float = _opt(0.2, _between(0, 0.99))
    reset_after_s: float = _opt(60.0, _between(0, 86400))
    max_restarts: int = _opt(10, _between(1, 1_000_000))
    restart_window_s: float = _opt(300.0, _between(1, 86400 * 7))


@dataclass(frozen=True, slots=True)
class TradingConfig:
    starting_balance: Decimal = _opt(Decimal(10000), _positive)
    fee_bps: Decimal = _opt(Decimal(10), _between(0, 1000))
    slippage_bps: Decimal = _opt(Decimal(0), _between(0, 1000))
    max_leverage: Decimal = _opt(Decimal(1), _between(0.01, 100))
    allow_short: bool = _opt(True)
    max_tick_age_s: float = _opt(5.0, _between(0.001, 86400))
    #: The asset equity is valued in, for accounts that set none (open mode's ``default``).
    home_asset: str = _opt("USDT", lambda v: _asset(v))
    #: Starting balances ``{asset = amount}`` of accounts that set none; empty means
    #: ``{<home_asset> = starting_balance}``.
    balances: tuple[tuple[str, Decimal], ...] = _opt(())
    #: How orders fill: ``book`` (takers at the bid/ask and depth, resting
    #: orders at most each trade's quantity), ``queue`` (as ``book``, and the
    #: quantity shown ahead at the order's price trades first) or ``full``
    #: (the whole order on the first qualifying trade). See docs/trading.md.
    fill_model: str = _opt("book", _one_of("book", "queue", "full"))


@dataclass(frozen=True, slots=True)
class StoreConfig:
    #: The SQLite ledger; ``None`` (the default, not writable in TOML): the user's
    #: data directory, ``$XDG_DATA_HOME/tickdesk/tickdesk.db`` (see
    #: :func:`engine.data_dir.default_store_path`); ``""``: in memory.
    path: str | None = _opt(None)
    synchronous: str = _opt("full", _one_of("full", "normal"))


def _redis_url(v: str) -> str | None:
    if v == "" or v.startswith(("redis://", "rediss://", "unix://")):
        return None
    return "must be a redis://, rediss:// or unix:// URL"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """``[cluster]``: one process (``all``), or one engine and many gateways
    over Redis Streams (docs/scaling.md)."""

    role: str = _opt("all", _one_of("all", "engine", "gateway"))
    redis_url: str = _opt("", _redis_url)


@dataclass(frozen=True, slots=True)
class MarketConfig:
    #: Klines kept per symbol and interval (memory and store); the oldest are dropped.
    kline_bars: int = _opt(1000, _between(1, 100_000))


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = _opt("INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    #: ``text`` (logfmt ``key=value``) or ``json`` (JSON lines); see engine/logs.py.
    format: str = _opt("text", _one_of("text", "json"))


@dataclass(frozen=True, slots=True)
class AccountConfig:
    name: str = _opt("", lambda v: None if _NAME_RE.match(v) else "must match [A-Za-z0-9_.-]{1,64}")
    token: str = _opt("", lambda v: None if len(v) >= 8 else "must be at least 8 characters",
                      secret=True)
    #: Read the token from this environment variable instead (keeps it out of the file).
    token_env: str = _opt("", lambda v: None if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v)
                          else "must be an environment variable name")
    #: The account's home asset; empty: ``trading.home_asset``.
    home_asset: str = _opt("", lambda v: None if v == "" else _asset(v))
    #: The account's starting balances; empty: ``trading.balances``.
    balances: tuple[tuple[str, Decimal], ...] = _opt(())
    # -- Binance-compatible REST API (docs/binance-compat.md) --
    #: The account's Binance-style API key (``X-MBX-APIKEY``); empty: no REST access.
    api_key: str = _opt("", lambda v: None if _API_KEY_RE.match(v)
                        else "must be 8-128 characters of [A-Za-z0-9_-]")
    #: The secret that HMAC-SHA256-signs its requests (with ``api_key``).
    api_secret: str = _opt("", lambda v: None if len(v) >= 8
                           else "must be at least 8 characters", secret=True)
    #: Read ``api_secret`` from this environment variable instead.
    api_secret_env: str = _opt("", lambda v: None if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v)
                               else "must be an environment variable name")


def account_start(trading: TradingConfig,
                  account: AccountConfig | None = None) -> tuple[str, dict[str, Decimal]]:
    """``(home_asset, starting balances)`` of an account (None: open mode's
    ``default``), with the documented defaults applied."""
    home = (account.home_asset if account is not None else "") or trading.home_asset
    pairs = (account.balances if account is not None else ()) or trading.balances
    balances = dict(pairs) if pairs else {home: trading.starting_balance}
    return home, balances


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    intervals: IntervalsConfig = field(default_factory=IntervalsConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    trading: TradingConfig = field(default_factory=TradingConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    log: LogConfig = field(default_factory=LogConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    accounts: tuple[AccountConfig, ...] = ()
    #: ``[[symbols]]``: per-symbol changes to the exchange filters (see
    #: :class:`~engine.market.symbol_info.SymbolOverride`).
    symbols: tuple[SymbolOverride, ...] = ()

    @property
    def open_mode(self) -> bool:
        """No accounts configured: every connection acts on account ``default``."""
        return not self.accounts

    def with_overrides(self, **sections: Any) -> Config:
        """A copy with whole sections replaced (for tests and embedding)."""
        return replace(self, **sections)


T = TypeVar("T")


def _coerce(key: str, annotation: str, value: Any) -> Any:
    """Convert a TOML value to the field's type, or raise ConfigError."""
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"must be true or false, not {type(value).__name__}")
    if annotation == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(key, f"must be an integer, not {type(value).__name__}")
    if annotation == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = float(value)
            if f != f or f in (float("inf"), float("-inf")):
                raise ConfigError(key, "must be a finite number")
            return f
        raise ConfigError(key, f"must be a number, not {type(value).__name__}")
    if annotation == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(key, f"must be a number, not {type(value).__name__}")
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(key, f"{value!r} is not a number") from None
        if not d.is_finite():
            raise ConfigError(key, "must be a finite number")
        return d
    if annotation == "str":
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"must be a string, not {type(value).__name__}")
    if annotation == "tuple[tuple[str, Decimal], ...]":
        if not isinstance(value, Mapping):
            raise ConfigError(key, "must be a table {ASSET = amount, ...}")
        pairs: list[tuple[str, Decimal]] = []
        for asset, amount in value.items():
            problem = _asset(asset)
            if problem:
                raise ConfigError(f"{key}.{asset}", problem)
            d = _coerce(f"{key}.{asset}", "Decimal", amount)
            if d < 0:
                raise ConfigError(f"{key}.{asset}", "must be >= 0")
            pairs.append((asset, d))
        return tuple(sorted(pairs))
    if annotation == "tuple[str, ...]":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(key, "must be a list of strings")
    raise AssertionError(f"unsupported config type {annotation}")  # pragma: no cover


def _build(cls: type[T], data: Any, prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, "must be a table")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for k in data:
        if k not in known:
            raise ConfigError(f"{prefix}.{k}" if prefix else str(k), "unknown key")
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            continue
        key = f"{prefix}.{name}" if prefix else name
        annotation = str(f.type)
        sub = _SECTIONS.get(annotation)
        if sub is not None:
            kwargs[name] = _build(sub, data[name], key)
            continue
        if annotation == "tuple[AccountConfig, ...]":
            kwargs[name] = _accounts(data[name], key)
            continue
        if annotation == "tuple[SymbolOverride, ...]":
            kwargs[name] = _symbol_overrides(data[name], key)
            continue
        value = _coerce(key, annotation.removesuffix(" | None"), data[name])
        if key == "feed.symbols":
            value = tuple(normalize_symbol(s) or s for s in value)
        check = f.metadata.get("check")
        if isinstance(check, _OneOf) and isinstance(value, str):
            value = check.canonical(value)  # enum-like values are case-insensitive
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(key, problem)
        kwargs[name] = value
    return cls(**kwargs)


def _accounts(value: Any, key: str) -> tuple[AccountConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError(key, "must be an array of tables ([[accounts]])")
    out: list[AccountConfig] = []
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        acct = _build(AccountConfig, item, k)
        if "name" not in item:
            raise ConfigError(f"{k}.name", "is required")
        if ("token" in item) == ("token_env" in item):
            raise ConfigError(f"{k}.token", "give exactly one of token and token_env")
        if "api_secret" in item and "api_secret_env" in item:
            raise ConfigError(f"{k}.api_secret", "give at most one of api_secret and "
                              "api_secret_env")
        has_secret = "api_secret" in item or "api_secret_env" in item
        if ("api_key" in item) != has_secret:
            raise ConfigError(f"{k}.api_key" if has_secret else f"{k}.api_secret",
                              "api_key needs api_secret (or api_secret_env), and the other "
                              "way round")
        out.append(acct)
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise ConfigError(key, "two accounts have the same name")
    keys = [a.api_key for a in out if a.api_key]
    if len(set(keys)) != len(keys):
        raise ConfigError(key, "two accounts have the same api_key")
    return tuple(out)


def _symbol_overrides(value: Any, key: str) -> tuple[SymbolOverride, ...]:
    """``[[symbols]]``: ``symbol`` plus any override field (all optional, >= 0)."""
    if not isinstance(value, list):
        raise ConfigError(key, "must be an array of tables ([[symbols]])")
    known = {f.name: str(f.type).removesuffix(" | None") for f in fields(SymbolOverride)}
    out: list[SymbolOverride] = []
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(k, "must be a table")
        kwargs: dict[str, Any] = {}
        for name, raw in item.items():
            if name not in known:
                raise ConfigError(f"{k}.{name}", "unknown key")
            v = _coerce(f"{k}.{name}", known[name], raw)
            if isinstance(v, (int, Decimal)) and not isinstance(v, bool) and v < 0:
                raise ConfigError(f"{k}.{name}", "must be >= 0 (0 means no limit)")
            kwargs[name] = v
        symbol = kwargs.get("symbol")
        if symbol is None:
            raise ConfigError(f"{k}.symbol", "is required")
        normal = normalize_symbol(symbol)
        if normal is None:
            raise ConfigError(f"{k}.symbol", f"{symbol!r} is not a symbol ({SYMBOL_PATTERN})")
        kwargs["symbol"] = normal
        out.append(SymbolOverride(**kwargs))
    names = [o.symbol for o in out]
    if len(set(names)) != len(names):
        raise ConfigError(key, "lists a symbol twice")
    return tuple(out)


def _resolve_tokens(accounts: tuple[AccountConfig, ...],
                    env: Mapping[str, str]) -> tuple[AccountConfig, ...]:
    """Fill ``token`` from ``token_env`` and ``api_secret`` from
    ``api_secret_env``; tokens must be long enough and unique."""
    out: list[AccountConfig] = []
    for i, acct in enumerate(accounts):
        if acct.token_env:
            value = env.get(acct.token_env, "")
            if len(value) < 8:
                raise ConfigError(f"accounts[{i}].token_env",
                                  f"environment variable {acct.token_env} is not set or "
                                  "shorter than 8 characters")
            acct = replace(acct, token=value)
        if acct.api_secret_env:
            secret = env.get(acct.api_secret_env, "")
            if len(secret) < 8:
                raise ConfigError(f"accounts[{i}].api_secret_env",
                                  f"environment variable {acct.api_secret_env} is not set or "
                                  "shorter than 8 characters")
            acct = replace(acct, api_secret=secret)
        out.append(acct)
    tokens = [a.token for a in out]
    if len(set(tokens)) != len(tokens):
        raise ConfigError("accounts", "two accounts have the same token")
    return tuple(out)


_SECTIONS: dict[str, type[Any]] = {
    "ServerConfig": ServerConfig,
    "FeedConfig": FeedConfig,
    "SimulatedConfig": SimulatedConfig,
    "BinanceConfig": BinanceConfig,
    "ReplayConfig": ReplayConfig,
    "IntervalsConfig": IntervalsConfig,
    "SupervisorConfig": SupervisorConfig,
    "TradingConfig": TradingConfig,
    "StoreConfig": StoreConfig,
    "MarketConfig": MarketConfig,
    "LogConfig": LogConfig,
    "ClusterConfig": ClusterConfig,
}


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed TOML mapping into a :class:`Config`.

    ``env`` (the process environment, passed in by the caller) supplies the
    tokens of accounts configured with ``token_env``."""
    cfg = _build(Config, data, "")
    if cfg.accounts:
        cfg = replace(cfg, accounts=_resolve_tokens(cfg.accounts, env or {}))
    sup = cfg.supervisor
    if sup.backoff_max_s < sup.backoff_min_s:
        raise ConfigError("supervisor.backoff_max_s", "must be >= supervisor.backoff_min_s")
    if cfg.feed.source == "replay" and not cfg.feed.replay.path:
        raise ConfigError("feed.replay.path", "is required when feed.source = 'replay'")
    if cfg.feed.source == "binance":
        _check_binance_streams(cfg.feed)
    if cfg.cluster.role != "all" and not cfg.cluster.redis_url:
        raise ConfigError("cluster.redis_url",
                          f"is required when cluster.role = {cfg.cluster.role!r}")
    if cfg.open_mode and not is_loopback_host(cfg.server.host):
        raise ConfigError(
            "server.host",
            f"{cfg.server.host!r} is not a loopback address; configure [[accounts]] with tokens "
            "before listening on a network interface (open mode is loopback-only)",
        )
    return cfg


def _check_binance_streams(feed: FeedConfig) -> None:
    """The configured symbols' streams must fit on one Binance connection."""
    per_symbol = streams_per_symbol(feed.binance.depth_levels)
    need = len(feed.symbols) * per_symbol
    if need > MAX_STREAMS_PER_CONNECTION:
        raise ConfigError(
            "feed.symbols",
            f"{len(feed.symbols)} symbols need {need} streams ({per_symbol} each); one "
            f"Binance connection carries at most {MAX_STREAMS_PER_CONNECTION}, so at most "
            f"{MAX_STREAMS_PER_CONNECTION // per_symbol} symbols",
        )


def parse_toml(text: str, name: str = "config.toml") -> dict[str, Any]:
    """The mapping of a TOML document; a syntax error is a ConfigError naming
    ``name`` (the file), the line and the column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, f"not valid TOML: {exc}") from None


def read_toml(path: str) -> dict[str, Any]:
    """The mapping of the TOML file ``path`` (ConfigError naming it if it
    cannot be read or parsed)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return parse_toml(text, path)


def load_config_text(text: str, env: Mapping[str, str] | None = None) -> Config:
    """Parse TOML text into a :class:`Config` (syntax errors name the line)."""
    return parse_config(parse_toml(text), env)


def load_config(path: str, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML configuration file (raises ConfigError).

    The only function here that touches the file system and the process
    environment: ``env`` (default ``os.environ``) resolves ``token_env``.
    """
    return parse_config(read_toml(path), os.environ if env is None else env)
