"""A 20 MB upstream frame against the real daemon: its memory stays bounded.

``python -m tickdesk.cli run`` runs as a subprocess with the Binance source
pointed at the fake upstream on loopback. Once the feed streams, the fake
sends one text frame announcing 20 MiB (and streams its payload). The
daemon's peak resident set (``VmHWM`` in ``/proc/<pid>/status``) may not grow
by more than :data:`MAX_GROWTH`, well below the frame's size (a client that
buffered the frame would hold at least 20 MiB of it at once); the daemon logs
``frame too large`` and reconnects. Every wait is bounded.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.fakes.binance_upstream import FakeBinanceUpstream

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0
FRAME = 20 * 1024 * 1024
MAX_GROWTH = 8 * 1024 * 1024

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="needs /proc (Linux) to read the daemon's memory")

CONFIG = """
[server]
host = "127.0.0.1"
port = 0

[feed]
source = "binance"
symbols = ["BTCUSDT"]

[feed.binance]
url = {url!r}
max_frame_bytes = 1048576

[supervisor]
backoff_min_s = 0.05
backoff_max_s = 0.2

[store]
path = {db!r}
"""


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class _Log:
    """The daemon's stderr, read by a thread, searchable with a bounded wait."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._proc = proc
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str) -> re.Match[str]:
        rx = re.compile(pattern)
        for line in self.seen:
            if (found := rx.search(line)) is not None:
                return found
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"{pattern!r} not logged: {''.join(self.seen)}") from None
            if line is None:
                raise AssertionError(f"daemon exited: {''.join(self.seen)}")
            self.seen.append(line)
            if (found := rx.search(line)) is not None:
                return found


def test_a_20_mb_frame_leaves_the_daemon_memory_bounded(tmp_path: Path) -> None:
    with FakeBinanceUpstream(stream_prices={"BTCUSDT": "50000"}) as fake:
        config = tmp_path / "tickdesk.toml"
        config.write_text(CONFIG.format(url=fake.base_url, db=str(tmp_path / "t.db")))
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickdesk.cli", "run", "--config", str(config)],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            log = _Log(proc)
            log.wait_for(r"listening on ws://")
            log.wait_for(r"binance feed up: first data frame")
            before = _kib(proc.pid, "VmHWM")
            sent = fake.send_oversized(FRAME)
            log.wait_for(r"binance feed lost: frame too large: 20971520 bytes \(max 1048576\)")
            assert fake.wait_until(lambda: fake.accepted_connections >= 2, timeout=WAIT)
            log.wait_for(r"binance feed up")  # back, on a new connection
            growth = _kib(proc.pid, "VmHWM") - before
            print(f"\n20 MiB frame: daemon peak RSS {before / 2**20:.1f} MiB, grew by "
                  f"{growth / 2**20:.2f} MiB; the fake wrote {sent / 2**20:.2f} MiB of it")
            assert growth < MAX_GROWTH, growth
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=WAIT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=WAIT)
