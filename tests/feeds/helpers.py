"""Helpers for feed tests: engine configs and bounded waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.base import ActorSlot
from engine.config import Config, FeedConfig, StoreConfig, SupervisorConfig


def _data_dir() -> Path:
    """``shared/data`` beside the checkout, or beside any folder above it (a git
    worktree may sit deeper than the main checkout)."""
    root = Path(__file__).resolve().parents[2]
    for parent in root.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "data"


DATA_DIR = _data_dir()


def data_file(relative: str) -> Path:
    """Path of a recorded data file, or skip the test with the reason."""
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"recorded data file {path} is absent (shared/data not available)")
    return path


def engine_config(feed: FeedConfig, **supervisor: Any) -> Config:
    sup = {"backoff_min_s": 0.05, "backoff_max_s": 0.4, "backoff_factor": 2.0,
           "backoff_jitter": 0.2, "reset_after_s": 60.0, "max_restarts": 50}
    sup.update(supervisor)
    return Config().with_overrides(feed=feed, supervisor=SupervisorConfig(**sup),
                                   store=StoreConfig(path=""))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
               what: str = "condition") -> None:
    """Re-check ``predicate`` on a short period until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        tick.wait(0.01)


def is_update(symbol: str, price: float | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(msg: dict[str, Any]) -> bool:
        if msg.get("type") != "MARKET_UPDATE" or msg.get("symbol") != symbol:
            return False
        return price is None or msg.get("price") == price
    return match


class RecordingSlot(ActorSlot):
    """Stands in for the order monitor / portfolio: records, in order and
    under ``lock``, what it is told into a log shared with the clients."""

    def __init__(self, name: str, log: list[tuple[str, Any]], lock: threading.Lock) -> None:
        super().__init__(name)
        self._log, self._lock = log, lock

    def tell(self, message: Any) -> bool:
        with self._lock:
            self._log.append((self.name, message))
        return True
