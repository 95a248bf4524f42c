"""``tickdesk watch`` as a person uses it: in a real terminal (tmux), against a
real daemon (``tickdesk run``), read back with ``tmux capture-pane``.

Each test starts its own tmux server (a private socket) and daemon, and stops
both. Waits are bounded polls of the screen (``timeout()`` scaled).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client.helpers import free_port
from tests.conftest import timeout
from tickdesk.client import TickdeskClient

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs "
                                                     "Debian's tmux when missing)")

KEYS_LINE = "q quit  o orders  f fills  / add symbol"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TICKDESK_TOKEN", "TICKDESK_URL", "NO_COLOR", "TMUX")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class Daemon:
    """``tickdesk run`` on a fixed port and a store under the test's tmp_path."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/api/ws/realtime"
        self.config = tmp / "config.toml"
        self.config.write_text(
            f'[server]\nport = {self.port}\n[store]\npath = "{tmp / "tickdesk.db"}"\n'
            '[feed.simulated]\nseed = 7\nticks_per_second = 20\n'
            '[intervals]\npositions_s = 0.2\nportfolio_s = 0.3\n')
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        seen = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tickdesk.cli", "run", "--config", str(self.config)],
                cwd=self.config.parent, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        proc = self.proc
        ready = f"ws://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + timeout(30)
        while ready not in self.log.read_bytes()[seen:].decode(errors="replace"):  # "running"
            assert proc.poll() is None, self.log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
        with TickdeskClient(self.url, connect_timeout_s=timeout(20)) as probe:
            probe.subscribe("BTCUSDT")  # the feed is up and BTCUSDT has a price
            probe.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout(10))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout(15)) == 0
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()


class Terminal:
    """One tmux session on a private server, running one command."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"tickdesk-test-{os.getpid()}-{time.monotonic_ns()}"
        self.status = tmp / "watch.status"

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        out = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True,
                             env=_env(), timeout=timeout(10), check=False)
        return out.stdout

    def start(self, command: list[str], width: int, height: int) -> None:
        line = f"{shlex.join(command)}; echo $? > {shlex.quote(str(self.status))}"
        self.tmux("new-session", "-d", "-s", "w", "-x", str(width), "-y", str(height),
                  "-c", str(ROOT), line)

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "w").split("\n")[:-1]

    def wait(self, what: str, check: Callable[[list[str]], bool], seconds: float = 15) -> list[str]:
        """Capture the pane until ``check`` holds (bounded)."""
        deadline = time.monotonic() + timeout(seconds)
        lines = self.screen()
        while not check(lines):
            if time.monotonic() > deadline:
                shown = "\n".join(lines)
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{shown}")
            time.sleep(0.05)  # between two captures (a bounded poll)
            lines = self.screen()
        return lines

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "w", *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", "w", "-x", str(width), "-y", str(height))

    def alive(self) -> bool:
        return "w" in self.tmux("list-sessions", "-F", "#{session_name}").split()

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    t = Terminal(tmp_path)
    try:
        yield t
    finally:
        t.close()


def watch(daemon: Daemon, *symbols: str) -> list[str]:
    return [sys.executable, "-m", "tickdesk.cli", "watch", *symbols, "--url", daemon.url,
            "--interval", "0.1"]


def line_with(lines: list[str], text: str) -> str | None:
    return next((ln for ln in lines if text in ln), None)


def fits(width: int, height: int) -> Callable[[list[str]], bool]:
    """A whole screen drawn for ``width`` x ``height``: the title on its first
    line, the keys on its last, no line wider (a capture may catch a redraw
    half-way: the wait goes on until a whole one)."""
    def check(lines: list[str]) -> bool:
        return (len(lines) == height and lines[0].startswith("tickdesk watch")
                and line_with(lines, "SYMBOL") is not None and lines[-1].startswith(KEYS_LINE)
                and all(len(ln) <= width for ln in lines))
    return check


def quote_header(lines: list[str]) -> list[str]:
    header = line_with(lines, "SYMBOL")
    assert header is not None, lines
    return header.split()


def test_watch_fits_the_window_follows_resizes_and_answers_keys(
        daemon: Daemon, terminal: Terminal) -> None:
    with TickdeskClient(daemon.url) as c:
        c.place_order("BTCUSDT", "BUY", "MARKET", "0.01")
        c.wait_for(lambda m: m.get("executionType") == "TRADE", timeout(10))
        c.place_order("BTCUSDT", "BUY", "LIMIT", "0.01", price="50000", client_order_id="dip")
        fill = c.get_fills()[0][0]
    terminal.start(watch(daemon, "BTCUSDT"), 120, 40)
    lines = terminal.wait("the first screen", lambda ls: bool(
        line_with(ls, "connection  OPEN") and line_with(ls, "WORKING ORDERS (1)")
        and fits(120, 40)(ls)))
    assert "HIGH" in quote_header(lines)
    assert line_with(lines, "feed simulated UP")
    order_row = line_with(lines, " dip ")
    assert order_row is not None and "50000" in order_row and "LIMIT" in order_row
    assert line_with(lines, "POSITION") and line_with(lines, "LONG")

    terminal.resize(60, 20)  # narrower and shorter: fewer columns, still every key
    lines = terminal.wait("a 60x20 screen", fits(60, 20))
    assert "HIGH" not in quote_header(lines) and quote_header(lines)[:2] == ["SYMBOL", "PRICE"]
    terminal.resize(200, 50)
    lines = terminal.wait("a 200x50 screen", fits(200, 50))
    assert {"HIGH", "LOW", "VOLUME"} <= set(quote_header(lines))

    terminal.keys("f")  # the last fills
    lines = terminal.wait("the fills panel", lambda ls: bool(line_with(ls, "LAST FILLS (1)")))
    price = f"{fill['price']:.10f}".rstrip("0").rstrip(".")
    title = lines.index(line_with(lines, "LAST FILLS (1)") or "")
    assert lines[title + 1].split()[:5] == ["TIME", "SYMBOL", "SIDE", "PRICE", "QTY"]
    assert lines[title + 2].split()[1:5] == ["BTCUSDT", "BUY", price, "0.01"]
    assert not line_with(lines, "WORKING ORDERS")
    terminal.keys("o")
    terminal.wait("the orders panel", lambda ls: bool(line_with(ls, "WORKING ORDERS (1)")))

    terminal.keys("/", "e", "t", "h", "u", "s", "d", "t")
    terminal.wait("the prompt", lambda ls: ls[-1].startswith("add symbol:  ETHUSDT_"))
    terminal.keys("Enter")
    lines = terminal.wait("ETHUSDT with a price", lambda ls: any(
        ln.startswith("ETHUSDT ") and any(ch.isdigit() for ch in ln) for ln in ls))
    assert line_with(lines, "added ETHUSDT")
    terminal.keys("/", "n", "o", "p", "e", "Enter")
    terminal.wait("the refusal", lambda ls: bool(line_with(ls, "UNKNOWN_SYMBOL")))
    assert terminal.alive()

    terminal.keys("q")
    terminal.wait("the exit status", lambda _ls: terminal.status.exists()
                  and terminal.status.read_text().strip() != "")
    assert terminal.status.read_text().strip() == "0"


def test_watch_says_reconnecting_while_the_daemon_is_down_and_recovers(
        daemon: Daemon, terminal: Terminal) -> None:
    with TickdeskClient(daemon.url) as c:
        c.place_order("BTCUSDT", "BUY", "LIMIT", "0.01", price="50000", client_order_id="dip")
    terminal.start(watch(daemon, "BTCUSDT"), 100, 30)
    terminal.wait("the first screen", lambda ls: bool(
        line_with(ls, "connection  OPEN") and line_with(ls, " dip ")))

    daemon.stop()
    lines = terminal.wait("RECONNECTING", lambda ls: bool(
        line_with(ls, "connection  RECONNECTING")))
    status = lines[1]
    assert "feed unknown (was UP)" in status and "simulated UP" not in "\n".join(lines)
    assert line_with(lines, "prices are stale: not connected")

    daemon.start()  # same port, same store: the order is still there
    lines = terminal.wait("the recovery", lambda ls: bool(
        line_with(ls, "connection  OPEN") and line_with(ls, "feed simulated UP")
        and line_with(ls, " dip ")), seconds=45)
    assert not line_with(lines, "stale")
    terminal.keys("q")
    terminal.wait("the exit status", lambda _ls: terminal.status.exists()
                  and terminal.status.read_text().strip() != "")
    assert terminal.status.read_text().strip() == "0"
