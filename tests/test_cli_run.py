"""Starting the daemon as a user does: flags, environment overrides,
``--print-config``, the default store in the data directory, config errors.

Every daemon here is a real ``python -m tickdesk.cli run`` subprocess on
127.0.0.1; its environment is this process's (``XDG_DATA_HOME`` is the
session's private directory, see ``tests/conftest.py``) plus what a test sets.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine.market.klines import Kline
from engine.store import Store
from tests.conftest import timeout
from tests.e2e.wsclient import WsClient

QUIET = {"TICKDESK_LOG__LEVEL": "warning"}  # enum values are case-insensitive


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tickdesk.cli", "run", *args], cwd=cwd,
                          env=env or _env(), capture_output=True, text=True,
                          timeout=timeout(30))


def _free_port() -> int:
    """A port nothing listens on now (the daemon is told this number, as a user would)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(self, *args: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tickdesk.cli", "run", *args],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.stderr = ""

    def ready_url(self) -> str:
        """The WebSocket URL of the ready message (stdout), within a bounded wait."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout(30)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"(ws://\S+/api/ws/realtime)", line)
            if m:
                return m.group(1)
        _, err = self.proc.communicate(timeout=timeout(10))
        raise AssertionError(f"no URL printed; stderr: {err}")

    def stop(self) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        _, self.stderr = self.proc.communicate(timeout=timeout(10))
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def _connects(url: str) -> str:
    client = WsClient(url)
    try:
        hello = client.recv()
        assert hello["type"] == "CONNECTED"
        client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        tick = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")
        return str(tick["symbol"])
    finally:
        client.close()


def test_run_port_and_store_flags_just_work(tmp_path: Path, daemons: list[Daemon]) -> None:
    port = _free_port()
    store = tmp_path / "desk.db"
    d = Daemon("--port", str(port), "--store", str(store), "--feed", "Simulated",
               cwd=tmp_path, env=_env(**QUIET))
    daemons.append(d)
    url = d.ready_url()
    assert url == f"ws://127.0.0.1:{port}/api/ws/realtime"
    assert _connects(url) == "BTCUSDT"
    assert store.exists()
    assert d.stop() == 0


def test_env_overrides_and_the_default_store_in_the_data_directory(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """No config file, no flags: ``TICKDESK_SERVER__PORT`` picks the port and the
    store is created under ``$XDG_DATA_HOME/tickdesk``, not in the current directory
    (where a store of the older default is left alone, with a warning)."""
    port = _free_port()
    data_home = tmp_path / "data"
    work = tmp_path / "work"
    work.mkdir()
    (work / "tickdesk.db").write_bytes(b"")
    d = Daemon(cwd=work, env=_env(XDG_DATA_HOME=str(data_home),
                                  TICKDESK_SERVER__PORT=str(port),
                                  TICKDESK_FEED__SYMBOLS="BTCUSDT",
                                  **QUIET))
    daemons.append(d)
    url = d.ready_url()
    assert f":{port}/" in url
    assert _connects(url) == "BTCUSDT"
    assert (data_home / "tickdesk" / "tickdesk.db").exists()
    assert oct((data_home / "tickdesk").stat().st_mode & 0o777) == oct(0o700)
    assert d.stop() == 0
    assert [p.name for p in work.iterdir()] == ["tickdesk.db"]  # nothing written here
    assert (work / "tickdesk.db").stat().st_size == 0
    assert "older tickdesk" in d.stderr and "--store tickdesk.db" in d.stderr


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[server]\nport = 1111\n[log]\nformat = "json"\n')

    def printed(*flags: str, **env: str) -> dict[str, str]:
        proc = _run(*flags, "--print-config", cwd=tmp_path, env=_env(**env))
        assert proc.returncode == 0, proc.stderr
        tomllib.loads(proc.stdout)  # valid TOML
        return {m.group(1): m.group(2) for m in
                re.finditer(r"^(port|format|seed) = (.*)$", proc.stdout, re.M)}

    here = str(tmp_path / "config.toml")
    assert printed("--port", "3333", TICKDESK_SERVER__PORT="2222")["port"] == \
        "3333  # flag --port"
    assert printed(TICKDESK_SERVER__PORT="2222")["port"] == \
        "2222  # env TICKDESK_SERVER__PORT"
    shown = printed(TICKDESK_FEED__SIMULATED__SEED="5")
    assert shown["port"] == f"1111  # {here}"  # ./config.toml is read when present
    assert shown["format"] == f'"json"  # {here}'
    assert shown["seed"] == "5  # env TICKDESK_FEED__SIMULATED__SEED"
    (tmp_path / "config.toml").unlink()
    assert printed()["port"] == "8000  # default"


def test_print_config_shows_where_the_store_goes_and_redacts_secrets(tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "desk.toml"
    conf.parent.mkdir()
    conf.write_text('[store]\npath = "ledger.db"\n'
                    '[[accounts]]\nname = "alice"\ntoken = "alice-very-secret"\n'
                    '[[accounts]]\nname = "bot"\ntoken_env = "BOT_TOKEN"\n')
    proc = _run("--config", str(conf), "--print-config", cwd=tmp_path,
                env=_env(BOT_TOKEN="bot-very-secret"))
    assert proc.returncode == 0, proc.stderr
    assert "alice-very-secret" not in proc.stdout and "bot-very-secret" not in proc.stdout
    assert "[REDACTED]" in proc.stdout
    data = tomllib.loads(proc.stdout)
    assert data["store"]["path"] == str(tmp_path / "etc" / "ledger.db")  # beside the file
    assert not (tmp_path / "etc" / "ledger.db").exists()  # printing starts nothing


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""
    return lines[0]


def test_every_config_error_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('[server]\nport = 8000\n[feed\nsource = "simulated"\n')
    line = _one_error_line(_run("--config", str(bad), cwd=tmp_path))
    assert str(bad) in line and "line 3" in line and "column" in line

    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[log]\nlevel = "LOUD"\n')
    line = _one_error_line(_run("--config", str(wrong), cwd=tmp_path))
    assert "log.level" in line and str(wrong) in line

    line = _one_error_line(_run(cwd=tmp_path, env=_env(TICKDESK_SERVER__PROT="9000")))
    assert "TICKDESK_SERVER__PROT" in line and "unknown key" in line
    line = _one_error_line(_run(cwd=tmp_path, env=_env(TICKDESK_SERVER__PORT="ninety")))
    assert "TICKDESK_SERVER__PORT" in line and "server.port" in line
    line = _one_error_line(_run("--port", "70000", cwd=tmp_path))
    assert "--port" in line and "between" in line
    line = _one_error_line(_run("--feed", "kraken", cwd=tmp_path))
    assert "--feed" in line and "feed.source" in line
    line = _one_error_line(_run("--print-config", "--host", "0.0.0.0", cwd=tmp_path))
    assert "--host" in line and "loopback" in line
    line = _one_error_line(_run("--prot", "9000", cwd=tmp_path))  # a mistyped flag
    assert "unrecognized arguments: --prot 9000" in line and "--help" in line
    line = _one_error_line(_run("--port", cwd=tmp_path))
    assert "--port" in line and "expected one argument" in line


def _first_prices(url: str, n: int) -> list[Decimal]:
    """The first ``n`` BTCUSDT prices a new subscriber sees."""
    client = WsClient(url)
    try:
        assert client.recv()["type"] == "CONNECTED"
        client.send({"action": "subscribe_ticker", "symbol": "BTCUSDT"})
        return [Decimal(str(client.wait_for(
            lambda m: m["type"] == "MARKET_UPDATE" and m["symbol"] == "BTCUSDT")["price"]))
            for _ in range(n)]
    finally:
        client.close()


def test_the_simulated_market_resumes_from_the_last_stored_prices(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """Restart the daemon on the same store: BTCUSDT goes on from its last stored
    price (the close of its newest stored kline, read here from the store file),
    not from the seed's start (the first run's first price)."""
    store = tmp_path / "desk.db"
    env = _env(TICKDESK_FEED__SYMBOLS="BTCUSDT", TICKDESK_FEED__SIMULATED__TICKS_PER_SECOND="50",
               **QUIET)
    args = ("--port", "0", "--store", str(store))
    first = Daemon(*args, cwd=tmp_path, env=env)
    daemons.append(first)
    seen = _first_prices(first.ready_url(), 20)
    assert first.stop() == 0  # every kline is written at stop
    with Store(str(store)) as s:
        last = s.last_prices()["BTCUSDT"]

    second = Daemon(*args, cwd=tmp_path, env=env)
    daemons.append(second)
    resumed = _first_prices(second.ready_url(), 1)[0]
    assert second.stop() == 0
    assert resumed != seen[0]  # not the seed's first trade again
    assert abs(resumed - last) < last / 100  # one step (a few bps) from the stored close


def test_a_store_with_a_far_away_last_price_is_where_the_market_starts(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    store = tmp_path / "desk.db"
    with Store(str(store)) as s:  # a BTCUSDT minute bar that closed at 12,345.67
        price = Decimal("12345.67")
        s.write_klines([Kline("BTCUSDT", "1m", 60_000, 119_999, price, price, price, price,
                              Decimal(1), price, 1)], keep=10)
    d = Daemon("--port", "0", "--store", str(store), cwd=tmp_path,
               env=_env(TICKDESK_FEED__SYMBOLS="BTCUSDT,ETHUSDT", **QUIET))
    daemons.append(d)
    url = d.ready_url()
    (btc,) = _first_prices(url, 1)
    assert abs(btc - price) < price / 100  # not 86,000, the seed's start
    client = WsClient(url)
    client.recv()
    client.send({"action": "subscribe_ticker", "symbol": "ETHUSDT"})
    eth = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE" and m["symbol"] == "ETHUSDT")
    client.close()
    assert abs(Decimal(str(eth["price"])) - 3200) < 32  # nothing stored: its usual start
    assert d.stop() == 0
