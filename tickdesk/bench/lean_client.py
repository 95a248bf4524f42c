"""A lean WebSocket client process: N raw connections, one selector loop.

Each connection is opened with a plain-socket HTTP/1.1 upgrade, subscribes to
:data:`~tickdesk.bench.SYMBOL`, and from then on its frames are parsed out of
bulk ``recv(256 KiB)`` reads. For every MARKET_UPDATE of a scripted tick the
process records ``(k, t_recv)`` (see :mod:`tickdesk.bench`). Only the first
arrival of each ``k`` on a connection counts, and ``k`` must grow: the
servers deliver in order.

Commands arrive on a :class:`multiprocessing.connection.Connection`: first
``("connect", host, port, path, n)`` (the process is started before the
server is up, to overlap the two start-ups); then, watched by the same
selector, ``("finish", last_k, timeout_s)`` answers, once every open
connection has seen ``last_k`` (or the timeout passed), with the records and
this process's CPU seconds since the previous answer; ``("stop",)`` closes everything and returns.
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import selectors
import socket
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any

import orjson

from tickdesk.bench import PRICE_BASE, SYMBOL

__all__ = ["ClientConn", "handshake", "masked_frame", "parse_frames", "run_client"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_RECV = 256 * 1024
_MARKET = b'"MARKET_UPDATE"'
_OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x8, 0x9, 0xA


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame (RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + body


def handshake(host: str, port: int, path: str, timeout: float,
              source: str | None = None) -> tuple[socket.socket, bytes]:
    """Open one WebSocket; returns the socket and any bytes read past the response.
    ``source``: the local address to connect from (e.g. ``127.0.0.7``: another
    loopback address, so per-IP limits see another client)."""
    sock = socket.create_connection((host, port), timeout=timeout,
                                    source_address=None if source is None else (source, 0))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " +
                     f"{host}:{port}".encode() + b"\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                     b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline or len(data) > 65536:
                raise OSError("no handshake response")
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError("connection closed during the handshake")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if b" 101 " not in lines[0] + b" ":
            raise OSError(f"handshake refused: {lines[0]!r}")
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        if not any(ln.lower().startswith(b"sec-websocket-accept:") and ln.split(b":", 1)[1]
                   .strip() == accept for ln in lines[1:]):
            raise OSError("bad Sec-WebSocket-Accept")
        return sock, rest
    except BaseException:
        sock.close()
        raise


def parse_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Remove and return the complete frames at the head of ``buf`` as (opcode, payload)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    end = len(buf)
    while end - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        n = b1 & 0x7F
        hdr = 2
        if n == 126:
            if end - pos < 4:
                break
            n = int.from_bytes(buf[pos + 2:pos + 4], "big")
            hdr = 4
        elif n == 127:
            if end - pos < 10:
                break
            n = int.from_bytes(buf[pos + 2:pos + 10], "big")
            hdr = 10
        if b1 & 0x80:
            raise ValueError("masked server frame")
        if not b0 & 0x80:
            raise ValueError("fragmented frame (not expected from either server)")
        if end - pos < hdr + n:
            break
        out.append((b0 & 0x0F, bytes(buf[pos + hdr:pos + hdr + n])))
        pos += hdr + n
    if pos:
        del buf[:pos]
    return out


class ClientConn:
    """One connection's receive state."""

    __slots__ = ("buf", "closed", "count", "last_k", "ready", "sock")

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        self.buf = bytearray(rest)
        self.ready = False  # the subscription snapshot arrived
        self.last_k = -1
        self.count = 0
        self.closed = False


class _Client:
    def __init__(self) -> None:
        self.conns: list[ClientConn] = []
        self.ks = array("q")
        self.ts = array("q")
        self.errors: list[str] = []
        self.sel = selectors.DefaultSelector()
        # One scratch buffer for every recv: recv(256 KiB) would allocate (mmap) and
        # free 256 KiB per call, which costs more than the frames it brings.
        self._scratch = memoryview(bytearray(_RECV))

    def open(self, url_host: str, port: int, path: str, n: int, timeout: float) -> None:
        sub = masked_frame(_OP_TEXT, orjson.dumps({"action": "subscribe_ticker",
                                                   "symbol": SYMBOL}))
        for _ in range(n):
            sock, rest = handshake(url_host, port, path, timeout)
            sock.sendall(sub)
            sock.setblocking(False)
            conn = ClientConn(sock, rest)
            self.conns.append(conn)
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def pump(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            conn = key.data
            if conn is None:
                continue
            try:
                n = conn.sock.recv_into(self._scratch)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                self._lost(conn, f"recv: {exc}")
                continue
            t = time.monotonic_ns()
            if not n:
                self._lost(conn, "closed by the server")
                continue
            conn.buf += self._scratch[:n]
            try:
                frames = parse_frames(conn.buf)
            except ValueError as exc:
                self._lost(conn, str(exc))
                continue
            for op, payload in frames:
                if op == _OP_TEXT:
                    if _MARKET in payload:
                        self._market(conn, payload, t)
                elif op == _OP_PING:
                    self._send(conn, masked_frame(_OP_PONG, payload))
                elif op == _OP_CLOSE:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self._lost(conn, f"close frame {code}")
                    break

    def _market(self, conn: ClientConn, payload: bytes, t: int) -> None:
        msg: dict[str, Any] = orjson.loads(payload)
        conn.ready = True
        k = round(msg["price"]) - PRICE_BASE
        if k > conn.last_k:
            conn.last_k = k
            conn.count += 1
            self.ks.append(k)
            self.ts.append(t)

    def _send(self, conn: ClientConn, frame: bytes) -> None:
        try:
            conn.sock.send(frame)
        except OSError as exc:
            self._lost(conn, f"send: {exc}")

    def _lost(self, conn: ClientConn, why: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        if len(self.errors) < 20:
            self.errors.append(why)
        self.sel.unregister(conn.sock)
        conn.sock.close()

    def close(self) -> None:
        for conn in self.conns:
            if not conn.closed:
                conn.closed = True
                try:
                    conn.sock.setblocking(True)
                    conn.sock.settimeout(0.2)
                    conn.sock.sendall(masked_frame(_OP_CLOSE, (1000).to_bytes(2, "big")))
                except OSError:
                    pass
                conn.sock.close()
        self.sel.close()


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_client(pipe: Connection, connect_timeout: float = 10.0) -> None:
    """Process entry point (see the module docstring)."""
    client = _Client()
    try:
        if not pipe.poll(120.0):
            return
        cmd = pipe.recv()
        if cmd[0] != "connect":
            return
        _, host, port, path, n = cmd
        try:
            client.open(host, port, path, n, connect_timeout)
        except OSError as exc:
            pipe.send(("error", f"connect: {exc}"))
            return
        deadline = time.monotonic() + connect_timeout
        while not all(c.ready or c.closed for c in client.conns):
            if time.monotonic() > deadline:
                break
            client.pump(0.05)
        ready = sum(c.ready and not c.closed for c in client.conns)
        pipe.send(("ready", ready, client.errors[:]))
        client.ks = array("q")
        client.ts = array("q")
        client.sel.register(pipe.fileno(), selectors.EVENT_READ, None)
        cpu0 = _cpu()
        while True:
            if not pipe.poll(0):
                client.pump(0.1)
                continue
            cmd = pipe.recv()
            if cmd[0] == "stop":
                return
            if cmd[0] == "finish":
                _, last_k, timeout_s = cmd
                end = time.monotonic() + timeout_s
                while time.monotonic() < end:
                    if all(c.closed or c.last_k >= last_k for c in client.conns):
                        break
                    client.pump(0.05)
                complete = sum(not c.closed and c.last_k >= last_k for c in client.conns)
                cpu1 = _cpu()
                pipe.send(("done", client.ks.tobytes(), client.ts.tobytes(), complete,
                           sum(c.closed for c in client.conns), client.errors[:],
                           cpu1 - cpu0))
                cpu0 = cpu1
                client.ks = array("q")
                client.ts = array("q")
    finally:
        client.close()
        pipe.close()
