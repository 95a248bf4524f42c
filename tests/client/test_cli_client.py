"""``tickdesk watch / order / orders`` as a user runs them: subprocesses against a live Engine."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import AccountConfig
from tests.client.helpers import free_port, wait_ready
from tests.conftest import make_config, timeout
from tickdesk import Engine
from tickdesk.cli import main
from tickdesk.client import TickdeskClient

ROOT = Path(__file__).resolve().parents[2]
ALICE = AccountConfig(name="alice", token="alice-token-123")


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("TICKDESK_TOKEN", "TICKDESK_URL")}
    e["PYTHONPATH"] = str(ROOT)  # this checkout, whatever the installed package points at
    e.update(extra)
    return e


def tickdesk(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickdesk.cli", *args], capture_output=True,
                          text=True, timeout=timeout(60), env=env(**extra_env), cwd=ROOT)


@pytest.fixture
def live(engine: Engine) -> Iterator[Engine]:
    """A ready engine with a BTCUSDT price (MARKET orders need one)."""
    wait_ready(engine)
    with TickdeskClient(engine.url) as c:
        c.subscribe("BTCUSDT")
        c.wait_for(lambda m: m["type"] == "MARKET_UPDATE", timeout(5))
    yield engine


def test_market_order_prints_new_and_trade(live: Engine) -> None:
    out = tickdesk("order", "buy", "btcusdt", "0.01", "--url", live.url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("NEW") and "BUY MARKET 0.01 BTCUSDT" in lines[0]
    assert lines[1].startswith("TRADE") and "FILLED" in lines[1] and "avg" in lines[1]
    out = tickdesk("order", "sell", "BTCUSDT", "0.01", "--url", live.url, "--json")
    assert out.returncode == 0, out.stderr
    msgs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [m["executionType"] for m in msgs] == ["NEW", "TRADE"]
    assert {m["type"] for m in msgs} == {"ORDER_UPDATE"}
    assert msgs[1]["order"]["side"] == "SELL" and msgs[1]["order"]["status"] == "FILLED"


def test_rejection_and_errors_exit_1(live: Engine) -> None:
    out = tickdesk("order", "buy", "BTCUSDT", "10", "--url", live.url, "--json")
    assert out.returncode == 1
    (msg,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert msg["executionType"] == "REJECTED"
    assert msg["order"]["rejectReason"].startswith("INSUFFICIENT_BALANCE: USDT available ")
    out = tickdesk("order", "buy", "BTCUSDT", "0.01", "--type", "LIMIT", "--url", live.url)
    assert out.returncode == 1 and "BAD_REQUEST" in out.stderr and not out.stdout
    out = tickdesk("order", "cancel", "999999", "--url", live.url, "--json")
    assert out.returncode == 1 and "UNKNOWN_ORDER" in out.stderr
    assert json.loads(out.stdout)["code"] == "UNKNOWN_ORDER"


def test_limit_order_listed_then_cancelled(live: Engine) -> None:
    out = tickdesk("order", "buy", "ETHUSDT", "0.1", "--type", "limit", "--price", "1000",
                   "--client-order-id", "cheap", "--url", live.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("NEW") and "cheap BUY LIMIT 0.1 ETHUSDT @ 1000 NEW" in out.stdout
    out = tickdesk("orders", "--url", live.url)
    assert out.returncode == 0
    header, row = out.stdout.splitlines()
    assert header.split()[:3] == ["ORDER", "CLIENT_ID", "SYMBOL"]
    assert row.split()[1:3] == ["cheap", "ETHUSDT"]
    out = tickdesk("order", "cancel", "--client-order-id", "cheap", "--url", live.url, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["executionType"] == "CANCELED"
    out = tickdesk("orders", "--url", live.url)
    assert out.stdout.strip() == "no orders"
    out = tickdesk("orders", "--all", "--json", "--url", live.url)
    orders = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(o["clientOrderId"], o["status"]) for o in orders] == [("cheap", "CANCELED")]


def test_iceberg_limit_amended_from_the_cli(live: Engine) -> None:
    out = tickdesk("order", "buy", "ETHUSDT", "0.3", "--type", "LIMIT", "--price", "2000",
                   "--time-in-force", "gtc", "--iceberg-qty", "0.1", "--client-order-id", "ice",
                   "--url", live.url, "--json")
    assert out.returncode == 0, out.stderr
    (new,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (new["order"]["timeInForce"], new["order"]["icebergQty"]) == ("GTC", 0.1)
    out = tickdesk("order", "amend", "--client-order-id", "ice", "0.2", "--url", live.url,
                   "--json")
    assert out.returncode == 0, out.stderr
    amended = json.loads(out.stdout)
    assert amended["executionType"] == "AMENDED" and amended["order"]["quantity"] == 0.2
    out = tickdesk("order", "amend", str(new["order"]["orderId"]), "0.5", "--url", live.url)
    assert out.returncode == 1 and "BAD_REQUEST" in out.stderr
    out = tickdesk("order", "amend", "0.5", "--url", live.url)
    assert out.returncode == 2


@pytest.mark.parametrize("args", [
    ("order",),
    ("order", "buy", "BTCUSDT"),
    ("order", "buy", "BTCUSDT", "lots"),
    ("order", "buy", "BTCUSDT", "1", "--type", "FOK"),
    ("order", "cancel"),
    ("watch",),
])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    # In-process: argparse exits 2 before anything connects.
    try:
        status = main([*args, "--url", "ws://127.0.0.1:9/x"])
    except SystemExit as exc:
        status = int(exc.code or 0)
    assert status == 2


def test_unreachable_daemon_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ws://127.0.0.1:{free_port()}/api/ws/realtime"
    for args in (("orders",), ("order", "buy", "BTCUSDT", "1"), ("watch", "BTCUSDT")):
        assert main([*args, "--url", url, "--timeout", "2"]) == 3, args
        assert "cannot connect" in capsys.readouterr().err
    out = tickdesk("orders", "--url", url, "--timeout", "2")  # and as a real process
    assert out.returncode == 3 and "cannot connect" in out.stderr


def test_token_from_option_or_environment() -> None:
    with Engine(make_config(accounts=(ALICE,))) as eng:
        wait_ready(eng)
        out = tickdesk("orders", "--url", eng.url)
        assert out.returncode == 1 and "UNAUTHORIZED" in out.stderr
        assert tickdesk("orders", "--url", eng.url, "--token", ALICE.token).returncode == 0
        assert tickdesk("orders", "--url", eng.url, TICKDESK_TOKEN=ALICE.token).returncode == 0
        out = tickdesk("orders", "--url", eng.url, "--token", "wrong-token-1")
        assert out.returncode == 1 and "UNAUTHORIZED" in out.stderr


def read_until(fd: int, needles: tuple[bytes, ...], seconds: float) -> bytes:
    """Read from ``fd`` until every needle was seen (bounded)."""
    data = b""
    deadline = time.monotonic() + timeout(seconds)
    while not all(n in data for n in needles):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"did not see {needles} in {data[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a pty reports EIO once the child is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"output ended before {needles}: {data[-2000:]!r}")
            data += chunk
    return data


def test_watch_prints_plain_lines_when_piped_and_exits_0_on_sigint(live: Engine) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tickdesk.cli", "watch", "BTCUSDT", "ethusdt",
                             "--url", live.url, "--interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    try:
        assert proc.stdout is not None
        out = read_until(proc.stdout.fileno(), (b"BTCUSDT ", b"ETHUSDT ", b"portfolio: balance",
                                                b"feed simulated UP"), 30)
        assert b"\x1b[" not in out  # no ANSI codes into a pipe
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout(10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_watch_on_a_terminal_gives_the_terminal_back(live: Engine) -> None:
    """Full screen on the alternate screen; SIGINT exits 0 and restores the
    main screen and the cursor (the layout and keys: test_watch_tmux.py)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tickdesk.cli", "watch", "SOLUSDT",
                             "--url", live.url, "--interval", "0.1"],
                            stdin=slave, stdout=slave, stderr=slave, env=env(), cwd=ROOT)
    os.close(slave)
    try:
        read_until(master, (b"\x1b[?1049h", b"SOLUSDT", b"q quit"), 30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout(10)) == 0
        rest = b""
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        assert b"\x1b[?1049l" in rest and b"\x1b[?25h" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
