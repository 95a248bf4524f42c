"""The pure modules import no threads, sockets, clocks, pykka or WebSocket libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "engine/market/binance_codec.py",
    "engine/market/replay_format.py",
    "engine/market/upstream_limits.py",
    "engine/market/agg_gaps.py",
    "engine/backoff.py",
]
FORBIDDEN = {
    "threading", "_thread", "socket", "time", "pykka", "simple_websocket", "websocket",
    "asyncio", "selectors", "random", "gzip", "datetime",
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("relative", PURE)
def test_no_forbidden_imports(relative: str) -> None:
    path = ROOT / relative
    assert not _imports(path) & FORBIDDEN
    assert "Pure core" in (ast.get_docstring(ast.parse(path.read_text())) or "")


def test_importing_pure_modules_loads_no_io_modules() -> None:
    """In a fresh interpreter, the pure modules add no I/O module to what ``engine`` loads.

    (The ``engine`` package itself may import the edges for embedding; the
    baseline is taken after ``import engine``.)
    """
    modules = [p.removesuffix(".py").replace("/", ".") for p in PURE]
    code = (
        "import sys, engine\n"
        "before = set(sys.modules)\n"
        f"for m in {modules!r}: __import__(m)\n"
        "bad = {'socket', 'pykka', 'simple_websocket', 'websocket', 'selectors', 'threading'}\n"
        "print(sorted(bad & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
