"""The victims of :mod:`tickdesk.bench.abuse`: readers and a trader, each a process.

Edge module (processes, sockets, clocks). Both connect from 127.0.0.1 with
the victim account's token and record samples stamped with the wall clock
(``time.time()`` in ms), so the parent can cut them into its phases:

* :func:`readers`: ``n`` connections in one selector loop, each subscribed to
  every symbol; for every MARKET_UPDATE but the first of each symbol on each
  connection (the subscription snapshot, an old state) it records ``(t_ms,
  t_ms - eventTime)``: tick -> client latency at the daemon's millisecond
  resolution (the simulated feed stamps ``eventTime`` when it makes the trade).
* :func:`trader`: one connection (a :class:`~tickdesk.bench.noisy_neighbour.Probe`)
  placing a resting LIMIT buy ``rate`` times a second and cancelling it;
  records ``(t_ms, place -> NEW ms, cancel -> CANCELED ms)`` (monotonic
  clock for the durations).

Commands on the pipe: ``("report",)`` -> ``("report", samples, counts)``,
``("stop",)``. The samples are kept for the whole run, which bounds them
(two doubles per sample: about 6 MB for the readers of a full run). Every
wait is bounded; a closed connection is counted (by close code), never
reopened: a victim that was dropped shows as one.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from array import array
from collections import Counter
from decimal import Decimal
from multiprocessing.connection import Connection

import orjson

from tickdesk.bench.connections import raise_nofile
from tickdesk.bench.lean_client import handshake, masked_frame, parse_frames
from tickdesk.bench.noisy_neighbour import Probe, order_frame

__all__ = ["WS_PATH", "readers", "trader"]

WS_PATH = "/api/ws/realtime"


class _Reader:
    __slots__ = ("buf", "seen", "sock")

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        self.buf = bytearray(rest)
        self.seen: set[str] = set()


def readers(port: int, n: int, token: str, symbols: list[str], pipe: Connection) -> None:
    """The readers' process (see the module docstring)."""
    raise_nofile()
    sel = selectors.DefaultSelector()
    sel.register(pipe.fileno(), selectors.EVENT_READ, None)
    conns: list[_Reader] = []
    t_ms: array[float] = array("d")
    lat_ms: array[float] = array("d")
    counts: Counter[str] = Counter()
    scratch = memoryview(bytearray(1 << 16))
    try:
        for _ in range(n):
            sock, rest = handshake("127.0.0.1", port, f"{WS_PATH}?token={token}", 10.0)
            for sym in symbols:
                sock.sendall(masked_frame(0x1, orjson.dumps(
                    {"action": "subscribe_ticker", "symbol": sym})))
            sock.setblocking(False)
            r = _Reader(sock, rest)
            conns.append(r)
            sel.register(sock, selectors.EVENT_READ, r)
        pipe.send(("ready", len(conns)))
        while True:
            for key, _ in sel.select(0.5):
                r = key.data
                if r is None:
                    cmd = pipe.recv()
                    if cmd[0] == "stop":
                        return
                    counts["open"] = sum(1 for c in conns if c.sock.fileno() >= 0)
                    pipe.send(("report", (t_ms.tobytes(), lat_ms.tobytes()), dict(counts)))
                    continue
                try:
                    got = r.sock.recv_into(scratch)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    got = 0
                now = time.time() * 1000.0
                code = None
                if got:
                    r.buf += scratch[:got]
                    for op, payload in parse_frames(r.buf):
                        if op == 0x1 and b'"MARKET_UPDATE"' in payload:
                            msg = orjson.loads(payload)
                            sym = msg["symbol"]
                            if sym in r.seen:
                                t_ms.append(now)
                                lat_ms.append(now - float(msg["eventTime"]))
                            else:
                                r.seen.add(sym)
                            counts["market_updates"] += 1
                        elif op == 0x9:
                            with contextlib.suppress(OSError):
                                r.sock.send(masked_frame(0xA, payload))
                        elif op == 0x8:
                            code = (int.from_bytes(payload[:2], "big")
                                    if len(payload) >= 2 else 1005)
                if not got or code is not None:
                    counts[f"closed_{code or 1006}"] += 1
                    sel.unregister(r.sock)
                    r.sock.close()
    except OSError as exc:
        pipe.send(("error", f"readers: {exc}"))
    finally:
        for c in conns:
            c.sock.close()
        sel.close()
        pipe.close()


def trader(port: int, token: str, rate: float, pipe: Connection) -> None:
    """The trader's process (see the module docstring)."""
    samples: array[float] = array("d")  # t_ms, place_ms, cancel_ms, ...
    counts: Counter[str] = Counter()
    try:
        probe = Probe("127.0.0.1", port, f"{WS_PATH}?token={token}")
        price = str((probe.price() * Decimal("0.9")).quantize(Decimal("0.01")))
    except OSError as exc:
        pipe.send(("error", f"trader: {exc}"))
        pipe.close()
        return
    pipe.send(("ready", 1))
    period = 1.0 / rate
    i = 0
    next_at = time.monotonic()
    try:
        while True:
            if pipe.poll(max(0.0, next_at - time.monotonic())):
                cmd = pipe.recv()
                if cmd[0] == "stop":
                    return
                pipe.send(("report", samples.tobytes(), dict(counts)))
                continue
            next_at += period
            rid = f"v{i}"
            i += 1
            try:
                t0 = time.monotonic_ns()
                probe.sock.sendall(order_frame(price, rid))
                msg = probe.wait(lambda m, r=rid: m.get("id") == r)
                t1 = time.monotonic_ns()
                if msg.get("executionType") != "NEW":
                    counts[f"place_{msg.get('code') or msg.get('executionType')}"] += 1
                    continue
                cid = f"c{rid}"
                probe.send({"action": "cancel_order", "orderId": msg["order"]["orderId"],
                            "id": cid})
                done = probe.wait(lambda m, c=cid: m.get("id") == c)
                t2 = time.monotonic_ns()
                counts["orders"] += 1
                if done.get("executionType") != "CANCELED":
                    counts[f"cancel_{done.get('code') or done.get('executionType')}"] += 1
                    continue
                samples.extend((time.time() * 1000.0, (t1 - t0) / 1e6, (t2 - t1) / 1e6))
            except OSError as exc:
                counts["lost"] += 1
                pipe.send(("error", f"trader: {exc}"))
                return
            next_at = max(next_at, time.monotonic())  # no catch-up burst after a stall
    finally:
        probe.close()
        pipe.close()
