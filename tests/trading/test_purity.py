"""The order core is pure: no threads, sockets, clocks, pykka or websockets."""

from __future__ import annotations

import ast
from pathlib import Path

import engine.trading

FORBIDDEN = {"threading", "socket", "time", "pykka", "simple_websocket", "asyncio", "random"}
PACKAGE = Path(engine.trading.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_trading_modules_import_nothing_impure() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for module in modules:
        assert not imported_roots(module) & FORBIDDEN, module.name
