"""The attackers of :mod:`tickdesk.bench.abuse`, one function per attack.

Edge module (processes, sockets, clocks). Every attacker connects to
127.0.0.1 *from* its own loopback addresses (``127.0.x.y``, all local on
Linux), so the daemon's per-IP limits see distinct clients, as they would on
a real interface, and the victims (from 127.0.0.1) keep their own budgets.
Each process function takes a pipe last and answers on it; every connect,
read and loop is bounded by a timeout or a deadline, and every socket is
closed when the function returns.

* :func:`slowloris`: connections that dribble one header byte each interval
  and are reopened when the daemon closes them.
* :func:`idle_holder`: idle TCP connections (half of them with an upgrade
  request cut short before its blank line), held and reopened when closed.
* :func:`ws_holder`: WebSocket upgrades as fast as they go until every
  source is refused; held (pings answered) while it keeps trying a few more.
* :func:`guesser`: handshakes with wrong ``?token=`` values, one after another.
* :func:`ping_flood`: protocol pings as fast as the socket takes them.
* :func:`rebinding`: the DNS-rebinding requests (called in the parent).
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import orjson

from tickdesk.bench import SYMBOL
from tickdesk.bench.abuse_victims import WS_PATH
from tickdesk.bench.connections import raise_nofile
from tickdesk.bench.lean_client import handshake, masked_frame, parse_frames

__all__ = ["guesser", "idle_holder", "ping_flood", "rebinding", "slowloris", "ws_holder"]

_UPGRADE = (b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
#: A connection the daemon closes sooner than this after connect was closed at accept.
_AT_ACCEPT_S = 1.0


def _connect(source: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def _status(data: bytes) -> str:
    """``"408"`` for ``HTTP/1.1 408 ...``; ``"junk"`` for anything else."""
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return parts[1].decode()
    return "junk"


def _closed(sock: socket.socket, opened_at: float, now: float) -> str | None:
    """Read what is there; None while the socket is open and silent, else its outcome:
    the status it got, or ``closed_at_accept`` / ``closed_silently`` for a bare close."""
    try:
        data = sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        data = b""
    if data:
        return _status(data)
    return "closed_at_accept" if now - opened_at < _AT_ACCEPT_S else "closed_silently"


class _Slots:
    """Connections from a list of sources, reopened ``reopen_s`` after the daemon
    closes them; what closed them is counted in ``counts``."""

    def __init__(self, port: int, sources: list[str], per_source: int, reopen_s: float,
                 first: list[bytes]) -> None:
        self.port = port
        self.sources = [s for s in sources for _ in range(per_source)]
        self.first = first  # bytes sent at connect, by slot index modulo len
        self.reopen_s = reopen_s
        self.socks: list[socket.socket | None] = [None] * len(self.sources)
        self.opened_at = [0.0] * len(self.sources)
        self.retry_at = [0.0] * len(self.sources)
        self.sent = [0] * len(self.sources)
        self.sel = selectors.DefaultSelector()
        self.counts: Counter[str] = Counter()
        self.max_open = 0

    def fill(self, now: float, budget: int, max_s: float = 0.5) -> None:
        """Open up to ``budget`` closed slots whose retry time has come, for at
        most about ``max_s`` (a connect into a full backlog takes its timeout)."""
        stop = time.monotonic() + max_s
        for i, s in enumerate(self.socks):
            if budget <= 0 or time.monotonic() > stop:
                break
            if s is not None or self.retry_at[i] > now:
                continue
            budget -= 1
            try:
                sock = _connect(self.sources[i], self.port, 0.5)
                if self.first:
                    sock.sendall(self.first[i % len(self.first)])
            except OSError as exc:
                self.counts["connect_timeout" if isinstance(exc, TimeoutError)
                            else "connect_refused"] += 1
                self.retry_at[i] = now + self.reopen_s
                continue
            sock.setblocking(False)
            self.counts["opened"] += 1
            self.socks[i], self.opened_at[i], self.sent[i] = sock, now, 0
            self.sel.register(sock, selectors.EVENT_READ, i)
        self.max_open = max(self.max_open, self.open)

    @property
    def open(self) -> int:
        return sum(s is not None for s in self.socks)

    def drop(self, i: int, outcome: str, now: float) -> None:
        sock = self.socks[i]
        if sock is None:
            return
        self.counts[outcome] += 1
        self.sel.unregister(sock)
        sock.close()
        self.socks[i] = None
        self.retry_at[i] = now + self.reopen_s

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            i = key.data
            now = time.monotonic()
            sock = self.socks[i]
            if sock is not None:
                outcome = _closed(sock, self.opened_at[i], now)
                if outcome is not None:
                    self.drop(i, outcome, now)

    def close(self) -> None:
        for s in self.socks:
            if s is not None:
                s.close()
        self.sel.close()


def slowloris(port: int, sources: list[str], per_source: int, seconds: float,
              interval: float, pipe: Connection) -> None:
    """Slowloris for ``seconds``; answers ``("done", counts)``."""
    raise_nofile()
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    pad = b"X-Slow: a\r\n"
    slots = _Slots(port, sources, per_source, interval, [])
    try:
        end = time.monotonic() + seconds
        next_drip = 0.0
        while (now := time.monotonic()) < end:
            slots.fill(now, 200, 0.3)
            if now >= next_drip:
                next_drip = now + interval
                for i, s in enumerate(slots.socks):
                    if s is None:
                        continue
                    k = slots.sent[i]
                    byte = head[k:k + 1] if k < len(head) else pad[(k - len(head)) % len(pad):][:1]
                    try:
                        s.send(byte)
                        slots.sent[i] += 1
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        slots.drop(i, _closed(s, slots.opened_at[i], now) or "closed_silently",
                                   now)
            slots.poll(max(0.0, min(0.1, end - time.monotonic())))
        pipe.send(("done", {**slots.counts, "max_open": slots.max_open,
                            "connections": len(slots.socks)}))
    finally:
        slots.close()
        pipe.close()


def idle_holder(port: int, sources: list[str], per_source: int, pipe: Connection) -> None:
    """Idle connections until ``("leave",)``; answers ``("opened", open)`` once they
    are open, then ``("done", counts)`` after closing them."""
    raise_nofile()
    half = b"GET " + WS_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _UPGRADE
    slots = _Slots(port, sources, per_source, 1.0, [b"", half])
    try:
        slots.fill(time.monotonic(), len(slots.socks), 30.0)
        pipe.send(("opened", slots.open))
        while not pipe.poll(0):
            slots.fill(time.monotonic(), 100)
            slots.poll(0.2)
        pipe.recv()
        pipe.send(("done", {**slots.counts, "max_open": slots.max_open,
                            "connections": len(slots.socks)}))
    finally:
        slots.close()
        pipe.close()


def _ws_outcome(exc: OSError) -> str:
    text = str(exc)
    if "handshake refused" in text:
        found = re.search(r"HTTP/1\.1 (\d{3})", text)
        return f"http_{found.group(1)}" if found else "refused"
    if isinstance(exc, TimeoutError) or "timed out" in text:
        return "timeout"
    if exc.errno in (errno.ECONNRESET, errno.EPIPE) or "closed" in text:
        return "closed"
    return "error"


def ws_holder(port: int, sources: list[str], per_source: int, token: str,
              pipe: Connection) -> None:
    """WebSocket upgrades until refused, held until ``("leave",)``; answers
    ``("opened", n)`` then ``("done", counts)``."""
    raise_nofile()
    path = f"{WS_PATH}?token={token}"
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    bufs: dict[int, bytearray] = {}
    counts: Counter[str] = Counter()

    def attempt(src: str) -> bool:
        try:
            sock, rest = handshake("127.0.0.1", port, path, 0.5, source=src)
        except OSError as exc:
            counts[_ws_outcome(exc)] += 1
            return False
        sock.setblocking(False)
        socks.append(sock)
        bufs[sock.fileno()] = bytearray(rest)
        sel.register(sock, selectors.EVENT_READ, sock)
        counts["upgraded"] += 1
        return True

    def pump(timeout: float) -> None:
        for key, _ in sel.select(timeout):
            s: socket.socket = key.data
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                buf = bufs[s.fileno()]
                buf += data
                for op, payload in parse_frames(buf):
                    if op == 0x9:
                        with contextlib.suppress(OSError):
                            s.send(masked_frame(0xA, payload))
            else:
                counts["dropped"] += 1
                sel.unregister(s)
                bufs.pop(s.fileno(), None)
                s.close()
                socks.remove(s)

    try:
        for src in sources:
            misses = 0
            for _ in range(per_source):
                if attempt(src):
                    misses = 0
                else:
                    misses += 1
                    if misses >= 3:
                        break
                pump(0)
        counts["peak_open"] = len(socks)
        pipe.send(("opened", len(socks)))
        k = 0
        while not pipe.poll(0):
            pump(0.5)
            attempt(sources[k % len(sources)])  # a refused one keeps being refused
            k += 1
            counts["peak_open"] = max(counts["peak_open"], len(socks))
        pipe.recv()
        pipe.send(("done", dict(counts)))
    finally:
        for s in socks:
            s.close()
        sel.close()
        pipe.close()


def guesser(port: int, source: str, n: int, tag: str, pipe: Connection) -> None:
    """``n`` handshakes with wrong tokens from ``source``; answers ``("done", counts)``."""
    counts: Counter[str] = Counter()
    t0 = time.monotonic()
    try:
        for i in range(n):
            req = (f"GET {WS_PATH}?token=guess-{tag}-{i:06d} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{port}\r\n").encode() + _UPGRADE + b"\r\n"
            try:
                with _connect(source, port, 10.0) as s:
                    s.sendall(req)
                    counts[_status(s.recv(4096))] += 1
            except OSError as exc:
                counts["timeout" if isinstance(exc, TimeoutError) else "error"] += 1
        pipe.send(("done", {**counts, "seconds": time.monotonic() - t0}))
    finally:
        pipe.close()


def ping_flood(port: int, source: str, token: str, max_s: float, pipe: Connection) -> None:
    """Pings as fast as they go until the daemon closes (or ``max_s``); answers
    ``("done", {pings, pongs, close_code, seconds})``."""
    out: dict[str, Any] = {"pings": 0, "pongs": 0, "close_code": None}
    try:
        sock, rest = handshake("127.0.0.1", port, f"{WS_PATH}?token={token}", 5.0,
                               source=source)
    except OSError as exc:
        pipe.send(("error", f"ping flood: {exc}"))
        pipe.close()
        return
    buf = bytearray(rest)
    batch = masked_frame(0x9, b"p") * 32
    sock.setblocking(False)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < max_s and out["close_code"] is None:
            try:
                sock.send(batch)
                out["pings"] += 32  # a partial send leaves a torn frame: the daemon closes
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                break
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                out["close_code"] = out["close_code"] or 1006
                break
            buf += data
            for op, payload in parse_frames(buf):
                if op == 0xA:
                    out["pongs"] += 1
                elif op == 0x8:
                    out["close_code"] = (int.from_bytes(payload[:2], "big")
                                         if len(payload) >= 2 else 1005)
        out["seconds"] = time.monotonic() - t0
        pipe.send(("done", out))
    finally:
        sock.close()
        pipe.close()


def rebinding(port: int, source: str, token: str) -> list[dict[str, Any]]:
    """The rebinding requests; for each, its status and whether a ``place_order``
    sent over it (if it ever upgraded) was answered."""
    evil = f"attacker.example:{port}"
    ours = f"127.0.0.1:{port}"
    ws = f"{WS_PATH}?token={token}"
    cases = [
        ("GET / (Host attacker.example)", "/", evil, None, False),
        ("GET /metrics (Host attacker.example)", "/metrics", evil, None, False),
        ("GET /healthz (Host attacker.example)", "/healthz", evil, None, False),
        ("upgrade, Host attacker.example, no Origin", ws, evil, None, True),
        ("upgrade, Host + Origin attacker.example", ws, evil, f"http://{evil}", True),
        ("upgrade, Host 127.0.0.1, Origin attacker.example", ws, ours,
         "http://attacker.example", True),
        ("upgrade, Host 127.0.0.1, Origin attacker.example:port", ws, ours,
         f"http://{evil}", True),
    ]
    rows: list[dict[str, Any]] = []
    for i, (name, target, host, origin, upgrade) in enumerate(cases):
        req = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n".encode()
        if origin:
            req += f"Origin: {origin}\r\n".encode()
        req += (_UPGRADE if upgrade else b"Connection: close\r\n") + b"\r\n"
        row: dict[str, Any] = {"request": name, "status": None, "order_answered": False}
        try:
            with _connect(source, port, 5.0) as s:
                s.sendall(req)
                data = s.recv(65536)
                row["status"] = _status(data)
                if row["status"] == "101":  # never expected: try to trade through it
                    s.sendall(masked_frame(0x1, orjson.dumps({
                        "action": "place_order", "symbol": SYMBOL, "side": "BUY",
                        "type": "MARKET", "quantity": "0.001",
                        "clientOrderId": f"rebind-{i}", "id": "rebind"})))
                    end = time.monotonic() + 2.0
                    while time.monotonic() < end and not row["order_answered"]:
                        more = s.recv(65536)
                        if not more:
                            break
                        row["order_answered"] = b'"rebind"' in more
        except OSError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows
