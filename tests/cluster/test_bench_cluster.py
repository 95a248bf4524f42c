"""``tickdesk bench --cluster --quick`` as a user runs it: a subprocess writing
JSON. Checks completeness only (every delivery on both setups, every failover
client resumed with ``recovered: true``), never timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.redis_server import need_redis_server

ROOT = Path(__file__).resolve().parents[2]


@need_redis_server
@pytest.mark.timeout(150)
def test_bench_cluster_quick_delivers_everything_and_fails_over(tmp_path: Path) -> None:
    out = tmp_path / "cluster.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tickdesk.cli", "bench", "--cluster", "--quick", "--json",
         str(out)], cwd=ROOT, capture_output=True, text=True, timeout=140)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["errors"] == []
    for setup in ("single", "cluster"):
        [row] = doc[setup]
        assert row["expected"] > 0 and row["received"] == row["expected"], row
    assert len(doc["gateway_cpu_us"]["20/s"]) == 2  # one figure per gateway
    assert doc["recovered"] == doc["failover_clients"] == 5
    assert len(doc["failover_s"]) == 5
