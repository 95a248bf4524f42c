"""Shared fixtures: no leaked threads or actors, engines on ephemeral loopback ports.

Waits are event-based with a scaled timeout unit (``TICKDESK_TEST_TIMEOUT``,
default 1.0) instead of sleeps, in the spirit of websockets' ``tests/utils.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from hypothesis import settings

from engine.config import FeedConfig, IntervalsConfig, ServerConfig, SimulatedConfig, StoreConfig
from tests.fakes.binance_rest import FakeBinanceRest, shared_rest
from tickdesk import Config, Engine

# No per-example time limit in property tests: how long an example takes on a
# loaded machine is not behaviour (a wall-clock assertion in disguise).
settings.register_profile("tickdesk", deadline=None)
settings.load_profile("tickdesk")

_STRAY = ("tickdesk.db", "tickdesk.db-wal", "tickdesk.db-shm", "tickdesk.db.lock")
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

#: Multiply every test timeout by this (slow CI machines).
TIMEOUT_UNIT = float(os.environ.get("TICKDESK_TEST_TIMEOUT", "1.0"))


def timeout(seconds: float) -> float:
    return seconds * TIMEOUT_UNIT


def wait_until(predicate: Callable[[], bool], seconds: float = 5.0,
               what: str = "condition") -> None:
    """Poll ``predicate`` on a short interval until true (bounded); fail otherwise."""
    deadline = time.monotonic() + timeout(seconds)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test writes into the real home: for the whole session (and every
    daemon it starts, which inherits the environment) ``XDG_DATA_HOME`` is a
    temporary directory, so a store left at its default lands there. The
    developer's own ``TICKDESK_<SECTION>__<KEY>`` overrides are removed, so
    they cannot change what a test starts."""
    home = tmp_path_factory.mktemp("xdg-data-home")
    saved = {k: v for k, v in os.environ.items()
             if k == "XDG_DATA_HOME" or (k.startswith("TICKDESK_") and "__" in k)}
    for k in saved:
        del os.environ[k]
    os.environ["XDG_DATA_HOME"] = str(home)
    try:
        yield home
    finally:
        os.environ.pop("XDG_DATA_HOME", None)
        os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def binance_rest() -> Iterator[FakeBinanceRest]:
    """The fake Binance REST API (exchangeInfo) of every Binance-fed engine of the
    session (``rest_url=shared_rest().base_url``). Started for every session,
    before any test's thread check, so a test run alone finds it as one run in
    the whole suite does; closed at the end."""
    rest = shared_rest()
    yield rest
    rest.close()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads or actors running after it ends."""
    before = {t.ident for t in threading.enumerate()}
    yield
    leaked: list[threading.Thread] = []
    deadline = time.monotonic() + timeout(5.0)
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate()
                  if t.ident not in before and t.is_alive()]
        if not leaked and not pykka.ActorRegistry.get_all():
            return
        time.sleep(0.01)
    actors = pykka.ActorRegistry.get_all()
    pykka.ActorRegistry.stop_all(block=True, timeout=5)
    names = sorted(t.name for t in leaked)
    raise AssertionError(f"test leaked threads {names} / actors {len(actors)}")


def make_config(**overrides: Any) -> Config:
    """A fast, quiet configuration on an ephemeral loopback port, no disk store."""
    server = overrides.pop("server", ServerConfig(port=0))
    feed = overrides.pop("feed", FeedConfig(simulated=SimulatedConfig(seed=7,
                                                                      ticks_per_second=20)))
    intervals = overrides.pop("intervals", IntervalsConfig(positions_s=0.2, portfolio_s=0.3))
    store = overrides.pop("store", StoreConfig(path=""))
    return Config(server=server, feed=feed, intervals=intervals, store=store, **overrides)


@pytest.fixture
def config() -> Config:
    return make_config()


@pytest.fixture
def engine(config: Config) -> Iterator[Engine]:
    eng = Engine(config).start()
    try:
        yield eng
    finally:
        eng.stop()


@pytest.fixture
def local_engine(config: Config) -> Iterator[Engine]:
    eng = Engine(config, listen=False).start()
    try:
        yield eng
    finally:
        eng.stop()
