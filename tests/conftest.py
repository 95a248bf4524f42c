"""Suite-wide fixtures and a guard: no test may leave a store in the working directory.

``Config()`` keeps the daemon's default ``store.path = "tickdesk.db"`` (relative
to the CWD). A test that builds an :class:`~engine.app.Engine` must choose its
store: ``store.path = ""`` (in memory, nothing on disk) through
:func:`memory_store_config`, or a file under ``tmp_path`` through the
``store_path`` fixture. The session fails if ``tickdesk.db`` appears in the
directory pytest was started from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Config, StoreConfig

_STRAY = ("tickdesk.db", "tickdesk.db-wal", "tickdesk.db-shm")
_preexisting: set[str] = set()


def memory_store_config(config: Config | None = None) -> Config:
    """``config`` (default ``Config()``) with ``store.path = ""`` (no persistence)."""
    return (config or Config()).with_overrides(store=StoreConfig(path=""))


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    """A database file under the test's own ``tmp_path``."""
    return str(tmp_path / "tickdesk.db")


def pytest_sessionstart(session: pytest.Session) -> None:
    _preexisting.update(name for name in _STRAY if Path(name).exists())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stray = [name for name in _STRAY if Path(name).exists() and name not in _preexisting]
    if stray:
        print(f"\nERROR: a test wrote {', '.join(stray)} into {Path.cwd()}: pass "
              "store.path under tmp_path or '' (see tests/conftest.py)")
        for name in stray:
            Path(name).unlink()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
