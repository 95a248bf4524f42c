"""tickdesk: a real-time paper-trading engine built as thread-based actors.

The public surface for embedding is :class:`Engine` (start/stop the whole
engine in-process) and :class:`LocalSession` (an in-process client), plus
:func:`load_config` for reading a ``config.toml``.
"""

from typing import TYPE_CHECKING, Any

from engine.config import Config, load_config_text
from engine.errors import ConfigError, TickdeskError
from engine.version import __version__

if TYPE_CHECKING:
    from engine.app import Engine, LocalSession, SessionClosed

__all__ = [
    "Config",
    "ConfigError",
    "Engine",
    "LocalSession",
    "SessionClosed",
    "TickdeskError",
    "__version__",
    "load_config",
    "load_config_text",
]


def load_config(path: str) -> Config:
    """Read and validate a TOML configuration file (raises ConfigError)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    import os

    return load_config_text(text, os.environ)


def __getattr__(name: str) -> Any:
    # The Engine pulls in the actors, which import pure modules of this
    # package: load it on first use so ``import actors.x`` never meets a
    # half-initialised ``engine``.
    if name in ("Engine", "LocalSession", "SessionClosed"):
        from engine import app

        return getattr(app, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
