"""A fake Binance stream server streaming a settable price (feed tests), with faults.

It speaks enough of Binance's combined-stream protocol for the feed:

* ``GET /stream?streams=<sym>@aggTrade/<sym>@ticker/...`` upgrades to a
  WebSocket (handshake and frames by ``wsproto``); every ``interval_s`` each
  listed symbol makes one aggregate trade (its id advances by 1 whether or
  not anyone listens, so a client that was disconnected sees a gap), and
  every ``ticker_every`` trades a ``24hrTicker``. Each connection gets the
  events of its streams, wrapped as ``{"stream": ..., "data": ...}``.
* live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` requests are
  answered (``{"result": null, "id": ...}``) and change the connection's
  streams; a symbol that is not listed is accepted (as Binance does) but no
  data ever comes for it.
* protocol pings are answered with pongs.

Fault controls (thread-safe, take effect at once):

``refuse``            answer new handshakes with HTTP 503 and close
``stall``             keep connections open (pongs included) but send no data
``drop_all()``        cut every open connection (TCP shutdown, no close frame)
``inject(text)``      send one raw text frame to every connection
``server_shutdown()`` send ``{"e":"serverShutdown"}`` to every connection

Observations: ``attempts`` (handshakes seen), ``accepted``, ``targets``
(request paths), ``controls`` (control requests received, with their
monotonic ``control_times``) and
:meth:`wait_accepted`.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

__all__ = ["FakeBinanceUpstream"]


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        self.lock = threading.Lock()
        self.streams: set[str] = set()
        self.open = False
        self.closed = False

    def send_event(self, event: Any) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.sendall(self.ws.send(event))
            except Exception:
                self.closed = True

    def send_text(self, text: str) -> None:
        if self.open:
            self.send_event(TextMessage(data=text))

    def cut(self) -> None:
        with self.lock:
            self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class FakeBinanceUpstream:
    """See the module docstring. Use as a context manager or ``start()``/``stop()``."""

    def __init__(self, prices: dict[str, str] | None = None, *, interval_s: float = 0.01,
                 ticker_every: int = 5) -> None:
        listed = prices or {"BTCUSDT": "50000.0", "ETHUSDT": "3000.0"}
        self.prices: dict[str, Decimal] = {s: Decimal(p) for s, p in listed.items()}
        self.interval_s = interval_s
        self.ticker_every = ticker_every
        self.refuse = False
        self.stall = False
        self.attempts = 0
        self.accepted = 0
        self.targets: list[str] = []
        self.controls: list[dict[str, Any]] = []
        self.control_times: list[float] = []
        self._agg_ids: dict[str, itertools.count[int]] = {}
        self._last_id: dict[str, int] = {}
        self._lock = threading.Condition()
        self._conns: list[_Conn] = []
        self._halt = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> FakeBinanceUpstream:
        for target, name in ((self._accept_loop, "fake-accept"), (self._emit_loop, "fake-emit")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._halt.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()
        for t in self._threads:
            t.join(2.0)

    def __enter__(self) -> FakeBinanceUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls ---------------------------------------------------------------

    def set_price(self, symbol: str, price: str) -> None:
        with self._lock:
            self.prices[symbol] = Decimal(price)

    def drop_all(self) -> int:
        with self._lock:
            conns = [c for c in self._conns if not c.closed]
        for c in conns:
            c.cut()
        return len(conns)

    def inject(self, text: str) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.send_text(text)

    def server_shutdown(self) -> None:
        self.inject(orjson.dumps({"e": "serverShutdown", "E": int(time.time() * 1000)}).decode())

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns if c.open and not c.closed)

    def wait_accepted(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until ``n`` connections have been accepted in total."""
        with self._lock:
            return self._lock.wait_for(lambda: self.accepted >= n, timeout)

    def last_id(self, symbol: str) -> int:
        with self._lock:
            return self._last_id.get(symbol, -1)

    # -- threads ----------------------------------------------------------------

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.05)  # so stop() is noticed promptly
        while not self._halt.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock)
            with self._lock:
                self._conns = [c for c in self._conns if not c.closed]
                self._conns.append(conn)
            threading.Thread(target=self._read_loop, args=(conn,), name="fake-conn",
                             daemon=True).start()

    def _read_loop(self, conn: _Conn) -> None:
        try:
            while not conn.closed:
                data = conn.sock.recv(65536)
                if not data:
                    break
                conn.ws.receive_data(data)
                for event in conn.ws.events():
                    if not self._handle(conn, event):
                        return
        except OSError:
            pass
        finally:
            conn.cut()
            with contextlib.suppress(OSError):
                conn.sock.close()

    def _handle(self, conn: _Conn, event: Any) -> bool:
        if isinstance(event, Request):
            with self._lock:
                self.attempts += 1
                self.targets.append(event.target)
                refuse = self.refuse
            if refuse:
                conn.send_event(RejectConnection(status_code=503))
                return False
            parts = urlsplit(event.target)
            streams = parse_qs(parts.query).get("streams", [""])[-1]
            conn.streams = {s for s in streams.split("/") if s}
            conn.send_event(AcceptConnection())
            conn.open = True
            with self._lock:
                self.accepted += 1
                self._lock.notify_all()
        elif isinstance(event, Ping):
            conn.send_event(event.response())
        elif isinstance(event, CloseConnection):
            conn.send_event(event.response())
            return False
        elif isinstance(event, TextMessage):
            self._control(conn, event.data)
        return True

    def _control(self, conn: _Conn, text: str) -> None:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send_text('{"error":{"code":2,"msg":"Invalid JSON"},"id":null}')
            return
        with self._lock:
            self.controls.append(req)
            self.control_times.append(time.monotonic())
        method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        if method == "SUBSCRIBE":
            conn.streams |= set(params)
            result: Any = None
        elif method == "UNSUBSCRIBE":
            conn.streams -= set(params)
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        else:
            conn.send_text(orjson.dumps({"error": {"code": 1, "msg": "Invalid method"},
                                         "id": rid}).decode())
            return
        conn.send_text(orjson.dumps({"result": result, "id": rid}).decode())

    def _emit_loop(self) -> None:
        n = 0
        while not self._halt.wait(self.interval_s):
            n += 1
            now = int(time.time() * 1000)
            with self._lock:
                prices = dict(self.prices)
                conns = [c for c in self._conns if c.open and not c.closed]
                stall = self.stall
            for sym, price in prices.items():
                counter = self._agg_ids.setdefault(sym, itertools.count(1000))
                agg = next(counter)
                with self._lock:
                    self._last_id[sym] = agg
                if stall:
                    continue
                low = sym.lower()
                trade = {"e": "aggTrade", "E": now, "s": sym, "a": agg, "p": str(price),
                         "q": "0.5", "f": agg, "l": agg, "T": now, "m": False, "M": True}
                frames = [(f"{low}@aggTrade", trade)]
                if n % self.ticker_every == 0:
                    frames.append((f"{low}@ticker", {
                        "e": "24hrTicker", "E": now, "s": sym, "p": "1.0", "P": "0.1",
                        "c": str(price), "h": str(price * 2), "l": str(price / 2),
                        "v": "1234.5", "b": str(price), "a": str(price)}))
                for stream, data in frames:
                    text = orjson.dumps({"stream": stream, "data": data}).decode()
                    for c in conns:
                        if stream in c.streams:
                            c.send_text(text)
