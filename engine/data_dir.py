"""Where tickdesk keeps its data by default: the user's data directory (XDG).

Pure core: the environment is passed in. The default store is
``$XDG_DATA_HOME/tickdesk/tickdesk.db``, or ``~/.local/share/tickdesk/tickdesk.db``
when ``XDG_DATA_HOME`` is unset, empty or relative (the XDG Base Directory
specification ignores a relative value). Nothing here creates anything: the
Engine creates the store's directory when it opens the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["MEMORY_PATHS", "data_home", "default_store_path", "resolve_store_path"]

#: ``store.path`` values that keep everything in memory.
MEMORY_PATHS = ("", ":memory:")


def data_home(env: Mapping[str, str]) -> str:
    """``$XDG_DATA_HOME`` if absolute, else ``$HOME/.local/share``."""
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return xdg
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".local", "share")


def default_store_path(env: Mapping[str, str]) -> str:
    """The store used when ``store.path`` is not set anywhere."""
    return os.path.join(data_home(env), "tickdesk", "tickdesk.db")


def resolve_store_path(path: str, base_dir: str) -> str:
    """``path`` with ``~`` expanded and, when relative, joined to ``base_dir``
    (in-memory values and ``file:`` URIs are returned unchanged)."""
    if path in MEMORY_PATHS or path.startswith("file:"):
        return path
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
