"""Connections mode: the cost of N idle connections plus M readers, and SIGTERM -> 1001.

The daemon is a real ``tickdesk run`` process (its own config file in a
temporary directory: the simulated feed of one symbol at 20 trades/s, an
in-memory store, connection limits above N + M). Holder processes
(:func:`_holder`, at most ``--per-process`` connections each) open the
connections one handshake after another: first N idle ones (CONNECTED, then
nothing but pongs), then M readers (``subscribe_ticker``, every MARKET_UPDATE
read and counted). Read from ``/proc/<pid>`` of the daemon:

* before any connection, after the N idle ones, after the M readers:
  threads (``Threads:``), descriptors (``/proc/<pid>/fd``) and RSS
  (``VmRSS``); per connection = the growth divided by the connections added;
* then SIGTERM: for every connection, the time from the signal to its
  close frame (and its code), the time until the process exited, and how
  long the daemon's own close loop took (its ``shutdown:`` log line), which
  separates the server's part from the holders' (they too share the CPUs).

Every process raises its RLIMIT_NOFILE soft limit to the hard limit. Every
wait is bounded; the children are stopped, then killed. Nothing is asserted
(``--quick``, a few connections, is what the suite runs).

    python -m tickdesk.bench.connections [--idle 10000] [--readers 300] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from tickdesk.bench import SYMBOL
from tickdesk.bench.lean_client import handshake, masked_frame, parse_frames

__all__ = ["free_port", "main", "proc_figures", "raise_nofile", "run", "wait_listening"]

_CTX = mp.get_context("spawn")
_PATH = "/api/ws/realtime"


def raise_nofile() -> int:
    """Raise this process's descriptor limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_figures(pid: int) -> dict[str, int]:
    """Threads, descriptors and RSS (bytes) of process ``pid``, from /proc."""
    out = {"threads": 0, "fds": 0, "rss": 0}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) * 1024
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class _Conn:
    __slots__ = ("buf", "close_code", "closed_at", "sock")

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        self.buf = bytearray(rest)
        self.close_code: int | None = None
        self.closed_at = 0


class _Holder:
    """The connections of one holder process and their reads (one selector)."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.sel = selectors.DefaultSelector()
        self.sel.register(pipe.fileno(), selectors.EVENT_READ, None)
        self.conns: list[_Conn] = []
        self.market = 0
        self._scratch = memoryview(bytearray(1 << 16))

    def open(self, host: str, port: int, n: int, subscribe: bool) -> tuple[int, list[str]]:
        """Open ``n`` connections one after another, answering the pings of those
        already open in between (the daemon closes a connection that misses one)."""
        sub = masked_frame(0x1, orjson.dumps({"action": "subscribe_ticker", "symbol": SYMBOL}))
        errors: list[str] = []
        for i in range(n):
            try:
                sock, rest = handshake(host, port, _PATH, 10.0)
                if subscribe:
                    sock.sendall(sub)
            except OSError as exc:
                errors.append(str(exc))
                if len(errors) >= 5:
                    break
                continue
            sock.setblocking(False)
            c = _Conn(sock, rest)
            self.conns.append(c)
            self.sel.register(sock, selectors.EVENT_READ, c)
            if i % 16 == 0:
                self.pump(0, commands=False)
        return n - len(errors), errors

    def pump(self, timeout: float, commands: bool = True) -> bool:
        """One select; False once told to stop."""
        for key, _ in self.sel.select(timeout):
            conn: _Conn | None = key.data
            if conn is None:
                if commands and not self.command():
                    return False
                continue
            self._read(conn)
        return True

    def command(self) -> bool:
        pipe = self.pipe
        if not pipe.poll(0):
            return True
        cmd = pipe.recv()
        if cmd[0] == "stop":
            return False
        if cmd[0] == "open":
            _, host, port, n, subscribe = cmd
            ok, errors = self.open(host, port, n, subscribe)
            pipe.send(("opened", ok, errors))
        elif cmd[0] == "report":
            closes = [(c.close_code, c.closed_at) for c in self.conns
                      if c.close_code is not None]
            pipe.send(("report", sum(c.close_code is None for c in self.conns), self.market,
                       closes))
        return True

    def _read(self, conn: _Conn) -> None:
        try:
            got = conn.sock.recv_into(self._scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            got = 0
        t = time.monotonic_ns()
        if got:
            conn.buf += self._scratch[:got]
            for op, payload in parse_frames(conn.buf):
                if op == 0x1 and b'"MARKET_UPDATE"' in payload:
                    self.market += 1
                elif op == 0x9:
                    with contextlib.suppress(OSError):
                        conn.sock.send(masked_frame(0xA, payload))
                elif op == 0x8:
                    conn.close_code = (int.from_bytes(payload[:2], "big")
                                       if len(payload) >= 2 else 1005)
                    conn.closed_at = t
        if not got or conn.close_code is not None:
            if conn.close_code is None:
                conn.close_code, conn.closed_at = 1006, t  # closed without a close frame
            self.sel.unregister(conn.sock)
            conn.sock.close()

    def close(self) -> None:
        for c in self.conns:
            c.sock.close()
        self.sel.close()


def _holder(pipe: Connection) -> None:
    """A holder process: ``("open", host, port, n, subscribe)`` -> ``("opened", n_ok, errors)``;
    ``("report",)`` -> ``("report", open, market_updates, [(code, t_ns), ...])``;
    ``("stop",)``. Pings are answered; nothing else is sent."""
    raise_nofile()
    holder = _Holder(pipe)
    try:
        while holder.pump(0.5):
            pass
    finally:
        holder.close()
        pipe.close()


def _config(port: int, total: int) -> str:
    limit = total + 100
    return f"""
[server]
host = "127.0.0.1"
port = {port}
max_connections = {limit}
max_connections_per_ip = {limit}
[feed]
source = "simulated"
symbols = ["{SYMBOL}"]
[feed.simulated]
ticks_per_second = 20.0
[store]
path = ""
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise OSError(f"the daemon exited ({proc.returncode}) before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)  # a bounded poll for the port to open
    raise OSError("the daemon did not listen in time")


def _recv(pipe: Connection, timeout: float, who: str) -> Any:
    if not pipe.poll(timeout):
        raise OSError(f"{who}: no answer within {timeout:.0f} s")
    return pipe.recv()


def _per_conn(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, float]:
    n = max(1, n)
    return {"threads": (after["threads"] - before["threads"]) / n,
            "fds": (after["fds"] - before["fds"]) / n,
            "kib": (after["rss"] - before["rss"]) / 1024 / n}


def _open(holders: list[Connection], n: int, per_proc: int, host: str, port: int,
          subscribe: bool) -> int:
    """Open ``n`` connections over the holders (in parallel); returns how many opened."""
    shares = [min(per_proc, n - i * per_proc) for i in range(math.ceil(n / per_proc))]
    shares = [s for s in shares if s > 0]
    for pipe, share in zip(holders, shares, strict=False):
        pipe.send(("open", host, port, share, subscribe))
    opened = 0
    for pipe, share in zip(holders, shares, strict=False):
        _, ok, errors = _recv(pipe, 120 + share * 0.25, "holder")
        opened += ok
        if errors:
            print(f"connections: holder: {errors[0]}", file=sys.stderr)
    return opened


def run(idle: int, readers: int, per_proc: int, settle_s: float) -> dict[str, Any]:
    nofile = raise_nofile()
    total = idle + readers
    procs = math.ceil(idle / per_proc) + math.ceil(readers / per_proc)
    port = free_port()
    doc: dict[str, Any] = {"idle": idle, "readers": readers, "nofile": nofile}
    with tempfile.TemporaryDirectory(prefix="tickdesk-conns-") as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(_config(port, total))
        log = open(Path(tmp) / "daemon.log", "wb")  # noqa: SIM115 - closed below
        daemon = subprocess.Popen(
            [sys.executable, "-m", "tickdesk.cli", "run", "--config", str(cfg)],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        holders: list[Connection] = []
        children: list[Any] = []
        try:
            wait_listening(port, daemon, 60)
            for _ in range(procs):
                parent, child = _CTX.Pipe()
                p = _CTX.Process(target=_holder, args=(child,), daemon=True)
                p.start()
                child.close()
                holders.append(parent)
                children.append(p)
            time.sleep(settle_s)
            base = proc_figures(daemon.pid)
            n_idle = math.ceil(idle / per_proc)
            opened_idle = _open(holders[:n_idle], idle, per_proc, "127.0.0.1", port, False)
            time.sleep(settle_s)
            after_idle = proc_figures(daemon.pid)
            opened_readers = _open(holders[n_idle:], readers, per_proc, "127.0.0.1", port,
                                   True)
            time.sleep(settle_s)
            after_all = proc_figures(daemon.pid)
            doc.update(opened_idle=opened_idle, opened_readers=opened_readers,
                       before=base, after_idle=after_idle, after_all=after_all,
                       per_idle_connection=_per_conn(base, after_idle, opened_idle),
                       per_connection=_per_conn(base, after_all, opened_idle + opened_readers))
            t_sig = time.monotonic_ns()
            daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(timeout=60)
                doc["exit_s"] = (time.monotonic_ns() - t_sig) / 1e9
                doc["exit_code"] = code
            except subprocess.TimeoutExpired:
                doc["exit_s"], doc["exit_code"] = None, None
            closes: list[tuple[int, int]] = []
            still_open = 0
            market = 0
            for pipe in holders:
                pipe.send(("report",))
            for pipe in holders:
                _, open_, m, cl = _recv(pipe, 30, "holder")
                still_open += open_
                market += m
                closes.extend(cl)
            by_code: dict[str, int] = {}
            for c, _t in closes:
                by_code[str(c)] = by_code.get(str(c), 0) + 1
            delays = sorted((t - t_sig) / 1e9 for c, t in closes if c == 1001)
            doc.update(close_codes=by_code, still_open=still_open, market_updates=market,
                       close_1001_max_s=delays[-1] if delays else None,
                       close_1001_p50_s=delays[len(delays) // 2] if delays else None)
        finally:
            for pipe in holders:
                with contextlib.suppress(OSError, ValueError):
                    pipe.send(("stop",))
            for p in children:
                p.join(10)
                if p.is_alive():
                    p.kill()
                    p.join(2)
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(10)
            log.close()
        doc["close_loop_s"] = _close_loop_s(Path(tmp) / "daemon.log")
    return doc


_CLOSE_LOOP = re.compile(rb"close 1001 sent to \d+ clients in ([0-9.]+) s")


def _close_loop_s(path: Path) -> float | None:
    """How long the daemon's own close loop took (its shutdown log line), if logged."""
    try:
        found = _CLOSE_LOOP.search(path.read_bytes())
    except OSError:
        return None
    return float(found.group(1)) if found else None


def render(doc: dict[str, Any]) -> str:
    def f(x: float | None, d: int = 2) -> str:
        return "–" if x is None else f"{x:,.{d}f}"

    pi, pc = doc["per_idle_connection"], doc["per_connection"]
    lines = [
        f"{doc['opened_idle']:,} idle + {doc['opened_readers']:,} readers "
        f"(RLIMIT_NOFILE {doc['nofile']:,})",
        "",
        "| connections | daemon threads | daemon fds | daemon RSS MiB "
        "| threads / conn | fds / conn | KiB / conn |",
        "|---|---|---|---|---|---|---|",
        f"| none | {doc['before']['threads']} | {doc['before']['fds']} "
        f"| {f(doc['before']['rss'] / 2**20, 1)} | | | |",
        f"| {doc['opened_idle']:,} idle | {doc['after_idle']['threads']:,} "
        f"| {doc['after_idle']['fds']:,} | {f(doc['after_idle']['rss'] / 2**20, 1)} "
        f"| {f(pi['threads'], 3)} | {f(pi['fds'], 3)} | {f(pi['kib'], 1)} |",
        f"| + {doc['opened_readers']:,} readers | {doc['after_all']['threads']:,} "
        f"| {doc['after_all']['fds']:,} | {f(doc['after_all']['rss'] / 2**20, 1)} "
        f"| {f(pc['threads'], 3)} | {f(pc['fds'], 3)} | {f(pc['kib'], 1)} |",
        "",
        f"SIGTERM: close codes {doc['close_codes']}, still open {doc['still_open']}; "
        f"1001 after p50 {f(doc['close_1001_p50_s'])} s, max {f(doc['close_1001_max_s'])} s; "
        f"process exit after {f(doc['exit_s'])} s (code {doc['exit_code']}); "
        f"the daemon's close loop took {f(doc.get('close_loop_s'), 3)} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tickdesk.bench.connections",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--idle", type=int, default=10_000, help="idle connections (N)")
    ap.add_argument("--readers", type=int, default=300, help="subscribed readers (M)")
    ap.add_argument("--per-process", type=int, default=5000,
                    help="connections per holder process")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to wait before each measurement")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--quick", action="store_true", help="20 idle + 5 readers (the suite's run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.idle, args.readers, args.settle = 20, 5, 0.5
    try:
        doc = run(args.idle, args.readers, max(1, args.per_process), args.settle)
    except OSError as exc:
        print(f"connections: {exc}", file=sys.stderr)
        return 1
    print(render(doc))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    total = doc["opened_idle"] + doc["opened_readers"]
    return 0 if total == args.idle + args.readers and doc["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
