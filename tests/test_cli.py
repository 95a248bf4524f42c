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
    return subprocess.Popen([sys.executable, "-m", "tickdesk.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "tickdesk.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("tickdesk ")
    out = subprocess.run([sys.executable, "-m", "tickdesk.cli", "--help"], capture_output=True,
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
    proc = subprocess.run([sys.executable, "-m", "tickdesk.cli", "run", "--config", str(cfg)],
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
        assert time.monotonic() - t0 < timeout(5)  # a user-visible bound: exit within 5 s
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_run_prints_a_ready_to_use_url_with_the_token_of_the_one_account(
        tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\nport = 0\n[store]\npath = ""\n'
                   '[[accounts]]\nname = "solo"\ntoken_env = "SOLO_TOKEN"\n')
    env = dict(os.environ, SOLO_TOKEN="solo-secret-token-42")
    proc = subprocess.Popen([sys.executable, "-m", "tickdesk.cli", "run", "--config", str(cfg)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ws_url = None
        deadline = time.monotonic() + timeout(20)
        while ws_url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"(ws://\S+\?token=\S+)", line)
            if m:
                ws_url = m.group(1)
        assert ws_url is not None and ws_url.endswith("?token=solo-secret-token-42")
        client = WsClient(ws_url)
        assert client.recv()["account"] == "solo"
        client.close()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout(10))
        assert proc.returncode == 0
        assert "listening on" in err and "solo-secret-token-42" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
