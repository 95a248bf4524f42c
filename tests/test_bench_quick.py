"""``tickdesk bench --quick`` as a user runs it: a subprocess writing JSON.

Checks completeness only (every server, every delivery received), never timing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("websockets") is None,
    reason="the bench's reference server needs 'websockets' (pip install -e '.[test]')",
)


@pytest.mark.timeout(150)
def test_bench_quick_delivers_everything_on_every_server(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tickdesk.cli", "bench", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=140,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["ok"] is True
    rows = doc["rows"]
    assert {r["server"] for r in rows} == {"tickdesk", "reference", "floor"}
    for kind in ("tickdesk", "reference", "floor"):
        assert sorted(r["clients"] for r in rows if r["server"] == kind) == [10, 50]
    for r in rows:
        assert r["expected"] > 0
        assert r["received"] == r["expected"], r
        assert r["complete_conns"] == r["clients"] and r["closed_conns"] == 0, r
        assert r["p50_ms"] is not None and r["threads"] > 0
    assert len(doc["ratios"]) == 2 and len(doc["floor_ratios"]) == 2
    assert "tickdesk / reference" in proc.stdout and "tickdesk / floor" in proc.stdout
    (trig,) = doc["trigger"]
    assert (trig["open_orders"], trig["trials"], trig["store"]) == (100, 20, "memory")
    assert 0 < trig["p50_ms"] <= trig["p99_ms"] <= trig["max_ms"]


@pytest.mark.timeout(120)
def test_noisy_neighbour_quick_measures_both_phases(tmp_path: Path) -> None:
    out = tmp_path / "noisy.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tickdesk.bench.noisy_neighbour", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    for phase in ("idle", "flood"):
        s = doc[phase]
        assert s["probes"] == 10 and s["failed"] == 0, s
        assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert doc["flood_connections"] == 2
    answers = doc["flood_answers"]
    assert answers["sent"] > 0 and "closed" not in answers, answers
    assert "p99 flood / idle" in proc.stdout


@pytest.mark.timeout(120)
def test_connections_quick_counts_the_daemon_and_its_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "conns.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tickdesk.bench.connections", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert (doc["opened_idle"], doc["opened_readers"]) == (20, 5)
    for key in ("before", "after_idle", "after_all"):
        assert doc[key]["threads"] > 0 and doc[key]["fds"] > 0 and doc[key]["rss"] > 0
    assert doc["after_all"]["fds"] > doc["before"]["fds"]
    # SIGTERM: every connection got its 1001 and the daemon exited cleanly
    assert doc["close_codes"] == {"1001": 25} and doc["still_open"] == 0
    assert doc["exit_code"] == 0
