"""The effective configuration as TOML, each value with where it came from.

Pure core: what ``tickdesk run --print-config`` prints. Every key of every
section is written (generic over the config dataclasses, so new keys appear
by themselves), followed by a comment naming its origin (``default``, the
file's path, ``env TICKDESK_...``, ``flag --port``). Secrets are redacted:
any key named ``token``, ``password``, ``api_key``, or ending in ``secret``
or ``_token`` is written as ``"[REDACTED]"`` when set. Without secrets the
output is a valid configuration file that loads to the same configuration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

from engine.config import Config
from engine.config_layers import Effective, is_secret

__all__ = ["REDACTED", "is_secret", "render_effective"]

REDACTED = "[REDACTED]"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else json.dumps(str(v))
    if isinstance(v, Decimal):
        # Integral amounts as numbers; others as strings, which stay exact.
        return format(v, "f") if v == v.to_integral_value() else json.dumps(format(v, "f"))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")  # pragma: no cover


def _table(pairs: tuple[tuple[str, Any], ...]) -> str:
    return "{" + ", ".join(f"{k} = {_value(a)}" for k, a in pairs) + "}"


def _line(name: str, value: Any, origin: str, annotation: str) -> str:
    if is_secret(name) and value:
        shown = json.dumps(REDACTED)
    elif annotation == "tuple[tuple[str, Decimal], ...]":
        shown = _table(value)
    else:
        shown = _value(value)
    return f"{name} = {shown}  # {origin}"


def _section(obj: Any, prefix: str, eff: Effective, out: list[str]) -> None:
    leaves: list[str] = []
    subs: list[tuple[str, Any]] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            subs.append((f.name, value))
        elif value is not None:
            leaves.append(_line(f.name, value, eff.origin(prefix + f.name), str(f.type)))
    if leaves:
        out.append(f"\n[{prefix.rstrip('.')}]")
        out.extend(leaves)
    for name, sub in subs:
        _section(sub, f"{prefix}{name}.", eff, out)


def _tables(name: str, items: tuple[Any, ...], eff: Effective, out: list[str]) -> None:
    origin = eff.origin(name)
    for item in items:
        out.append(f"\n[[{name}]]")
        for i, f in enumerate(fields(item)):
            value = getattr(item, f.name)
            if f.name == "token" and getattr(item, "token_env", None):
                continue  # read from the environment: token_env says where
            if i and (value is None or value == f.default):
                continue  # the first field names the table; others only when set
            out.append(_line(f.name, value, origin, str(f.type)))


def render_effective(eff: Effective, header: Mapping[str, str] | None = None) -> str:
    """The TOML text of ``eff`` (``header``: comment lines to start with)."""
    out = [f"# {k}: {v}" for k, v in (header or {}).items()]
    cfg: Config = eff.config
    arrays: list[tuple[str, tuple[Any, ...]]] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            _section(value, f"{f.name}.", eff, out)
        elif isinstance(value, tuple):
            arrays.append((f.name, value))
    for name, items in arrays:
        _tables(name, items, eff, out)
    return "\n".join(out).lstrip("\n") + "\n"
