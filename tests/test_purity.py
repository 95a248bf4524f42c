"""The pure core imports no threads, sockets, clocks, pykka or simple_websocket."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = [
    "engine/messages.py",
    "engine/errors.py",
    "engine/config.py",
    "engine/outbox.py",
    "engine/schedule.py",
    "engine/backoff.py",
    "engine/rate_limit.py",
    "engine/protocol",
    "engine/market",
    "engine/trading",
    "engine/client/errors.py",
    "engine/client/types.py",
    "engine/client/inbox.py",
    "engine/client/render.py",
]
FORBIDDEN = {"threading", "socket", "time", "pykka", "simple_websocket", "selectors",
             "asyncio", "_thread", "websocket"}


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for entry in PURE:
        p = ROOT / entry
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return files


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    bad = _imports(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_pure_modules_import_no_edge_module() -> None:
    for path in _pure_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("engine.server", "engine.app", "actors",
                                                   "engine.clock", "engine.store")), (
                    f"{path.relative_to(ROOT)} imports edge module {node.module}")


def test_the_check_catches_an_impure_module(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import threading\nfrom time import monotonic\n")
    assert _imports(bad) & FORBIDDEN == {"threading", "time"}
