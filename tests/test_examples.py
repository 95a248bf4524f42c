"""The README's embedding example runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_embedding_example_runs() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py")],
                         capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "CONNECTED"
    assert lines[1].startswith("BTCUSDT ")
    assert lines[2].startswith("filled at ")
    assert "'positionsCount': 1" in lines[3]
