"""The daemon as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import timeout
from tests.e2e.wsclient import WsClient


def _tickdesk(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("tickdesk ")
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "run" in out.stdout


@pytest.mark.parametrize(("toml", "key"), [
    ("[server]\nport = 'eighty'\n", "server.port"),
    ("[feed]\nsymbolz = []\n", "feed.symbolz"),
    ("[trading]\nfee_bps = -1\n", "trading.fee_bps"),
])
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=timeout(30))
    assert proc.returncode == 2
    assert key in proc.stderr


def test_run_serves_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\nport = 0\n[store]\npath = ""\n[log]\nlevel = "INFO"\n')
    proc = _tickdesk("run", "--config", str(cfg), cwd=tmp_path)
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + timeout(20)
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on (ws://\S+)", line)
            if m:
                url = m.group(1)
        assert url is not None, "no URL logged"
        client = WsClient(url)
        assert client.recv()["type"] == "CONNECTED"
        client.send({"action": "subscribe_ticker", "symbol": "SOLUSDT"})
        client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert client.wait_closed(10) == 1001
        assert proc.wait(timeout=timeout(10)) == 0
        assert time.monotonic() - t0 < 5 * float(os.environ.get("TICKDESK_TEST_TIMEOUT", "1"))
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
