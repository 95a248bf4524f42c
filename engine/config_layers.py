"""The effective configuration: defaults, a file, the environment and flags, layered.

Pure core: the caller passes the file's path (read here, as
:func:`engine.config.load_config` does), the environment and the flags.
Precedence, highest first: **flag > environment > file > default**. Every key
remembers where its value came from (:attr:`Effective.origins`), for
``tickdesk run --print-config`` and for errors: a bad value is a
:class:`~engine.errors.ConfigError` naming the key and its origin
(``server.port (from env TICKDESK_SERVER__PORT): must be an integer, not str``).

Environment: any key is ``TICKDESK_<SECTION>__<KEY>``, nested sections joined
by ``__`` as well (``TICKDESK_FEED__SIMULATED__SEED``), matched
case-insensitively. A variable that starts with ``TICKDESK_`` and contains
``__`` is in this name space: one that names no key, or a section, or an array
of tables (``[[accounts]]``, ``[[symbols]]``), is an error naming the variable.
Other ``TICKDESK_*`` variables (``TICKDESK_TOKEN``, ``TICKDESK_URL``, an
account's ``token_env``) are not configuration keys and are left alone.

Values (environment and flags) are parsed as TOML values and then validated
exactly as the file's are (same types, same ranges, same messages): ``9000``
is an integer, ``true`` a boolean, ``["A", "B"]`` a list. A string key takes
the text as it is (quotes optional); a list-of-strings key also takes
``A,B`` (comma-separated). Everything generic over the config dataclasses: a
key added to them can be overridden and is shown with its origin, with no
change here.

``store.path``: unset anywhere, the user's data directory
(:func:`engine.data_dir.default_store_path`). A relative path is resolved
against the directory of the file that set it, or against the current
directory when it came from the environment or a flag; ``~`` is expanded.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from engine.config import Config, parse_config, read_toml
from engine.data_dir import default_store_path, resolve_store_path
from engine.errors import ConfigError

__all__ = [
    "DEFAULT",
    "ENV_PREFIX",
    "ENV_SEPARATOR",
    "Effective",
    "Override",
    "env_overrides",
    "is_secret",
    "key_annotation",
    "load_effective",
    "parse_value",
]

#: The origin of a value nothing set.
DEFAULT = "default"
ENV_PREFIX = "TICKDESK_"
ENV_SEPARATOR = "__"

#: An array of tables (``[[accounts]]``): a tuple of a config class; no single
#: value (environment, flag) can set one.
_TABLES_RE = re.compile(r"tuple\[(?!Decimal\b)[A-Z]\w*, \.\.\.\]")
_NOT_TOML = object()
_SECRET_RE = re.compile(r"^(token|password|api_key)$|(secret|_token)$")


def is_secret(name: str) -> bool:
    """True for a key (its last part) whose value is never printed: ``token``,
    ``password``, ``api_key``, or a name ending in ``secret`` or ``_token``."""
    return bool(_SECRET_RE.search(name.rsplit(".", 1)[-1]))


@dataclass(frozen=True, slots=True)
class Override:
    """One value given outside the file: ``key`` dotted (``server.port``),
    ``raw`` the text as given, ``origin`` what to call it (``env NAME``,
    ``flag --port``)."""

    key: str
    raw: str
    origin: str


@dataclass(frozen=True, slots=True)
class Effective:
    """The validated configuration and, for every key that was set, where from."""

    config: Config
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """The origin of the value of dotted ``key`` (``default`` if nothing set it)."""
        return _origin_of(key, self.origins) or DEFAULT


def env_overrides(env: Mapping[str, str]) -> list[Override]:
    """The ``TICKDESK_<SECTION>__<KEY>`` variables of ``env``, as overrides
    (sorted by name; each key checked by :func:`key_annotation`)."""
    out: list[Override] = []
    for name in sorted(env):
        rest = name[len(ENV_PREFIX):]
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in rest:
            continue
        key = ".".join(part.lower() for part in rest.split(ENV_SEPARATOR))
        out.append(Override(key, env[name], f"env {name}"))
    return out


def key_annotation(key: str, origin: str) -> str:
    """The type (as written in the dataclass) of the leaf key ``key``, or a
    ConfigError naming ``origin`` if it is no key a single value can set."""
    node: Any = Config()
    parts = key.split(".")
    for i, part in enumerate(parts):
        known = {f.name: f for f in fields(node)} if is_dataclass(node) else {}
        f = known.get(part)
        if f is None:
            raise ConfigError(".".join(parts[:i + 1]) or key, "unknown key", origin)
        value = getattr(node, part)
        if is_dataclass(value):
            if i == len(parts) - 1:
                raise ConfigError(key, "is a section: name one of its keys", origin)
            node = value
            continue
        annotation = str(f.type)
        if _TABLES_RE.fullmatch(annotation):
            raise ConfigError(key, "an array of tables can only be set in a config file", origin)
        if i != len(parts) - 1:
            raise ConfigError(".".join(parts[:i + 2]), "unknown key", origin)
        return annotation
    raise ConfigError(key, "unknown key", origin)  # pragma: no cover (empty key)


def _toml_value(raw: str) -> Any:
    try:
        doc = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return _NOT_TOML
    return doc["v"] if doc.keys() == {"v"} else _NOT_TOML


def parse_value(raw: str, annotation: str) -> Any:
    """The value ``raw`` stands for in a key of type ``annotation`` (validated
    later, with the file's values)."""
    if annotation in ("str", "str | None"):
        if raw[:1] in ('"', "'"):
            quoted = _toml_value(raw)
            if isinstance(quoted, str):
                return quoted
        return raw
    value = _toml_value(raw)
    if annotation == "tuple[str, ...]" and not isinstance(value, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw if value is _NOT_TOML else value


def _file_origins(data: Mapping[str, Any], prefix: str, origin: str,
                  out: dict[str, str]) -> None:
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not _is_leaf_table(key):
            _file_origins(v, f"{key}.", origin, out)
        else:
            out[key] = origin


def _is_leaf_table(key: str) -> bool:
    """True for a key whose value is itself a table (``trading.balances``)."""
    try:
        return key_annotation(key, "") == "tuple[tuple[str, Decimal], ...]"
    except ConfigError:
        return False


def _set(data: dict[str, Any], key: str, value: Any, origin: str) -> None:
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[:i + 1]), "must be a table", origin)
        node = child
    node[parts[-1]] = value


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def _origin_of(key: str, origins: Mapping[str, str]) -> str:
    """The origin of ``key`` or of the nearest enclosing key that has one
    (``accounts[0].token`` → ``accounts``; ``trading.balances.BTC`` →
    ``trading.balances``)."""
    while key:
        if key in origins:
            return origins[key]
        cut = max(key.rfind("."), key.rfind("["))
        key = key[:cut] if cut > 0 else ""
    return ""


def load_effective(path: str | None, env: Mapping[str, str],
                   flags: Sequence[Override] = (), cwd: str = ".") -> Effective:
    """Read ``path`` (None: no file), apply ``env``'s overrides, then ``flags``,
    validate, and resolve ``store.path`` (see the module docstring). ``env``
    also resolves accounts' ``token_env``. Raises ConfigError."""
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    shown = ""
    if path is not None:
        shown = path if os.path.isabs(path) else os.path.normpath(os.path.join(cwd, path))
        data = _copy(read_toml(shown))
        _file_origins(data, "", shown, origins)
    for override in (*env_overrides(env), *flags):
        annotation = key_annotation(override.key, override.origin)
        _set(data, override.key, parse_value(override.raw, annotation), override.origin)
        for stale in [k for k in origins if k.startswith(override.key + ".")]:
            del origins[stale]  # a table value (balances) replaced as a whole
        origins[override.key] = override.origin
    given = {o.origin: o.raw for o in (*env_overrides(env), *flags)}
    try:
        cfg = parse_config(data, env)
    except ConfigError as exc:
        if exc.origin:
            raise
        origin = _origin_of(exc.key, origins)
        message = exc.message
        raw = given.get(origin)
        if raw is not None and not is_secret(exc.key) and repr(raw) not in message:
            message += f" (given {raw!r})"
        raise ConfigError(exc.key, message, origin) from None
    store_origin = origins.get("store.path", DEFAULT)
    if cfg.store.path is None:
        store = default_store_path(env)
    else:
        base = os.path.dirname(shown) if shown and store_origin == shown else cwd
        store = resolve_store_path(cfg.store.path, base)
    cfg = replace(cfg, store=replace(cfg.store, path=store))
    return Effective(cfg, origins)

