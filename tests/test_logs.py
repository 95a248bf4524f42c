"""Structured logs: one line per event (logfmt or JSON lines), tokens redacted."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.logs import REDACTED, setup_logging
from tests.conftest import timeout
from tests.e2e.wsclient import WsClient

TOKEN = "s3cret-token-abcdef"
ROOT = Path(__file__).resolve().parents[1]  # run this checkout's engine, not an installed one


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _parse_logfmt(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        value = m.group(2)
        if value.startswith('"'):
            value = json.loads(value)  # our escapes are a subset of JSON's
        out[m.group(1)] = value
    return out


def _emit(fmt: str, level: str = "DEBUG") -> list[str]:
    buf = io.StringIO()
    setup_logging(level, fmt, secrets=[TOKEN], stream=buf)
    log = logging.getLogger("tickdesk.test")
    log.debug("plain message")
    log.info('spaces, "quotes", key=value and a\nnewline\tand tab')
    log.warning("url ws://h/api/ws/realtime?token=%s&x=1 and bare %s", "abc123", TOKEN)
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        log.exception("failed")
    return buf.getvalue().splitlines()


@pytest.mark.usefixtures("restore_root_logging")
def test_text_format_is_logfmt_one_line_per_event() -> None:
    lines = _emit("text")
    assert len(lines) == 4
    recs = [_parse_logfmt(line) for line in lines]
    assert [r["level"] for r in recs] == ["debug", "info", "warning", "error"]
    assert all(r["logger"] == "tickdesk.test" for r in recs)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", recs[0]["ts"])
    assert recs[0]["msg"] == "plain message"
    assert recs[1]["msg"] == 'spaces, "quotes", key=value and a\nnewline\tand tab'
    assert "Traceback" in recs[3]["exc"] and "ValueError" in recs[3]["exc"]
    text = "\n".join(lines)
    assert TOKEN not in text and "abc123" not in text
    assert f"token={REDACTED}&x=1" in recs[2]["msg"]


@pytest.mark.usefixtures("restore_root_logging")
def test_json_format_is_json_lines() -> None:
    lines = _emit("json")
    assert len(lines) == 4
    recs = [json.loads(line) for line in lines]
    assert [r["level"] for r in recs] == ["debug", "info", "warning", "error"]
    assert recs[1]["msg"] == 'spaces, "quotes", key=value and a\nnewline\tand tab'
    assert "ValueError" in recs[3]["exc"]
    assert TOKEN not in "\n".join(lines) and "abc123" not in "\n".join(lines)


@pytest.mark.usefixtures("restore_root_logging")
def test_level_filters() -> None:
    lines = _emit("json", level="WARNING")
    assert [json.loads(line)["level"] for line in lines] == ["warning", "error"]


def test_daemon_logs_json_lines_without_tokens(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\nport = 0\n[store]\npath = ""\n'
                   '[log]\nlevel = "DEBUG"\nformat = "json"\n'
                   f'[[accounts]]\nname = "alice"\ntoken = "{TOKEN}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "tickdesk.cli", "run", "--config", str(cfg)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + timeout(20)
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening on (ws://\S+)", json.loads(line)["msg"])
            if m:
                url = m.group(1)
        assert url is not None, f"no URL logged: {lines}"
        client = WsClient(f"{url}?token={TOKEN}")
        assert client.recv()["type"] == "CONNECTED"
        client.send({"action": "auth", "token": TOKEN, "id": 1})
        client.reply(1)
        bad = WsClient(url)
        bad.recv()
        bad.send({"action": "auth", "token": TOKEN + "x", "id": 2})
        bad.reply(2)
        health = url.replace("ws://", "http://").replace("/api/ws/realtime", "/healthz")
        with urllib.request.urlopen(f"{health}?token={TOKEN}", timeout=5) as resp:
            assert resp.status == 200
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=timeout(10)) == 0
        client.close()
        bad.close()
        lines.extend(proc.stderr.read().splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    recs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r["msg"] == "stopped" for r in recs)
    assert any(r["logger"] == "tickdesk.http" and "/healthz" in r["msg"] for r in recs), (
        "no DEBUG request line")
    assert TOKEN not in "".join(lines)
