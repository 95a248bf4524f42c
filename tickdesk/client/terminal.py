"""The terminal of ``tickdesk watch``: the screen (rich's ``Live`` on the
alternate screen), the keyboard (stdin in cbreak mode) and the loop.

Edge module. Everything runs on the command's main thread: it reads the
client's buffer (bounded, see ``TickdeskClient``), the keys and the terminal's
size, feeds them to the pure :class:`~tickdesk.client.watch_view.WatchModel`
and redraws at most every ``interval`` seconds, at once after a key or a
resize (``SIGWINCH``). Every wait is bounded (0.05 s per turn). When the
connection comes back after a drop, it asks again for the account's
positions, portfolio, working orders and last fills. The terminal is given
back as it was (cursor, main screen, line discipline) however the loop ends.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.live import Live

from tickdesk.client.connection import TickdeskClient
from tickdesk.client.errors import ClientError, CommandError
from tickdesk.client.watch_view import MAX_FILLS, WatchModel, watch_view

__all__ = ["FILLS_ON_SCREEN", "HasFileno", "Keyboard", "run_plain", "run_terminal"]

#: How many fills ``get_fills`` asks for at (re)connect.
FILLS_ON_SCREEN = MAX_FILLS
#: Bytes read from stdin per turn (a paste longer than this waits for the next turn).
KEY_READ_BYTES = 256
TURN_S = 0.05


class HasFileno(Protocol):
    """What the keyboard reads from: stdin, or anything with a descriptor."""

    def fileno(self) -> int: ...


class Keyboard:
    """Keys from a terminal's stdin, without echo or line buffering (cbreak:
    Ctrl-C still raises SIGINT). Not a terminal: no keys."""

    def __init__(self, stream: HasFileno) -> None:
        self._fd: int | None = None
        self._saved: list[Any] | None = None
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        if os.isatty(fd):
            self._fd = fd

    def __enter__(self) -> Keyboard:
        if self._fd is not None:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None and self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def read(self, wait_s: float) -> list[str]:
        """The keys pressed, waiting at most ``wait_s`` for the first. An
        escape sequence (an arrow key...) is one key, ignored by the model."""
        if self._fd is None:
            if wait_s > 0:
                time.sleep(wait_s)
            return []
        ready, _, _ = select.select([self._fd], [], [], wait_s)
        if not ready:
            return []
        data = os.read(self._fd, KEY_READ_BYTES).decode("utf-8", "replace")
        keys: list[str] = []
        i = 0
        while i < len(data):
            if data[i] == "\x1b" and i + 1 < len(data) and data[i + 1] in "[O":
                j = i + 2
                while j < len(data) and not data[j].isalpha() and data[j] != "~":
                    j += 1
                keys.append(data[i:j + 1])
                i = j + 1
            else:
                keys.append(data[i])
                i += 1
        return keys


def _clock() -> str:
    return time.strftime("%H:%M:%S")


def _fill_time(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000))


class _Session:
    """What the loop does with the client: snapshots, the connection's state, keys."""

    def __init__(self, client: TickdeskClient, model: WatchModel, request_timeout: float) -> None:
        self.client = client
        self.model = model
        self.timeout = request_timeout
        self._was_open = False
        self._reconnects = client.reconnects

    def refresh_account(self) -> None:
        """Ask for the snapshots; their replies reach the model through the
        buffer, in order with the updates around them."""
        if self.client.account is None:
            return
        try:
            for action, fields in (("get_positions", {}), ("get_portfolio", {}),
                                   ("get_orders", {"status": "open"}),
                                   ("get_fills", {"limit": FILLS_ON_SCREEN})):
                self.client.request(action, timeout=self.timeout, **fields)
        except CommandError as exc:
            self.model.notice = f"{exc.code}: {exc.message}"
        except ClientError:
            self._was_open = False  # dropped meanwhile: ask again once it is back

    def track_connection(self) -> None:
        state = self.client.state.value
        self.model.set_connection(state, self.client.retry_in_s, self.client.reconnects)
        is_open = state == "OPEN"
        if is_open:
            self.model.account = self.client.account
            feed = self.client.feed
            if feed is not None:
                self.model.feed = {k: v for k, v in feed.items()
                                   if k not in ("type", "timestamp")}
        # A drop and a reconnect between two turns shows only in the counter.
        again = self.client.reconnects != self._reconnects
        self._reconnects = self.client.reconnects
        if is_open and (not self._was_open or again):
            self._was_open = True
            self.refresh_account()
        elif not is_open:
            self._was_open = False

    def drain(self, limit: int = 1000) -> bool:
        """Apply what the buffer holds (at most ``limit`` messages a turn)."""
        changed = False
        for _ in range(limit):
            try:
                msg = self.client.get(timeout=0)
            except (TimeoutError, ClientError):
                break
            self.model.apply(msg)
            changed = True
        return changed

    def add_symbol(self, symbol: str) -> None:
        if not self.model.is_open:
            self.model.notice = f"not connected: {symbol} not added"
            return
        try:
            self.client.subscribe(symbol, timeout=self.timeout)
        except CommandError as exc:
            self.model.notice = f"{exc.code}: {exc.message}"
            return
        except ClientError as exc:
            self.model.notice = f"{symbol} not added: {exc}"
            return
        self.model.add_symbol(symbol)
        self.model.notice = f"added {symbol}"


@contextlib.contextmanager
def _on_resize(flag: threading.Event) -> Iterator[None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        flag.set()

    previous = signal.signal(signal.SIGWINCH, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def run_terminal(client: TickdeskClient, model: WatchModel, *, interval: float,
                 stop: threading.Event, request_timeout: float,
                 stdin: HasFileno | None = None, stdout: TextIO | None = None) -> None:
    """The full-screen view until ``q``, or ``stop`` is set (SIGINT / SIGTERM)."""
    out = stdout or sys.stdout
    console = Console(file=out, highlight=False,
                      no_color="NO_COLOR" in os.environ or None)
    session = _Session(client, model, request_timeout)
    resized = threading.Event()

    def view() -> Any:
        size = console.size
        return watch_view(model, size.width, size.height, _clock(), _fill_time)

    with Keyboard(stdin or sys.stdin) as keyboard, _on_resize(resized), \
            Live(console=console, screen=True, auto_refresh=False,
                 redirect_stdout=False, redirect_stderr=False) as live:
        next_draw = 0.0
        while not stop.is_set():
            session.track_connection()
            dirty = session.drain()
            for key in keyboard.read(TURN_S):
                dirty = True
                intent = model.key(key)
                if intent is None:
                    continue
                if intent.kind == "quit":
                    return
                session.add_symbol(intent.symbol)
            now = time.monotonic()
            if resized.is_set() or now >= next_draw or (dirty and model.prompt is not None):
                resized.clear()
                live.update(view(), refresh=True)
                next_draw = now + interval


def run_plain(client: TickdeskClient, model: WatchModel, *, interval: float,
              stop: threading.Event, request_timeout: float,
              write: Callable[[list[str]], None]) -> None:
    """stdout is not a terminal: what changed, as timestamped plain lines."""
    session = _Session(client, model, request_timeout)
    next_draw = 0.0
    while not stop.is_set():
        session.track_connection()
        session.drain()
        stop.wait(TURN_S)
        now = time.monotonic()
        if now >= next_draw:
            lines = model.changes(_clock())
            if lines:
                write(lines)
            next_draw = now + interval
