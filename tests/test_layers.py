"""The layers and the directions they may import in, checked on the source.

::

    tickdesk            public surface: Engine facade, CLI, client library, bench
       │  may import everything below
    actors              the actor tree (one module per actor)
       │  may import engine
    engine edges        server, feeds, store, clock, dashboard, logs: sockets, threads, files
       │  may import the pure core
    engine pure core    protocol, trading, market, money, config, errors, backoff, ...
                        imports no thread, socket, clock, pykka or WebSocket module

Nothing imports upwards: ``engine`` never imports ``actors`` or ``tickdesk``, and
``actors`` never imports ``tickdesk``. The client library (``tickdesk.client``)
talks to a daemon over the wire and so may use only the pure core of ``engine``
(the protocol's enums and rules), never its edges or actors; its model modules
are pure like the core.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The pure core: modules and whole packages (every ``.py`` under them).
PURE = [
    "engine/money.py",
    "engine/messages.py",
    "engine/errors.py",
    "engine/stats.py",
    "engine/config.py",
    "engine/config_layers.py",
    "engine/config_render.py",
    "engine/data_dir.py",
    "engine/outbox.py",
    "engine/schedule.py",
    "engine/backoff.py",
    "engine/health.py",
    "engine/rate_limit.py",
    "engine/version.py",
    "engine/account_log.py",
    "engine/session_registry.py",
    "engine/protocol",
    "engine/market",
    "engine/trading",
    "engine/binance",
    "tickdesk/client/errors.py",
    "tickdesk/client/types.py",
    "tickdesk/client/inbox.py",
    "tickdesk/client/render.py",
    "tickdesk/client/watch_view.py",
]
#: What a pure module may not import (it would bring threads, I/O or the clock).
IMPURE = {"threading", "_thread", "socket", "time", "pykka", "simple_websocket", "websocket",
          "asyncio", "selectors", "sqlite3", "datetime", "gzip", "subprocess"}
#: Edge modules of ``engine`` (I/O); pure modules may not import them.
EDGES = ("engine.server", "engine.feeds", "engine.store", "engine.clock", "engine.dashboard",
         "engine.logs")


def _py_files(entry: str) -> list[Path]:
    p = ROOT / entry
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


def _modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from a.b import c`` gives ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    mods = _modules(path)
    roots = {m.split(".")[0] for m in mods}
    bad: list[str] = []
    pure = any(rel == e or rel.startswith(e + "/") for e in PURE)
    if pure:
        bad += [f"imports {r} (impure)" for r in sorted(roots & IMPURE)]
        bad += [f"imports the edge {m}" for m in sorted(mods) if m.startswith(EDGES)]
    if rel.startswith("engine/"):
        bad += [f"imports {m} (upwards)" for m in sorted(mods)
                if m.split(".")[0] in ("actors", "tickdesk")]
    if rel.startswith("actors/"):
        bad += [f"imports {m} (upwards)" for m in sorted(mods) if m.split(".")[0] == "tickdesk"]
    if rel.startswith("tickdesk/client/"):
        bad += [f"imports {m} (the client speaks the wire only)" for m in sorted(mods)
                if m.split(".")[0] == "actors" or m.startswith(EDGES)
                or m in ("tickdesk", "tickdesk.app", "tickdesk.cli")
                or m.startswith("tickdesk.bench")]
    return [f"{rel} {b}" for b in bad]


SOURCES = sorted({p for top in ("engine", "actors", "tickdesk") for p in _py_files(top)})


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_imports_only_downwards(path: Path) -> None:
    assert _violations(path) == []


def test_every_pure_entry_exists() -> None:
    missing = [e for e in PURE if not (ROOT / e).exists()]
    assert missing == []


def test_the_check_catches_each_kind_of_violation() -> None:
    cases = {
        "engine/trading/bad.py": "import threading\nfrom engine.store import Store\n",
        "engine/server/bad.py": "from actors.feed import FeedActor\n",
        "actors/bad.py": "from tickdesk.app import Engine\n",
        "tickdesk/client/bad.py": "from engine.server.hub import Hub\n",
    }
    for rel, text in cases.items():
        path = ROOT / rel  # the rules depend on where a module sits
        assert not path.exists()
        path.write_text(text)
        try:
            assert _violations(path), rel
        finally:
            path.unlink()


def test_importing_the_pure_core_loads_no_io_module() -> None:
    """In a fresh interpreter the pure core pulls in no thread, socket or actor module."""
    modules = [f.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
               for e in PURE for f in _py_files(e)]
    # The client's pure models are checked on their source only: importing any
    # ``tickdesk.*`` module runs the facade's ``__init__``, which loads the engine.
    modules = [m.removesuffix(".__init__") for m in modules if not m.startswith("tickdesk.")]
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"for m in {modules!r}: __import__(m)\n"
        "bad = {'socket', 'pykka', 'simple_websocket', 'websocket', 'selectors', 'threading',\n"
        "       'sqlite3', 'actors'}\n"
        "print(sorted(bad & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
