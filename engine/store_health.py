"""Whether the store can write, its write errors counted by kind, and its settle commits.

Edge module (a lock). :class:`StoreHealth` is written by the PortfolioActor
(its thread: every settle, every probe) and read by ``/healthz`` and
``/metrics`` (HTTP handler threads); one lock guards it. :func:`error_kind`
sorts an ``sqlite3.Error`` into the ``kind`` label of
``tickdesk_store_errors_total`` from SQLite's own error name (Python 3.11+).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.stats import counter, gauge

__all__ = ["STORE_ERROR_KINDS", "StoreHealth", "StoreHealthSnapshot", "StoreStatistics",
           "error_kind"]

#: Every ``kind`` label, in the order /metrics lists them (all present from the start).
STORE_ERROR_KINDS = ("full", "io", "busy", "readonly", "corrupt", "other")

_PREFIXES = (
    ("SQLITE_FULL", "full"),        # disk full, or the file-size limit of the process
    ("SQLITE_IOERR", "io"),         # a read, write or fsync the kernel refused
    ("SQLITE_BUSY", "busy"),
    ("SQLITE_LOCKED", "busy"),
    ("SQLITE_READONLY", "readonly"),
    ("SQLITE_CORRUPT", "corrupt"),
    ("SQLITE_NOTADB", "corrupt"),
    ("SQLITE_CANTOPEN", "io"),
)


def error_kind(exc: BaseException) -> str:
    """``full``, ``io``, ``busy``, ``readonly``, ``corrupt`` or ``other``."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    for prefix, kind in _PREFIXES:
        if name.startswith(prefix):
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class StoreHealthSnapshot:
    #: False from a failed write until the next write (or probe) that succeeds.
    writable: bool
    errors: dict[str, int] = field(default_factory=dict)
    #: ``"<kind>: <SQLite's message>"`` of the failure that made it unwritable.
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """What the store's health counts (``/metrics``: ``tickdesk_store_*``)."""

    errors: Mapping[str, int] = counter(
        "Failed store writes (settles and probes), by kind: full, io, busy, readonly, "
        "corrupt, other.", label="kind")
    writable: int = gauge("1 while the store writes, 0 from a failed write until the next "
                          "one that succeeds.")
    settle_commits: int = counter("Settle transactions committed (one fsync each with "
                                  "store.synchronous = full).")
    settled_outcomes: int = counter("Order-book outcomes (a command's or a trade's) "
                                    "committed; divided by settle_commits: the mean "
                                    "group-commit size.")


class StoreHealth:
    """Thread-safe; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writable = True
        self._errors = dict.fromkeys(STORE_ERROR_KINDS, 0)
        self._last_error: str | None = None
        self._commits = 0
        self._outcomes = 0

    def committed(self, outcomes: int) -> None:
        """A settle transaction of ``outcomes`` outcomes committed."""
        with self._lock:
            self._commits += 1
            self._outcomes += outcomes

    def failed(self, kind: str, message: str) -> None:
        """A write failed (``kind`` from :func:`error_kind`)."""
        with self._lock:
            self._writable = False
            self._errors[kind if kind in self._errors else "other"] += 1
            self._last_error = f"{kind}: {message}"

    def succeeded(self) -> bool:
        """A write committed; returns True if the store was unwritable until now."""
        with self._lock:
            was_down = not self._writable
            self._writable = True
            self._last_error = None
            return was_down

    @property
    def writable(self) -> bool:
        with self._lock:
            return self._writable

    def statistics(self) -> StoreStatistics:
        with self._lock:
            return StoreStatistics(dict(self._errors), 1 if self._writable else 0,
                                   self._commits, self._outcomes)

    def snapshot(self) -> StoreHealthSnapshot:
        with self._lock:
            return StoreHealthSnapshot(self._writable, dict(self._errors), self._last_error)
