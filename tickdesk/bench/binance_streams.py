"""``@trade`` stream latency: engine trade → Binance stream client, through a
gateway against role ``all``, in the same run (docs/scaling.md).

Edge module (processes, sockets, clocks); not a test: nothing is asserted.
For each setup it starts the daemon(s) as ``tickdesk run`` subprocesses
(simulated feed, one symbol, ``--rate`` trades/s), opens ``--clients``
``/ws/btcusdt@trade`` connections read by one selector thread in this
process, and for ``--seconds`` records each frame's receive time:

* ``all``: one process (the in-process bus);
* ``gateway``: its own redis-server (free loopback port, no persistence), an
  engine and ``--gateways`` gateways, the clients split evenly across them.

Latency is the receive time (``time.time_ns``) minus the trade's event time
``E`` in the payload (the engine's wall clock when the simulated source made
the trade, in whole milliseconds: each figure carries up to +1 ms of
truncation, the same in both setups). Reported per setup: trades/s seen,
deliveries/s, p50/p99/max, every client complete (saw every trade id of the
window, in order), and the ratios gateway / all; with the load average.

    python -m tickdesk.bench.binance_streams [--clients 50] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson

from tickdesk.bench.cluster import _Redis
from tickdesk.bench.lean_client import handshake, masked_frame, parse_frames

__all__ = ["StreamRow", "main", "run_setup"]

_CONFIG = """
[server]
host = "127.0.0.1"
port = 0
[feed]
source = "simulated"
symbols = ["BTCUSDT"]
[feed.simulated]
seed = 11
ticks_per_second = {rate}
[store]
path = ""
[log]
level = "INFO"
"""
_URL = re.compile(r"listening on ws://([^:/]+):(\d+)/")
_STREAM = "btcusdt@trade"


@dataclass(frozen=True, slots=True)
class StreamRow:
    setup: str
    clients: int
    trades_per_s: float
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    complete: int

    def render(self) -> str:
        return (f"| {self.setup} | {self.clients} | {self.trades_per_s:,.0f} | "
                f"{self.deliveries_per_s:,.0f} | {self.p50_ms:.2f} | {self.p99_ms:.2f} | "
                f"{self.max_ms:.2f} | {self.complete}/{self.clients} |")


class _Daemon:
    """One ``tickdesk run`` subprocess; its address from the log line."""

    def __init__(self, config: Path, role: str, redis_url: str | None) -> None:
        cmd = [sys.executable, "-m", "tickdesk.cli", "run", "--config", str(config),
               "--role", role]
        if redis_url is not None:
            cmd += ["--redis-url", redis_url]
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.monotonic() + 30
        while True:
            self._log.seek(0)
            found = _URL.search(self._log.read())
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{role}: no 'listening on' line")
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def _read(addrs: list[tuple[str, int]], seconds: float,
          warmup_s: float) -> list[list[tuple[int, bytes]]]:
    """Open one stream client per address, wait until each has an event (at
    most ``warmup_s``), then record ``(receive ns, payload)`` for ``seconds``."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    bufs: list[bytearray] = []
    got: list[list[tuple[int, bytes]]] = []
    try:
        for i, (host, port) in enumerate(addrs):
            sock, rest = handshake(host, port, f"/ws/{_STREAM}", 10.0)
            sock.setblocking(False)
            socks.append(sock)
            bufs.append(bytearray(rest))
            got.append([])
            sel.register(sock, selectors.EVENT_READ, i)
        started = time.monotonic()
        recording = False
        end = started + warmup_s
        while True:
            now = time.monotonic()
            if not recording and (all(got) or now > started + warmup_s):
                if not all(got):
                    raise RuntimeError("some stream client got no event during the warm-up")
                recording = True
                got = [[] for _ in got]
                end = now + seconds
            if recording and now >= end:
                return got
            for key, _ in sel.select(timeout=max(0.0, min(0.1, end - now))):
                i = key.data
                sock = socks[i]
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise RuntimeError("a stream client was closed by the server")
                at = time.time_ns()
                buf = bufs[i]
                buf += data
                for opcode, payload in parse_frames(buf):
                    if opcode == 0x1:
                        got[i].append((at, payload))
                    elif opcode == 0x9:
                        sock.setblocking(True)
                        sock.sendall(masked_frame(0xA, payload))
                        sock.setblocking(False)
    finally:
        for sock in socks:
            sock.close()
        sel.close()


def _row(setup: str, got: list[list[tuple[int, bytes]]], seconds: float) -> StreamRow:
    lat: list[float] = []
    ids_of: list[list[int]] = []
    for frames in got:
        ids = []
        for at, payload in frames:
            msg = orjson.loads(payload)
            ids.append(int(msg["t"]))
            lat.append(at / 1e6 - int(msg["E"]))
        ids_of.append(ids)
    # complete: every trade id of the window common to all clients, in order
    lo = max(ids[0] for ids in ids_of if ids) if all(ids_of) else 0
    hi = min(ids[-1] for ids in ids_of if ids) if all(ids_of) else -1
    want = list(range(lo, hi + 1))
    complete = sum(1 for ids in ids_of if [t for t in ids if lo <= t <= hi] == want)
    trades = len(set().union(*[set(ids) for ids in ids_of])) if ids_of else 0
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return StreamRow(setup, len(got), trades / seconds, len(lat) / seconds,
                     statistics.median(lat) if lat else float("nan"), p99,
                     lat[-1] if lat else float("nan"), complete)


def run_setup(setup: str, clients: int, rate: float, seconds: float,
              gateways: int = 1) -> StreamRow:
    """One setup (``all`` or ``gateway``) for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        config = Path(tmp) / "config.toml"
        config.write_text(_CONFIG.format(rate=rate))
        if setup == "all":
            d = _Daemon(config, "all", None)
            stack.callback(d.close)
            fronts = [d]
        else:
            server = _Redis()
            stack.callback(server.close)
            engine = _Daemon(config, "engine", server.url)
            stack.callback(engine.close)
            fronts = []
            for _ in range(gateways):
                g = _Daemon(config, "gateway", server.url)
                stack.callback(g.close)
                fronts.append(g)
        addrs = [(fronts[i % len(fronts)].host, fronts[i % len(fronts)].port)
                 for i in range(clients)]
        got = _read(addrs, seconds, warmup_s=10.0)
        return _row(f"{setup}" + (f" ×{gateways}" if setup == "gateway" else ""), got, seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickdesk.bench.binance_streams",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rate", type=float, default=100.0, help="trades per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--gateways", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="alternate the setups this often")
    args = ap.parse_args(argv)
    rows: list[StreamRow] = []
    for _ in range(args.repeat):
        for setup in ("all", "gateway"):
            rows.append(run_setup(setup, args.clients, args.rate, args.seconds, args.gateways))
            print(f"load average {os.getloadavg()[0]:.2f} after {rows[-1].setup}",
                  file=sys.stderr)
    print("| setup | clients | trades/s | deliveries/s | p50 ms | p99 ms | max ms | complete |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r.render())
    for a, g in zip(rows[0::2], rows[1::2], strict=True):
        print(f"gateway / all: p50 {g.p50_ms / a.p50_ms:.2f}×, p99 {g.p99_ms / a.p99_ms:.2f}× "
              f"({g.p50_ms - a.p50_ms:+.2f} ms p50, {g.p99_ms - a.p99_ms:+.2f} ms p99)")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
