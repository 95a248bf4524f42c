"""The README's "Python client" example runs as documented, against a live engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.client.helpers import wait_ready
from tests.conftest import timeout
from tickdesk import Engine

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "ws://127.0.0.1:8000/api/ws/realtime"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python client", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block in the README's Python client section"
    return match.group(1)


def test_python_client_example_runs(engine: Engine) -> None:
    code = readme_example()
    assert DEFAULT_URL in code
    wait_ready(engine)
    out = subprocess.run([sys.executable, "-c", code.replace(DEFAULT_URL, engine.url)],
                         capture_output=True, text=True, timeout=timeout(60), check=True,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = out.stdout.splitlines()
    assert lines[0].startswith("BTCUSDT ")
    assert lines[1] == "NEW order 1"
    assert lines[2].startswith("filled at ")
    assert lines[3] == "refused: BAD_REQUEST"
    assert lines[4] == "positions: 1 rtt: True"
