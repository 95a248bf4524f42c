"""The floor server: the least a Python server can do for this workload.

One selector thread accepts, answers the WebSocket upgrade (a minimal,
trusting parser: bench clients only), greets with CONNECTED and answers
``subscribe_ticker`` with SUBSCRIBED and the latest MARKET_UPDATE. A tick
goes through the same :class:`~engine.market.board.MarketBoard` and
:func:`~engine.protocol.server_messages.market_update` as the other two
servers (encoded and framed once), and then, in the publisher's thread, one
pre-built frame is written to every subscribed socket with a non-blocking
``send``: no hop to another thread, no queue, no lock, no backpressure. A
send the socket does not take whole is dropped and counted (the bench then
reports the missing deliveries): this is a floor to compare with, not a
design.

Threads: the loop thread (accept and reads) and the caller of :meth:`publish`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import selectors
import socket
import threading
import time

import orjson

from engine.market.board import MarketBoard
from engine.messages import Trade
from engine.protocol import server_messages as sm
from engine.protocol.enums import Action
from engine.version import __version__

__all__ = ["FloorServer"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _unmask(data: bytes | bytearray) -> list[tuple[int, bytes]]:
    """Complete masked client frames in ``data`` (the rest is ignored: bench clients
    send one small frame at a time)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 6:
        op, n = data[pos] & 0x0F, data[pos + 1] & 0x7F
        hdr = 2
        if n == 126:
            n, hdr = int.from_bytes(data[pos + 2:pos + 4], "big"), 4
        elif n == 127:
            n, hdr = int.from_bytes(data[pos + 2:pos + 10], "big"), 10
        mask = data[pos + hdr:pos + hdr + 4]
        body = data[pos + hdr + 4:pos + hdr + 4 + n]
        if len(body) < n:
            break
        out.append((op, bytes(b ^ mask[i & 3] for i, b in enumerate(body))))
        pos += hdr + 4 + n
    return out


class FloorServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._board = MarketBoard()
        self._latest: dict[str, sm.Outgoing] = {}
        self._listener = socket.create_server((host, 0), backlog=4096)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._bufs: dict[socket.socket, bytearray] = {}
        self._upgraded: set[socket.socket] = set()
        #: Subscribed sockets' bound ``send``; replaced (never mutated) by the loop.
        self._sends: tuple[object, ...] = ()
        self._subs: dict[socket.socket, object] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="floor-loop", daemon=True)
        self.dropped = 0

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}/api/ws/realtime"

    def start(self) -> FloorServer:
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        for sock in list(self._bufs):
            sock.close()
        self._listener.close()

    # -- the publisher's thread ----------------------------------------------------

    def publish(self, trade: Trade) -> None:
        snap = self._board.apply_trade(trade)
        out = sm.market_update(snap, int(time.time() * 1000))
        self._latest[trade.symbol] = out
        frame = out.frame
        size = len(frame)
        flags = socket.MSG_DONTWAIT
        for send in self._sends:
            try:
                if send(frame, flags) != size:  # type: ignore[operator]
                    self.dropped += 1
            except OSError:
                self.dropped += 1

    # -- the loop thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(0.2):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if sock is self._listener:
                    self._accept()
                else:
                    self._read(sock)

    def _accept(self) -> None:
        for _ in range(256):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of descriptors: try again at the next readiness
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._bufs[sock] = bytearray()
            self._sel.register(sock, selectors.EVENT_READ)

    def _drop(self, sock: socket.socket) -> None:
        self._sel.unregister(sock)
        self._bufs.pop(sock, None)
        self._upgraded.discard(sock)
        if self._subs.pop(sock, None) is not None:
            self._sends = tuple(self._subs.values())
        sock.close()

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        buf = self._bufs[sock]
        buf += data
        if sock not in self._upgraded:
            head, sep, rest = bytes(buf).partition(b"\r\n\r\n")
            if not sep:
                return
            key = b""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            self._send(sock, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                             b"\r\n\r\n")
            now = int(time.time() * 1000)
            self._send(sock, sm.connected(__version__, "default", {"status": "UP"}, now).frame)
            self._upgraded.add(sock)
            buf[:] = rest
        frames = _unmask(buf)
        buf.clear()  # bench clients never split a frame across reads
        for op, payload in frames:
            if op == 0x8:
                self._drop(sock)
                return
            if op != 0x1:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                cmd = orjson.loads(payload)
                if cmd.get("action") == Action.SUBSCRIBE_TICKER:
                    sym = str(cmd.get("symbol"))
                    self._send(sock, sm.subscribed(sym, int(time.time() * 1000)).frame)
                    latest = self._latest.get(sym)
                    if latest is not None:
                        self._send(sock, latest.frame)
                    self._subs[sock] = sock.send
                    self._sends = tuple(self._subs.values())

    def _send(self, sock: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            sock.send(data, socket.MSG_DONTWAIT)
