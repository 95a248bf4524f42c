"""The store's owner lock: one daemon per database file.

Edge module (``fcntl``, files). :class:`StoreLock` takes an exclusive
``flock`` on ``<db>.lock``, a small file beside the database that holds the
owner's pid, and keeps it for the owner's lifetime (``Engine.start`` takes it
before the store is opened, ``Engine.stop`` releases it; the caller's thread
does both).

Why a separate file and ``flock``:

* SQLite itself locks the database with POSIX ``fcntl`` byte-range locks,
  which are per process and are dropped when *any* descriptor of the file is
  closed; an ``flock`` on the database would interact with them. ``flock``
  on our own file is independent of SQLite and belongs to the open file
  description, so the PortfolioActor can close and reopen the database (a
  Supervisor restart) while the lock stays held.
* The kernel releases an ``flock`` when the process dies, ``kill -9``
  included: a stale ``.lock`` file left behind never blocks the next start.
  The file is left in place on release (removing it would race with a
  second daemon that has just opened it).

A second owner gets :class:`StoreInUse` (``store <path> is in use by pid N``);
the CLI exits 2 with that message. The pid is informative only: the lock, not
the file's content, decides.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from engine.store import StoreError

__all__ = ["StoreInUse", "StoreLock", "lock_path"]


class StoreInUse(StoreError):
    """Another process holds the database's owner lock."""

    def __init__(self, path: str, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"store {path} is in use by {who}")
        self.path = path
        self.pid = pid


def lock_path(db_path: str) -> str:
    """The lock file of a database file."""
    return db_path + ".lock"


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class StoreLock:
    """An exclusive, non-blocking ``flock`` on ``<db>.lock`` (see the module docstring)."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StoreLock:
        """Take the lock or raise :class:`StoreInUse` at once (never waits);
        :class:`StoreError` if the lock file cannot be created (no such directory)."""
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: "
                             f"{exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StoreInUse(self.db_path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock still holds, only the pid is not shown
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays."""
        fd = self._fd
        self._fd = None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
