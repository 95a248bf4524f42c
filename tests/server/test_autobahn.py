"""Autobahn|Testsuite conformance of our WebSocket transport (opt-in).

Runs the suite's ``fuzzingclient`` against ``server.echo_path``, which
echoes every message through exactly the transport real clients use
(the I/O thread's :class:`~engine.server.websocket.WsEndpoint` writing
through a :class:`~engine.server.channel.SocketChannel`). Cases 1–7 and 10; 9 (large
messages, performance), 12 and 13 (permessage-deflate, which we decline)
are excluded.

The suite needs Python 2.7: install it with ``scripts/install-autobahn.sh``
(into ``.autobahn/``), then run ``TICKDESK_AUTOBAHN=1 python -m pytest -m
autobahn``. Results are published in ``docs/conformance.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from engine.config import ServerConfig
from tests.conftest import make_config, timeout
from tickdesk import Engine

pytestmark = pytest.mark.autobahn

ROOT = Path(__file__).resolve().parents[2]
SUITE_DIR = Path(os.environ.get("AUTOBAHN_DIR", ROOT / ".autobahn"))
ECHO_PATH = "/api/ws/echo"
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
EXCLUDED = ["9.*", "12.*", "13.*"]
OK_BEHAVIOR = {"OK", "NON-STRICT", "INFORMATIONAL"}
OK_CLOSE = {"OK", "INFORMATIONAL"}

# Run wstest with the install dir as a site dir (its zope namespace .pth needs it).
_WRAPPER = (
    "import site, sys; site.addsitedir(sys.argv.pop(1)); "
    "from autobahntestsuite.wstest import run; sys.argv[0] = 'wstest'; sys.exit(run())"
)


def _python2() -> str | None:
    marker = SUITE_DIR / "PYTHON"
    candidates = [os.environ.get("PYTHON2", "")]
    if marker.exists():
        candidates.append(marker.read_text().strip())
    candidates.append(str(Path.home() / ".pyenv/versions/2.7.18/bin/python"))
    for py in filter(None, candidates):
        try:
            done = subprocess.run([py, "-c", "import sys; assert sys.version_info[:2] == (2, 7)"],
                                  capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return py
    return None


def run_fuzzingclient(url: str, workdir: Path, python2: str) -> dict[str, dict[str, object]]:
    """Run the fuzzing client against ``url``; returns the report for our agent."""
    spec = {
        "outdir": str(workdir / "reports" / "servers"),
        "servers": [{"agent": "tickdesk", "url": url}],
        "cases": CASES,
        "exclude-cases": EXCLUDED,
        "exclude-agent-cases": {},
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [python2, "-c", _WRAPPER, str(SUITE_DIR), "-m", "fuzzingclient", "-s", "spec.json"],
        cwd=workdir, capture_output=True, text=True, timeout=timeout(300),
    )
    index = workdir / "reports" / "servers" / "index.json"
    assert done.returncode == 0 and index.exists(), (
        f"wstest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    report: dict[str, dict[str, object]] = json.loads(index.read_text())["tickdesk"]
    return report


def summarize(report: dict[str, dict[str, object]]) -> str:
    """Counts of behaviours per top-level section, then every case that is not OK."""
    per_section: dict[str, Counter[str]] = {}
    for case, result in report.items():
        per_section.setdefault(case.split(".")[0], Counter())[str(result["behavior"])] += 1
    lines = []
    for section in sorted(per_section, key=int):
        counts = per_section[section]
        lines.append(f"{section}: {sum(counts.values())} cases, " + ", ".join(
            f"{b} {n}" for b, n in sorted(counts.items())))

    def case_key(case: str) -> list[int]:
        return [int(p) for p in case.split(".")]

    for case in sorted(report, key=case_key):
        r = report[case]
        if r["behavior"] != "OK" or r["behaviorClose"] != "OK":
            lines.append(f"  {case}: {r['behavior']} / close {r['behaviorClose']}")
    return "\n".join(lines)


@pytest.mark.timeout(600)
def test_autobahn_fuzzingclient(tmp_path: Path) -> None:
    if os.environ.get("TICKDESK_AUTOBAHN") != "1":
        pytest.skip("opt-in: set TICKDESK_AUTOBAHN=1 (and run scripts/install-autobahn.sh)")
    python2 = _python2()
    if python2 is None:
        pytest.skip("Python 2.7 not found (set PYTHON2); Autobahn|Testsuite needs it")
    if not (SUITE_DIR / "autobahntestsuite").is_dir():
        pytest.skip(f"Autobahn|Testsuite not installed in {SUITE_DIR}: "
                    "run scripts/install-autobahn.sh")
    # Case 1.x/2.x/… send messages up to 64 KiB (plus 9.x would go to 16 MiB):
    # allow 16 MiB in and queue as much out, so only protocol behaviour is tested.
    cfg = make_config(server=ServerConfig(
        port=0, echo_path=ECHO_PATH, max_message_bytes=16 * 1024 * 1024,
        max_queued_bytes=64 * 1024 * 1024, ping_interval_s=60.0))
    with Engine(cfg) as engine:
        url = f"ws://127.0.0.1:{engine.port}{ECHO_PATH}"
        report = run_fuzzingclient(url, tmp_path, python2)
    table = summarize(report)
    print("\n" + table)
    bad = {case: (r["behavior"], r["behaviorClose"]) for case, r in report.items()
           if r["behavior"] not in OK_BEHAVIOR or r["behaviorClose"] not in OK_CLOSE}
    assert len(report) > 200, f"only {len(report)} cases ran"
    assert not bad, f"non-conforming cases: {bad}\n{table}"
