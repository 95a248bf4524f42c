"""A fake Binance Spot WebSocket upstream, for end-to-end tests of the feed.

It follows the public docs (binance-spot-api-docs, ``web-socket-streams.md``):

* ``/stream?streams=a/b/c`` (combined: ``{"stream": name, "data": event}``)
  and ``/ws/<stream>`` (raw: the bare event); ``/stream`` and ``/ws`` alone
  open a connection with no streams, for live subscription;
* ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` answered with
  ``{"result": ..., "id": ...}``, and ``{"error": {"code", "msg"}, "id"}`` for
  invalid JSON (3), wrong value types (1), invalid requests (2: unknown method,
  bad stream names, unknown symbols, more than ``max_streams`` streams);
* symbols in stream names must be lower-case and among ``known_symbols``;
* more than ``control_rate_limit`` control messages in one second closes the
  connection (as Binance does);
* a ping every ``ping_interval_s``; no pong within ``pong_timeout_s`` closes it;
  ``max_lifetime_s`` (Binance: 24 h) closes it after that long.

Two ways to feed it:

* scripted (the default): the test pushes each frame with :meth:`push_trade`,
  :meth:`push_ticker`, :meth:`push_raw`;
* streaming (``stream_prices={"BTCUSDT": "50000", ...}``): a background
  thread, every ``stream_interval_s``, pushes one trade (qty 0.5) at the
  current price of each symbol, and every ``ticker_every`` ticks a
  ``24hrTicker``; :meth:`set_price` changes a price. Aggregate ids advance on
  every tick whether or not anyone receives it (stalled, or nobody
  connected), so a client that was away sees a gap, as with the real tape.
  Symbols with a price are added to ``known_symbols``; a known symbol without
  a price is accepted by ``SUBSCRIBE`` but never gets any data.

Faults for tests: :meth:`drop_all`, :meth:`refuse`, :meth:`stall`,
:meth:`send_garbage`, :meth:`server_shutdown_event`; :meth:`never_answer`
(accept TCP, read the upgrade request, never answer it), :meth:`close_at_once`
(accept the upgrade, then close before any data), :meth:`send_oversized`
(a text frame announcing and streaming ``n`` bytes, never built in memory),
poison trades with ``push_trade(..., advance=False)`` (any id and price,
without moving the fake's own id sequence); counters
(:attr:`connection_attempts`, :attr:`control_messages`, ...), records
(:attr:`request_targets`, :attr:`control_requests`, :attr:`control_times`) and
:meth:`wait_until` to wait on them without sleeping.

Threads: ``socketserver`` runs the accept loop in one daemon thread and each
connection in its own daemon handler thread; in streaming mode one more
thread pushes prices (it waits on the stop event between ticks); ``push_*``
and the fault controls run in the caller's thread. Every socket write of a
connection holds that connection's lock. Every loop is bounded: sockets are
polled with a ``_POLL_S`` timeout and re-check the stop flag, writes have a
``send_timeout_s`` deadline (a client that does not read is dropped), the
handshake has a deadline. :meth:`close` stops the server, closes every
connection and joins every thread it started.

Built on the standard library (``socketserver``) and ``wsproto`` (the sans-I/O
WebSocket state machine that simple-websocket also uses).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.events import Message as WsMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from engine.market.upstream_limits import SlidingWindowLimiter

__all__ = ["FakeBinanceUpstream"]

_POLL_S: Final = 0.05
_HANDSHAKE_TIMEOUT_S: Final = 5.0
_JOIN_TIMEOUT_S: Final = 5.0
_MAX_MESSAGE: Final = 1 << 20

_STREAM_TYPE_RE: Final = re.compile(
    r"aggtrade|trade|ticker|miniticker|bookticker|avgprice"
    r"|ticker_(1h|4h|1d)"
    r"|depth(5|10|20)?(@100ms|@1000ms)?"
    r"|kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1mo)"
    r"(@\+08:00)?"
)
_SYMBOL_RE: Final = re.compile(r"[a-z0-9]{1,32}")


def _canonical(stream: str) -> str:
    return stream.lower()


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _dec(value: Decimal | str | int | float) -> str:
    return str(Decimal(str(value)))


@dataclass(eq=False)
class _Conn:
    """One accepted upstream connection (owned by its handler thread)."""

    sock: socket.socket
    ws: WSConnection
    combined: bool
    thread: threading.Thread
    opened_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    streams: dict[str, str] = field(default_factory=dict)  # canonical -> as subscribed
    closed: bool = False
    ping_sent_at: float | None = None  # oldest unanswered ping
    next_ping_at: float = 0.0
    limiter: SlidingWindowLimiter | None = None
    close_reason: str = ""


class FakeBinanceUpstream:
    """A threaded fake of Binance's WebSocket market streams on 127.0.0.1."""

    def __init__(
        self,
        *,
        known_symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT", "BNBBTC"),
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 60.0,
        max_streams: int = 1024,
        control_rate_limit: int | None = 5,
        max_lifetime_s: float | None = None,
        send_timeout_s: float = 2.0,
        clock_ms: Callable[[], int] | None = None,
        host: str = "127.0.0.1",
        stream_prices: Mapping[str, Decimal | str | float] | None = None,
        stream_interval_s: float = 0.01,
        ticker_every: int = 5,
    ) -> None:
        self.known_symbols = {s.upper() for s in known_symbols}
        self._streaming = stream_prices is not None
        self._prices = {s.upper(): Decimal(str(p)) for s, p in (stream_prices or {}).items()}
        self.known_symbols |= set(self._prices)
        self.stream_interval_s = stream_interval_s
        self.ticker_every = ticker_every
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.max_streams = max_streams
        self.control_rate_limit = control_rate_limit
        self.max_lifetime_s = max_lifetime_s
        self.send_timeout_s = send_timeout_s
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._host = host

        self._lock = threading.RLock()  # predicates of wait_until re-enter it
        self._changed = threading.Condition(self._lock)
        self._conns: list[_Conn] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stalled = False
        self._silent = False
        self._close_at_once = False
        self._refuse_count: int | None = 0  # None: refuse until told otherwise
        self._refuse_until: float | None = None
        self._agg_ids: dict[str, int] = {}
        self._trade_ids: dict[str, int] = {}

        # counters (read them directly; they only grow)
        self.connection_attempts = 0
        self.accepted_connections = 0
        self.refused_connections = 0
        self.control_messages = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.frames_sent = 0
        self.unanswered_handshakes = 0
        """Upgrade requests read and left unanswered (:meth:`never_answer`)."""
        self.closed_at_once = 0
        self.oversized_bytes_sent = 0
        # records (append-only): the request path of every handshake (refused
        # ones too), and every control message (parsed JSON; the raw text if it
        # is not JSON, None for a binary frame) with its time.monotonic()
        self.request_targets: list[str] = []
        self.control_requests: list[Any] = []
        self.control_times: list[float] = []

        self._server: socketserver.ThreadingTCPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._stream_thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeBinanceUpstream:
        """Listen on an ephemeral port and start accepting."""
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve_connection(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False  # close() joins the threads itself, with timeouts
            allow_reuse_address = True

            def process_request(self, request: Any, client_address: Any) -> None:
                thread = threading.Thread(
                    target=self.process_request_thread,
                    args=(request, client_address),
                    name="fake-binance-conn",
                    daemon=True,
                )
                with owner._lock:
                    owner._threads = [t for t in owner._threads if t.is_alive()]
                    owner._threads.append(thread)
                thread.start()

        self._server = Server((self._host, 0), Handler)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name="fake-binance-accept",
            daemon=True,
        )
        self._serve_thread.start()
        if self._streaming:
            self._stream_thread = threading.Thread(
                target=self._stream_loop, name="fake-binance-stream", daemon=True
            )
            self._stream_thread.start()
        return self

    def __enter__(self) -> FakeBinanceUpstream:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, close every connection, join every thread. Idempotent."""
        self._stopping.set()
        if self._stream_thread is not None:
            self._stream_thread.join(_JOIN_TIMEOUT_S)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # returns once serve_forever has left its poll loop
            server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(_JOIN_TIMEOUT_S)
        for conn in self._snapshot():
            self._close_conn(conn, abort=False, reason="server closed")
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)
        alive = [t for t in [*threads, self._stream_thread] if t is not None and t.is_alive()]
        if alive:  # pragma: no cover - would be a bug in the bounded loops
            raise RuntimeError(f"fake upstream threads did not stop: {alive}")

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://{self._host}:{self.port}"

    def combined_url(self, streams: Iterable[str] = ()) -> str:
        names = list(streams)
        return f"{self.base_url}/stream" + (f"?streams={'/'.join(names)}" if names else "")

    def raw_url(self, stream: str | None = None) -> str:
        return f"{self.base_url}/ws" + (f"/{stream}" if stream else "")

    # ------------------------------------------------------------ observation

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait (on a condition, not a sleep loop) until ``predicate()`` holds."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns if not c.closed)

    def subscribers(self, stream: str) -> int:
        key = _canonical(stream)
        with self._lock:
            return sum(1 for c in self._conns if not c.closed and key in c.streams)

    def subscriptions(self) -> list[list[str]]:
        """The sorted stream names of every open connection."""
        with self._lock:
            return [sorted(c.streams) for c in self._conns if not c.closed]

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _snapshot(self) -> list[_Conn]:
        with self._lock:
            return [c for c in self._conns if not c.closed]

    # ------------------------------------------------------------ tape

    def push_trade(
        self,
        symbol: str,
        price: Decimal | str | float,
        qty: Decimal | str | float,
        *,
        buyer_is_maker: bool = False,
        agg_id: int | None = None,
        event_time_ms: int | None = None,
        advance: bool = True,
    ) -> int:
        """Push one trade as ``@aggTrade`` (and ``@trade``) events; returns recipients.

        Aggregate ids count up per symbol from 1000 unless ``agg_id`` is given
        (then counting continues from it, so a gap can be made on purpose).
        ``advance=False``: a poison trade; the next trade continues the sequence
        as if this one had not been sent.
        """
        sym = symbol.upper()
        now = self._clock_ms() if event_time_ms is None else event_time_ms
        with self._lock:
            aid = agg_id if agg_id is not None else self._agg_ids.get(sym, 999) + 1
            if advance:
                self._agg_ids[sym] = aid
            tid = self._trade_ids.get(sym, 99_999) + 1
            self._trade_ids[sym] = tid
        p, q = _dec(price), _dec(qty)
        agg = {
            "e": "aggTrade", "E": now, "s": sym, "a": aid, "p": p, "q": q,
            "f": tid, "l": tid, "T": now, "m": buyer_is_maker, "M": True,
        }  # fmt: skip
        trade = {
            "e": "trade", "E": now, "s": sym, "t": tid, "p": p, "q": q,
            "T": now, "m": buyer_is_maker, "M": True,
        }  # fmt: skip
        low = sym.lower()
        return self._publish(f"{low}@aggTrade", agg) + self._publish(f"{low}@trade", trade)

    def push_ticker(
        self,
        symbol: str,
        last: Decimal | str | float,
        *,
        change: Decimal | str | float = "0",
        change_percent: Decimal | str | float = "0",
        high: Decimal | str | float | None = None,
        low: Decimal | str | float | None = None,
        volume: Decimal | str | float = "0",
        bid: Decimal | str | float | None = None,
        ask: Decimal | str | float | None = None,
        event_time_ms: int | None = None,
    ) -> int:
        """Push one ``24hrTicker`` event to ``<sym>@ticker`` subscribers; returns recipients."""
        sym = symbol.upper()
        now = self._clock_ms() if event_time_ms is None else event_time_ms
        c = _dec(last)
        event = {
            "e": "24hrTicker", "E": now, "s": sym,
            "p": _dec(change), "P": _dec(change_percent), "w": c, "x": c, "c": c, "Q": "1",
            "b": _dec(bid if bid is not None else last), "B": "1",
            "a": _dec(ask if ask is not None else last), "A": "1", "o": c,
            "h": _dec(high if high is not None else last),
            "l": _dec(low if low is not None else last),
            "v": _dec(volume), "q": "0", "O": now - 86_400_000, "C": now,
            "F": 0, "L": 0, "n": 0,
        }  # fmt: skip
        return self._publish(f"{sym.lower()}@ticker", event)

    def set_price(self, symbol: str, price: Decimal | str | float) -> None:
        """Stream ``symbol`` at ``price`` from the next tick on (streaming mode only)."""
        if not self._streaming:
            raise RuntimeError("set_price needs streaming mode (stream_prices=...)")
        sym = symbol.upper()
        with self._lock:
            self._prices[sym] = Decimal(str(price))
            self.known_symbols.add(sym)

    def _stream_loop(self) -> None:
        tick = 0
        while not self._stopping.wait(self.stream_interval_s):
            tick += 1
            with self._lock:
                prices = dict(self._prices)
            for sym, price in prices.items():
                self.push_trade(sym, price, "0.5")
                if tick % self.ticker_every == 0:
                    self.push_ticker(sym, price, change="1.0", change_percent="0.1",
                                     high=price * 2, low=price / 2, volume="1234.5")  # fmt: skip

    def push_raw(self, text: str) -> int:
        """Send ``text`` as-is to every open connection (subscribed or not)."""
        return self._broadcast(text)

    def _publish(self, stream: str, event: dict[str, object]) -> int:
        key = _canonical(stream)
        if self._stalled:
            return 0
        raw = _dumps(event)
        wrapped = _dumps({"stream": stream, "data": event})
        sent = 0
        for conn in self._snapshot():
            if key in conn.streams and self._send_text(conn, wrapped if conn.combined else raw):
                sent += 1
        return sent

    def _broadcast(self, text: str) -> int:
        if self._stalled:
            return 0
        return sum(1 for conn in self._snapshot() if self._send_text(conn, text))

    # ------------------------------------------------------------ faults

    def drop_all(self) -> int:
        """Kill every connection abruptly (TCP reset, no close frame); returns how many."""
        conns = self._snapshot()
        for conn in conns:
            self._close_conn(conn, abort=True, reason="dropped")
        return len(conns)

    def refuse(self, count: int | None = None, *, for_s: float | None = None) -> None:
        """Refuse upgrades with HTTP 503: the next ``count``, or for ``for_s`` seconds,
        or (neither given) until :meth:`accept_upgrades`."""
        with self._lock:
            if count is None and for_s is None:
                self._refuse_count, self._refuse_until = None, None
            else:
                self._refuse_count = count or 0
                self._refuse_until = time.monotonic() + for_s if for_s is not None else None

    def accept_upgrades(self) -> None:
        """Stop refusing."""
        with self._lock:
            self._refuse_count = 0
            self._refuse_until = None

    def stall(self) -> None:
        """Stay connected and answer pings, but send nothing else (no data, no replies)."""
        self._stalled = True

    def unstall(self) -> None:
        self._stalled = False

    def never_answer(self, on: bool = True) -> None:
        """Accept TCP connections and read the upgrade request, but never answer it
        (the connection is held until the client gives up or the fake closes)."""
        self._silent = on

    def close_at_once(self, on: bool = True) -> None:
        """Accept the upgrade, then close the connection (1000) before any data."""
        self._close_at_once = on

    def send_oversized(self, n_bytes: int, chunk: int = 1 << 16) -> int:
        """Send every open connection one text frame of ``n_bytes`` (header first,
        then the payload in ``chunk``-byte writes, stopping when the peer closes);
        returns the payload bytes written in total."""
        header = struct.pack("!BBQ", 0x81, 127, n_bytes)  # FIN + text, 64-bit length
        block = b"x" * chunk
        total = 0
        for conn in self._snapshot():
            with conn.lock:
                if conn.closed:
                    continue
                try:
                    conn.sock.sendall(header)
                    left = n_bytes
                    while left > 0 and not self._stopping.is_set():
                        part = block if left >= chunk else block[:left]
                        conn.sock.sendall(part)
                        left -= len(part)
                        total += len(part)
                except OSError:
                    pass  # the client closed: that is the point
        with self._lock:
            self.oversized_bytes_sent += total
        self._notify()
        return total

    def send_garbage(self, text: str = '\x00not json {"e":') -> int:
        """Send a text frame that is not valid JSON to every connection."""
        return self._broadcast(text)

    def server_shutdown_event(self) -> int:
        """Send ``{"e":"serverShutdown","E":now}`` to every connection (raw, unwrapped)."""
        return self._broadcast(_dumps({"e": "serverShutdown", "E": self._clock_ms()}))

    # ------------------------------------------------------------ connection

    def _should_refuse(self) -> bool:
        with self._lock:
            if self._refuse_until is not None and time.monotonic() < self._refuse_until:
                return True
            if self._refuse_count is None:
                return True
            if self._refuse_count > 0:
                self._refuse_count -= 1
                return True
            return False

    def _serve_connection(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.send_timeout_s)  # bounds sendall; recv only after select
        ws = WSConnection(ConnectionType.SERVER)
        request = self._handshake(sock, ws)
        if request is None:
            return
        with self._lock:
            self.connection_attempts += 1
            self.request_targets.append(request.target)
        self._notify()
        if self._silent:
            with self._lock:
                self.unanswered_handshakes += 1
            self._notify()
            self._hold(sock)
            return
        if self._should_refuse():
            with self._lock:
                self.refused_connections += 1
            self._reject(sock, ws, 503)
            self._notify()
            return
        route = self._route(request.target)
        if isinstance(route, int):
            self._reject(sock, ws, route)
            return
        combined, streams = route
        now = time.monotonic()
        conn = _Conn(
            sock=sock,
            ws=ws,
            combined=combined,
            thread=threading.current_thread(),
            opened_at=now,
            next_ping_at=now + self.ping_interval_s,
            limiter=(
                SlidingWindowLimiter(self.control_rate_limit, 1.0)
                if self.control_rate_limit
                else None
            ),
        )
        conn.streams = {_canonical(s): s for s in streams}
        try:
            sock.sendall(ws.send(AcceptConnection()))
        except OSError:
            return
        with self._lock:
            if self._stopping.is_set():
                return
            self._conns.append(conn)
            self.accepted_connections += 1
        self._notify()
        try:
            if self._close_at_once:
                conn.close_reason = "closed at once"
                with self._lock:
                    self.closed_at_once += 1
                self._send_close(conn, 1000, "bye")
                return
            self._run(conn)
        finally:
            self._close_conn(conn, abort=False, reason=conn.close_reason or "ended")

    def _hold(self, sock: socket.socket) -> None:
        """Keep a connection open, unanswered, until the peer closes it or we stop."""
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], _POLL_S)
                if ready and not sock.recv(65536):
                    break
            except (OSError, ValueError):
                break
        with contextlib.suppress(OSError):
            sock.close()
        self._notify()

    def _handshake(self, sock: socket.socket, ws: WSConnection) -> Request | None:
        deadline = time.monotonic() + _HANDSHAKE_TIMEOUT_S
        while not self._stopping.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], _POLL_S)
            if not ready:
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            try:
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        return event
            except RemoteProtocolError:
                # Not a WebSocket upgrade: answer plain HTTP 400.
                with contextlib.suppress(OSError):
                    sock.sendall(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"
                        b"connection: close\r\n\r\n"
                    )
                return None
        return None

    @staticmethod
    def _reject(sock: socket.socket, ws: WSConnection, status: int) -> None:
        with contextlib.suppress(OSError, LocalProtocolError):
            sock.sendall(
                ws.send(
                    RejectConnection(
                        status_code=status,
                        headers=[(b"content-length", b"0"), (b"connection", b"close")],
                        has_body=False,
                    )
                )
            )

    def _stream_error(self, stream: object) -> str | None:
        """Why ``stream`` is not a valid stream name here (None if it is)."""
        if not isinstance(stream, str):
            return "stream names must be strings"
        symbol, sep, kind = stream.partition("@")
        if not sep or _SYMBOL_RE.fullmatch(symbol) is None:
            return f"invalid stream name '{stream}'"
        if _STREAM_TYPE_RE.fullmatch(kind.lower()) is None:
            return f"invalid stream name '{stream}'"
        if symbol.upper() not in self.known_symbols:
            return f"unknown symbol in '{stream}'"
        return None

    def _route(self, target: str) -> tuple[bool, list[str]] | int:
        parts = urlsplit(target)
        path = parts.path.rstrip("/")
        if path == "/stream":
            query = parse_qs(parts.query)
            raw = query.get("streams", [""])[0]
            streams = [s for s in raw.split("/") if s]
            combined = True
        elif path == "/ws" or path.startswith("/ws/"):
            streams = [unquote(s) for s in path[len("/ws") :].split("/") if s]
            combined = False
        else:
            return 404
        if len(streams) > self.max_streams or any(self._stream_error(s) for s in streams):
            return 400
        return combined, streams

    def _run(self, conn: _Conn) -> None:
        pending: list[str] = []
        size = 0
        while not self._stopping.is_set() and not conn.closed:
            now = time.monotonic()
            if self.max_lifetime_s is not None and now - conn.opened_at >= self.max_lifetime_s:
                conn.close_reason = "lifetime"
                self._send_close(conn, 1000, "connection lifetime reached")
                return
            if conn.ping_sent_at is not None and now - conn.ping_sent_at > self.pong_timeout_s:
                conn.close_reason = "pong timeout"
                return  # Binance disconnects
            if now >= conn.next_ping_at:
                conn.next_ping_at = now + self.ping_interval_s
                if self._send_event(conn, Ping(payload=str(self._clock_ms()).encode())):
                    if conn.ping_sent_at is None:
                        conn.ping_sent_at = now
                    with self._lock:
                        self.pings_sent += 1
                    self._notify()
            try:
                ready, _, _ = select.select([conn.sock], [], [], _POLL_S)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                data = conn.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                conn.ws.receive_data(data)
                events = list(conn.ws.events())
            except RemoteProtocolError:
                conn.close_reason = "protocol error"
                return
            for event in events:
                if isinstance(event, TextMessage):
                    pending.append(event.data)
                    size += len(event.data)
                    if size > _MAX_MESSAGE:
                        self._send_close(conn, 1009, "message too big")
                        return
                    if event.message_finished:
                        text = "".join(pending)
                        pending.clear()
                        size = 0
                        if not self._on_control(conn, text):
                            return
                elif isinstance(event, BytesMessage):
                    if event.message_finished and not self._on_control(conn, None):
                        return
                elif isinstance(event, Ping):
                    self._send_event(conn, event.response())  # also while stalled
                elif isinstance(event, Pong):
                    conn.ping_sent_at = None
                    with self._lock:
                        self.pongs_received += 1
                    self._notify()
                elif isinstance(event, CloseConnection):
                    conn.close_reason = f"client close {event.code}"
                    self._send_event(conn, event.response())
                    return

    # ------------------------------------------------------------ control messages

    def _on_control(self, conn: _Conn, text: str | None) -> bool:
        """Handle one client message; False when the connection must close."""
        request: Any = text
        if text is not None:
            with contextlib.suppress(orjson.JSONDecodeError):
                request = orjson.loads(text)
        with self._lock:
            self.control_messages += 1
            self.control_requests.append(request)
            self.control_times.append(time.monotonic())
        self._notify()
        if conn.limiter is not None and not conn.limiter.try_acquire(time.monotonic()):
            conn.close_reason = "control message rate exceeded"
            return False  # Binance disconnects clients above the limit
        reply = self._control_reply(conn, text)
        if not self._stalled:
            self._send_text(conn, _dumps(reply))
        self._notify()
        return True

    def _control_reply(self, conn: _Conn, text: str | None) -> dict[str, object]:
        def error(code: int, msg: str, rid: object = None) -> dict[str, object]:
            return {"error": {"code": code, "msg": msg}, "id": rid}

        if text is None:
            return error(3, "Invalid JSON: binary frames are not accepted")
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            return error(3, "Invalid JSON: could not parse the request")
        if not isinstance(req, dict):
            return error(2, "Invalid request: the request must be a JSON object")
        rid = req.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
            return error(1, "Invalid value type: id must be an integer, a string or null")
        method = req.get("method")
        if method == "LIST_SUBSCRIPTIONS":
            with self._lock:
                return {"result": sorted(conn.streams), "id": rid}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return error(2, f"Invalid request: unknown method {method!r}", rid)
        params = req.get("params")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return error(1, "Invalid value type: params must be a list of strings", rid)
        for stream in params:
            why = self._stream_error(stream)
            if why is not None:
                return error(2, f"Invalid request: {why}", rid)
        with self._lock:
            if method == "SUBSCRIBE":
                new = {_canonical(s): s for s in params if _canonical(s) not in conn.streams}
                if len(conn.streams) + len(new) > self.max_streams:
                    return error(2, f"Invalid request: more than {self.max_streams} streams", rid)
                conn.streams.update(new)
            else:
                for stream in params:
                    conn.streams.pop(_canonical(stream), None)
        return {"result": None, "id": rid}

    # ------------------------------------------------------------ writing

    def _send_text(self, conn: _Conn, text: str) -> bool:
        return self._send_event(conn, WsMessage(data=text))

    def _send_event(self, conn: _Conn, event: Any) -> bool:
        with conn.lock:
            if conn.closed:
                return False
            try:
                conn.sock.sendall(conn.ws.send(event))
            except (OSError, LocalProtocolError):
                failed = True
            else:
                failed = False
                if isinstance(event, WsMessage):
                    with self._lock:
                        self.frames_sent += 1
        if failed:  # a client that does not read within send_timeout_s is dropped
            self._close_conn(conn, abort=True, reason="send failed")
        return not failed

    def _send_close(self, conn: _Conn, code: int, reason: str) -> None:
        self._send_event(conn, CloseConnection(code=code, reason=reason))

    def _close_conn(self, conn: _Conn, *, abort: bool, reason: str) -> None:
        # A writer blocked in sendall holds conn.lock; shutdown() wakes it, so
        # only wait for the lock after that (bounded by send_timeout_s anyway).
        got = conn.lock.acquire(timeout=0)
        try:
            with self._lock:
                if conn.closed:
                    return
                conn.closed = True
                conn.close_reason = conn.close_reason or reason
                self._conns = [c for c in self._conns if c is not conn]
            if abort:  # linger 0: close() sends RST, the peer sees a reset
                with contextlib.suppress(OSError):
                    conn.sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            if not abort or not got:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
            if not got:
                got = conn.lock.acquire(timeout=self.send_timeout_s + 1.0)
            with contextlib.suppress(OSError):
                conn.sock.close()
        finally:
            if got:
                conn.lock.release()
        self._notify()
