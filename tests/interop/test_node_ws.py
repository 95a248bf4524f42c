"""Interop: the protocol driven from Node.js with the npm ``ws`` package.

The test installs ``ws@8`` itself into ``tests/interop/.node`` (git-ignored,
reused by later runs) and skips only when node/npm are missing or npm cannot
reach the registry. ``ws`` offers permessage-deflate; the server declines it,
and everything must still work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.client.helpers import wait_ready
from tests.conftest import timeout
from tickdesk import Engine

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".node"
SCRIPT = HERE / "protocol_client.js"
# What npm prints when it cannot reach the registry (DNS, refused, proxy, offline).
_OFFLINE = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|"
                      r"EHOSTUNREACH|network|offline|proxy|getaddrinfo", re.IGNORECASE)


def _installed_ws_major() -> int | None:
    manifest = CACHE / "node_modules" / "ws" / "package.json"
    try:
        version = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return int(str(version).split(".")[0])


def _ensure_ws() -> Path:
    """``node_modules`` holding ws 8.x: installed once, then reused."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed")
    if _installed_ws_major() != 8:
        CACHE.mkdir(exist_ok=True)
        try:
            proc = subprocess.run(
                ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
                 "--no-package-lock", "ws@8"],
                capture_output=True, text=True, timeout=timeout(180))
        except subprocess.TimeoutExpired:
            pytest.skip("npm install ws@8 timed out: the npm registry is unreachable")
        if proc.returncode != 0:
            if _OFFLINE.search(proc.stderr):
                pytest.skip(f"npm cannot reach the registry: {proc.stderr.strip()[-300:]}")
            raise AssertionError(f"npm install ws@8 failed:\n{proc.stderr}")
        assert _installed_ws_major() == 8, "npm installed something other than ws 8.x"
    return CACHE / "node_modules"


def test_node_ws_client_speaks_the_protocol(engine: Engine) -> None:
    node_modules = _ensure_ws()
    wait_ready(engine)
    env = dict(os.environ, NODE_PATH=str(node_modules))
    proc = subprocess.run(["node", str(SCRIPT), engine.url], capture_output=True, text=True,
                          timeout=timeout(60), env=env)
    assert proc.stdout, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0, report.get("error")
    assert report["steps"] == ["connected", "market", "order", "error", "closed"]
    # permessage-deflate was offered by ws and declined by the server.
    assert report["extensions"] == ""
    hello = report["connected"]
    assert hello["protocol"] == 1 and hello["server"].startswith("tickdesk/")
    assert report["subscribed"] == {**report["subscribed"], "type": "SUBSCRIBED",
                                    "symbol": "BTCUSDT", "id": "s1"}
    ticks = report["marketUpdates"]
    assert all(t["symbol"] == "BTCUSDT" and t["price"] > 0 for t in ticks)
    assert ticks[1]["seq"] >= ticks[0]["seq"]
    new, trade = report["orderNew"], report["orderTrade"]
    assert new["executionType"] == "NEW" and new["id"] == 42
    assert trade["order"]["orderId"] == new["order"]["orderId"]
    assert trade["order"]["status"] == "FILLED" and trade["order"]["filledQuantity"] == 0.01
    assert report["badFrameError"]["code"] == "BAD_REQUEST"
    assert report["pongAfterError"]["type"] == "PONG"
    assert report["closeCode"] == 1000
