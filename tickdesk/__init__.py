"""tickdesk: a real-time paper-trading engine built as thread-based actors.

This is the public surface; everything else is implementation
(:mod:`engine`: the pure core and the I/O edges; :mod:`actors`: the actor
tree). Embed the engine::

    from tickdesk import Config, Engine

    with Engine(Config(), listen=False) as engine:
        session = engine.connect()
        session.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})

or talk to a running daemon with :class:`TickdeskClient`. Errors tickdesk
raises on purpose derive from :class:`TickdeskError` (the tree is drawn in
:mod:`engine.errors`).
"""

from engine.config import (
    AccountConfig,
    Config,
    FeedConfig,
    ServerConfig,
    StoreConfig,
    TradingConfig,
    load_config,
    load_config_text,
)
from engine.errors import ConfigError, TickdeskError
from engine.version import __version__
from tickdesk.app import Engine, LocalSession, SessionClosed
from tickdesk.client import CommandError, TickdeskClient

__all__ = [
    "AccountConfig",
    "CommandError",
    "Config",
    "ConfigError",
    "Engine",
    "FeedConfig",
    "LocalSession",
    "ServerConfig",
    "SessionClosed",
    "StoreConfig",
    "TickdeskClient",
    "TickdeskError",
    "TradingConfig",
    "__version__",
    "load_config",
    "load_config_text",
]
