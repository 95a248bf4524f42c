"""The I/O loop: one thread owns every client socket of the process through ``selectors``.

Edge module. :class:`EdgeLoop` runs one thread (``tickdesk-edge``) that

* accepts from a non-blocking listener (at the descriptor limit it stops
  accepting for :data:`ACCEPT_BACKOFF_S` and logs once per
  :data:`LOG_INTERVAL_S`; existing connections are served meanwhile);
* parses HTTP/1.1 with **h11** (bodies and ``Content-Length`` /
  ``Transfer-Encoding`` framed per RFC 9112): plain routes, ``HEAD``,
  ``OPTIONS`` (204 with ``Allow``), other methods 405, malformed requests
  400 / 414 / 431 with one log line each;
* bounds everything before the upgrade: the request headers must be complete
  within ``handshake_timeout_s`` (else 408 if anything arrived, or a silent
  close), at most ``max_header_bytes`` of them (431), at most
  ``max_pending`` not-yet-upgraded connections in total and
  ``max_pending_per_ip`` per address (beyond: closed at once; at the total
  cap a connection from an address holding fewer than the busiest one
  closes that address's oldest pending connection instead, so addresses
  that fill the cap cannot lock everyone else out); a ``Host`` that is not
  one of the server's names gets 421 on every path;
* upgrades WebSocket requests the site's handler accepted, then drives each
  client's :class:`~engine.server.websocket.WsEndpoint` from the bytes it
  reads, and stops reading a client whose actor has too many frames waiting
  until the actor catches up (:meth:`resume`);
* finishes the writes a full socket did not take (it is every
  :class:`~engine.server.channel.SocketChannel`'s owner), enforces
  ``write_timeout_s`` (4002), the keep-alive pings and the close grace.
  Idle costs per event, not per connection: each connection's next ping is a
  deadline in a heap (:class:`~engine.deadlines.Deadlines`), and the 0.1 s
  sweep of request-head and write deadlines runs only while a connection is
  still in HTTP or has a write waiting.

Other threads talk to the loop only through :meth:`want_write`,
:meth:`shutdown_later`, :meth:`release` and :meth:`resume`: a bounded set of
requests (each channel is queued at most once per state change) plus a
one-byte wake-up on a socket pair.

Plain routes (``/healthz``, ``/metrics``, the dashboard's files) are computed
on one route thread (``tickdesk-routes``, at most 64 requests waiting, 503
beyond), so a slow scrape never stalls the sockets; the connection is not
read meanwhile, and its answer keeps its place among pipelined requests.

An optional API (``Site.api``, an :class:`~engine.server.http.ApiSite`: the
Binance-compatible REST paths) also takes POST, PUT and DELETE with a body of
at most ``max_body_bytes`` (413 and close beyond, checked against
``Content-Length`` before reading and against what arrives when chunked); the
whole body must arrive within the same ``handshake_timeout_s`` as the head.
Its requests run on their own ``workers`` threads (``tickdesk-api``, at most
``max_waiting`` queued, answered ``busy`` beyond), because an order waits
for the engine: they never hold up the route thread or the sockets.

Costs: two threads (plus the API workers when configured) and three
descriptors (the selector and the wake pair) per process, one descriptor per
connection; no thread per connection.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import selectors
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
from wsproto.frame_protocol import CloseReason

from engine.deadlines import Deadlines
from engine.protocol.enums import CloseCode
from engine.rate_limit import RateLimiter
from engine.server.channel import SocketChannel
from engine.server.http import (
    ApiRequest,
    ApiSite,
    HostPolicy,
    HttpResponse,
    Refusal,
    Route,
    UpgradeRequest,
    raw_response,
    reason_phrase,
)
from engine.server.websocket import MessageHandler, Step, WsEndpoint
from engine.stats import counter, gauge

__all__ = [
    "ACCEPT_BACKOFF_S",
    "HOLD_MAX_S",
    "LOG_INTERVAL_S",
    "Accepted",
    "EdgeLimits",
    "EdgeLoop",
    "EdgeStatistics",
    "EdgeStats",
    "Site",
    "UpgradeHandler",
]

log = logging.getLogger("tickdesk.edge")
#: One DEBUG line per answered request (method, path without query, status).
access_log = logging.getLogger("tickdesk.http")

#: Seconds the listener rests after accept() failed for lack of descriptors.
ACCEPT_BACKOFF_S = 0.5
#: The longest :meth:`EdgeLoop.held` keeps the I/O thread still.
HOLD_MAX_S = 5.0
#: At most one "descriptor limit" log line per this many seconds.
LOG_INTERVAL_S = 10.0
_RECV_BYTES = 65536
_MAX_TARGET = 8192
_ACCEPT_BATCH = 64
_SWEEP_S = 0.1
#: Keep-alive deadlines handled per pass of the loop (the rest in the next pass).
_PINGS_PER_PASS = 512
_LINGER_S = 2.0
_MAX_ROUTE_JOBS = 64
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_NO_FD_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_ALLOW = "GET, HEAD, OPTIONS"


@dataclass(frozen=True, slots=True)
class Accepted:
    """An upgrade handler's yes: the client's channel, where its messages go,
    and what to start once the 101 is queued (the session's actor)."""

    channel: SocketChannel
    on_message: MessageHandler
    start: Callable[[], None]


#: ``on_upgrade(sock, request) -> Accepted`` (or raise Refusal); runs in the I/O thread.
UpgradeHandler = Callable[[socket.socket, UpgradeRequest], Accepted]


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    handshake_timeout_s: float = 10.0
    max_header_bytes: int = 16384
    max_pending: int = 512
    max_pending_per_ip: int = 64
    max_message_bytes: int = 65536
    ping_interval_s: float | None = 20.0
    #: Each client's budget of control frames (pings, pongs) it sends.
    control_rate_per_s: float = 20.0
    control_burst: int = 40


@dataclass(frozen=True, slots=True)
class Site:
    """What the loop serves on its listener."""

    ws_paths: tuple[str, ...]
    on_upgrade: UpgradeHandler
    routes: Mapping[str, Route]
    hosts: HostPolicy
    limits: EdgeLimits
    #: Paths under ``api.prefix`` (all methods but OPTIONS), e.g. ``/api/v3/``.
    api: ApiSite | None = None
    #: Upgrade paths beyond the exact ``ws_paths`` (Binance's ``/ws/<stream>``,
    #: ``/stream``): a pure predicate of the path; same handler, same bounds.
    ws_path_match: Callable[[str], bool] | None = None

    def upgrades(self, path: str) -> bool:
        """``path`` is a WebSocket endpoint (exact, or matched by ``ws_path_match``)."""
        if path in self.ws_paths:
            return True
        return self.ws_path_match is not None and self.ws_path_match(path)


class EdgeStats:
    """Counters of the loop (written by the I/O thread only; read anywhere)."""

    __slots__ = ("bad_requests", "descriptor_limit", "evictions", "handshake_timeouts",
                 "misdirected", "pending_evicted", "pending_refused")

    def __init__(self) -> None:
        self.bad_requests = 0
        self.descriptor_limit = 0
        self.evictions = 0
        self.handshake_timeouts = 0
        self.misdirected = 0
        self.pending_refused = 0
        self.pending_evicted = 0


@dataclass(frozen=True, slots=True)
class EdgeStatistics:
    """What the I/O thread holds and did (``/metrics``: ``tickdesk_edge_*``)."""

    connections: int = gauge("Sockets the I/O thread owns (pending and upgraded).")
    pending: int = gauge("Connections not yet upgraded (still in HTTP).")
    channels_waiting: int = gauge("Channels with queued data waiting for their socket.")
    write_timeouts: int = counter("Channels closed 4002: socket not writable in time.")
    handshake_timeouts: int = counter("Connections whose request head did not complete in time.")
    pending_refused: int = counter("Connections closed at accept: pending cap (total or per IP).")
    bad_requests: int = counter("Requests answered 400/414/431 (malformed or too large).")
    misdirected: int = counter("Requests answered 421: Host not one of the server's names.")
    descriptor_limit: int = counter("accept() calls that failed for lack of descriptors.")
    pending_evicted: int = counter("Pending connections closed to admit one from a less busy "
                                   "address (the total pending cap was full).")


class _Conn:
    """One accepted socket: HTTP until upgraded, then WebSocket."""

    __slots__ = (
        "api",
        "awaiting",
        "body",
        "channel",
        "close_after",
        "deadline",
        "fd",
        "finish_when_flushed",
        "http",
        "ip",
        "line_done",
        "lingering",
        "mask",
        "method_path",
        "out",
        "paused",
        "peer",
        "reading",
        "received",
        "sock",
        "upgrade",
        "writing",
        "ws",
    )

    def __init__(self, sock: socket.socket, ip: str, peer: str, http: h11.Connection,
                 deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.ip = ip
        self.peer = peer
        self.http: h11.Connection | None = http
        self.deadline = deadline
        self.received = 0
        self.line_done = False
        self.out = bytearray()
        self.close_after = False
        self.upgrade: tuple[Accepted, h11.Request] | None = None
        self.ws: WsEndpoint | None = None
        self.channel: SocketChannel | None = None
        self.paused = False
        self.lingering = False
        self.awaiting = False  # a route is computing this connection's answer
        self.body: bytearray | None = None  # an API request's body, while it arrives
        self.api: ApiRequest | None = None  # that request (its body still empty)
        self.method_path = ""
        self.finish_when_flushed = False
        self.reading = True
        self.writing = False
        self.mask = 0


class EdgeLoop:
    """See the module docstring. :meth:`listen` (optional), :meth:`start`, :meth:`stop`."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, _READ, None)
        self._lock = threading.Lock()
        self._requests: deque[tuple[str, Any]] = deque()
        self._woken = False
        self._timers: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._conns: dict[int, _Conn] = {}
        self._pending: dict[int, _Conn] = {}
        self._pending_by_ip: Counter[str] = Counter()
        self._by_channel: dict[int, _Conn] = {}
        self._bare: dict[int, tuple[int, SocketChannel]] = {}
        self._writing: dict[int, SocketChannel] = {}
        self._listener: socket.socket | None = None
        self._site: Site | None = None
        self._listening = False
        self._last_fd_log = -LOG_INTERVAL_S
        self._fd_misses = 0
        self._stopping = False
        self._next_sweep = 0.0
        #: Each upgraded connection's next keep-alive deadline (I/O thread only).
        self._pings: Deadlines[_Conn] = Deadlines()
        self._thread = threading.Thread(target=self._run, name="tickdesk-edge", daemon=True)
        self._routes = _RouteThread(lambda job, resp: self._post("route_done", (job, resp)))
        self._api: _RouteThread | None = None
        self.stats = EdgeStats()

    # -- setup (caller's thread, before start) ---------------------------------

    def listen(self, host: str, port: int, site: Site) -> int:
        """Bind the listener; returns the port (useful with port 0)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lst = socket.create_server((host, port), family=family, backlog=1024)
        lst.setblocking(False)
        self._listener = lst
        self._site = site
        if site.api is not None:
            self._api = _RouteThread(lambda job, resp: self._post("route_done", (job, resp)),
                                     name="tickdesk-api", threads=site.api.workers,
                                     max_jobs=site.api.max_waiting)
        self._sel.register(lst, _READ, "listener")
        self._listening = True
        bound = int(lst.getsockname()[1])
        site.hosts.port = bound
        return bound

    def start(self) -> None:
        self._thread.start()
        if self._site is not None:
            self._routes.start()
        if self._api is not None:
            self._api.start()

    def stop(self, timeout: float = 2.0) -> None:
        """End the loop and close every socket it still holds."""
        self._post("stop", None)
        self._routes.stop(timeout)
        if self._api is not None:
            self._api.stop(timeout)
        if self._thread.is_alive():
            self._thread.join(timeout)
        for conn in list(self._conns.values()):
            self._finish(conn)
        self._close_listener()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    @contextlib.contextmanager
    def held(self, max_s: float = HOLD_MAX_S) -> Iterator[bool]:
        """Keep the I/O thread still (no reads, no flushes, no timers) while the
        caller writes to many channels at once, e.g. every close frame at
        shutdown: otherwise the clients' answers, read and handled meanwhile
        (and the actor threads they wake), compete with that loop for the GIL.
        Bounded: the I/O thread waits at most ``max_s``, then carries on
        regardless. Yields whether the thread is held (False if it is not
        running or did not get there within ``max_s``)."""
        holding, release = threading.Event(), threading.Event()
        self._post("hold", (holding, release, max_s))
        try:
            yield (self._thread.is_alive() and threading.current_thread() is not self._thread
                   and holding.wait(max_s))
        finally:
            release.set()

    def stop_accepting(self) -> None:
        """Close the listener and every not-yet-upgraded connection (any thread)."""
        self._post("stop_accepting", None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def api_waiting(self) -> int:
        """API requests queued for the API workers (not yet running)."""
        return 0 if self._api is None else self._api.waiting

    def statistics(self) -> EdgeStatistics:
        """Any thread (sizes read without the loop's lock: a moment's view)."""
        st = self.stats
        return EdgeStatistics(len(self._conns), len(self._pending), len(self._writing),
                              st.evictions, st.handshake_timeouts, st.pending_refused,
                              st.bad_requests, st.misdirected, st.descriptor_limit,
                              st.pending_evicted)

    # -- any thread: the ChannelOwner protocol and flow control ---------------

    def want_write(self, ch: SocketChannel) -> None:
        self._post("write", ch)

    def shutdown_later(self, ch: SocketChannel, grace_s: float) -> None:
        if grace_s <= 0:
            self._post("shutdown", ch)
            return
        with self._lock:
            heapq.heappush(self._timers, (self._monotonic() + grace_s, next(self._seq),
                                          "shutdown", ch))
        self._wake()

    def release(self, ch: SocketChannel) -> None:
        self._post("release", ch)

    def resume(self, ch: SocketChannel) -> None:
        """The client's actor caught up: read its socket again."""
        self._post("resume", ch)

    def _post(self, op: str, arg: Any) -> None:
        with self._lock:
            running = self._thread.is_alive() and not self._stopping
            if running:
                self._requests.append((op, arg))
            if op == "stop":
                self._stopping = True
        if running:
            self._wake()
        elif isinstance(arg, SocketChannel):
            if op == "release":
                arg.close_socket()
            elif op == "shutdown":
                arg.shutdown_socket()

    def _wake(self) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the I/O thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    requests = list(self._requests)
                    self._requests.clear()
                stop = False
                for op, arg in requests:
                    if op == "stop":
                        stop = True
                    else:
                        self._guarded(self._handle, op, arg)
                if stop:
                    break
                timeout = self._fire_timers()
                now = self._monotonic()
                # Work per event, not per connection: the sweep runs only while
                # something waits for a deadline it checks (a request head, a
                # stalled write); keep-alive pings wake the loop when one is due.
                if self._pending or self._writing:
                    if now >= self._next_sweep:
                        self._sweep(now)
                        self._next_sweep = now + _SWEEP_S
                    timeout = min(timeout, self._next_sweep - now)
                self._keepalive(now)
                ping_at = self._pings.next_at()
                if ping_at is not None:
                    timeout = min(timeout, ping_at - now)
                timeout = max(0.0, timeout)
                for key, events in self._sel.select(timeout):
                    data = key.data
                    if data is None:
                        self._drain_wake()
                    elif data == "listener":
                        self._accept()
                    elif isinstance(data, _Conn):
                        # (identity, not the fd: a finished socket's number may be reused)
                        if events & _WRITE and self._conns.get(data.fd) is data:
                            self._guarded(self._on_writable, data)
                        if events & _READ and self._conns.get(data.fd) is data:
                            self._guarded(self._on_readable, data)
                    elif isinstance(data, SocketChannel):
                        self._flush_bare(data)
        except Exception:  # pragma: no cover - a bug; surface it loudly
            log.exception("I/O loop crashed")

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one step; a bug in it ends that connection (logged), never the loop."""
        try:
            fn(*args)
        except Exception:
            log.exception("I/O step %s failed", getattr(fn, "__name__", fn))
            for arg in args:
                conn = arg if isinstance(arg, _Conn) else (
                    self._by_channel.get(id(arg)) if isinstance(arg, SocketChannel) else None)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        self._finish(conn)

    def _handle(self, op: str, arg: Any) -> None:
        if op == "route_done":
            self._route_done(*arg)
            return
        if op == "hold":
            holding, release, max_s = arg
            holding.set()
            release.wait(max_s)
            return
        if op == "stop_accepting":
            self._close_listener()
            for pending in list(self._pending.values()):
                self._finish(pending)
            return
        ch: SocketChannel = arg
        conn = self._by_channel.get(id(ch))
        if op == "write":
            if conn is None:
                self._want_write_bare(ch)
            elif ch.flush():
                self._flushed(conn)
            else:
                self._writing[id(ch)] = ch
                conn.writing = True
                self._sync(conn)
        elif op == "shutdown":
            if conn is not None:
                self._finish(conn)
            else:
                ch.shutdown_socket()
        elif op == "release":
            if conn is not None:
                self._finish(conn)
            else:
                self._drop_bare(ch)
                ch.close_socket()
        elif op == "resume" and conn is not None and conn.paused:
            conn.paused = False
            self._ws_step(conn)

    def _drain_wake(self) -> None:
        with self._lock:
            self._woken = False
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _fire_timers(self) -> float:
        now = self._monotonic()
        due: list[tuple[str, Any]] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                _t, _s, op, arg = heapq.heappop(self._timers)
                due.append((op, arg))
            timeout = self._timers[0][0] - now if self._timers else 1.0
        for op, arg in due:
            if op == "listen":
                self._resume_accepting()
            else:
                self._handle(op, arg)
        return max(0.0, timeout)

    def _sweep(self, now: float) -> None:
        for conn in list(self._pending.values()):
            if now >= conn.deadline and conn.fd in self._conns and not conn.awaiting:
                if conn.lingering:
                    self._finish(conn)
                    continue
                self.stats.handshake_timeouts += 1
                if conn.received and not conn.out:
                    log.info("%s: request not complete within the handshake timeout (408)",
                             conn.peer)
                    self._send_raw(conn, 408, "request timeout")
                else:
                    self._finish(conn)
        for ch in list(self._writing.values()):
            if ch.stalled_for(now) > ch.write_timeout_s:
                self._writing.pop(id(ch), None)
                self.stats.evictions += 1
                ch.close(CloseCode.WRITE_TIMEOUT, "slow consumer: socket not writable",
                         drop_pending=True)

    def _keepalive(self, now: float) -> None:
        """The connections whose keep-alive deadline passed: ping them (or close
        1008 the ones that missed the last pong), then set their next deadline."""
        for conn in self._pings.pop_due(now, _PINGS_PER_PASS):
            if self._conns.get(conn.fd) is conn:
                self._guarded(self._ping, conn, now)

    def _ping(self, conn: _Conn, now: float) -> None:
        ws, ch = conn.ws, conn.channel
        if ws is None or ch is None:
            return
        ws.tick(now)  # a missed pong closes 1008; the close grace ends it
        nxt = ws.next_ping_at
        if nxt is not None and not ch.closed:
            self._pings.set(conn, nxt)

    # -- accepting --------------------------------------------------------------

    def _accept(self) -> None:
        lst, site = self._listener, self._site
        if lst is None or site is None:
            return
        limits = site.limits
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, addr = lst.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _NO_FD_ERRNOS:
                    self._out_of_descriptors(exc)
                else:
                    log.debug("accept failed: %s", exc)
                return
            ip = str(addr[0])
            if (self._pending_by_ip[ip] >= limits.max_pending_per_ip
                    or (len(self._pending) >= limits.max_pending and not self._evict_for(ip))):
                self.stats.pending_refused += 1
                with contextlib.suppress(OSError):
                    sock.close()
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            http = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
            peer = f"{ip}:{addr[1]}"
            conn = _Conn(sock, ip, peer, http, self._monotonic() + limits.handshake_timeout_s)
            self._conns[conn.fd] = conn
            self._pending[conn.fd] = conn
            self._pending_by_ip[ip] += 1
            self._sync(conn)

    def _evict_for(self, ip: str) -> bool:
        """The total pending cap is full: make room for a connection from ``ip`` by
        closing the oldest pending connection of the address that holds the most,
        if it holds more than ``ip`` does. False (refuse the new one) when ``ip``
        is itself among the busiest. So a few addresses filling the cap (a
        slowloris) cannot keep out an address that holds fewer; only an attacker
        with more addresses than the cap has slots could. O(pending), at the cap only."""
        top, most = self._pending_by_ip.most_common(1)[0]
        if most <= self._pending_by_ip.get(ip, 0):
            return False
        victim = next((c for c in self._pending.values()
                       if c.ip == top and not c.awaiting), None)
        if victim is None:  # all of them are being answered: let them finish
            return False
        self.stats.pending_evicted += 1
        self._finish(victim)
        return True

    def _out_of_descriptors(self, exc: OSError) -> None:
        self.stats.descriptor_limit += 1
        self._fd_misses += 1
        now = self._monotonic()
        if now - self._last_fd_log >= LOG_INTERVAL_S:
            log.warning("descriptor limit reached (%s; %d connections open): not accepting "
                        "for %.1f s (%d times since the last report)", exc.strerror,
                        len(self._conns), ACCEPT_BACKOFF_S, self._fd_misses)
            self._last_fd_log = now
            self._fd_misses = 0
        if self._listener is not None and self._listening:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(self._listener)
            self._listening = False
            with self._lock:
                heapq.heappush(self._timers, (now + ACCEPT_BACKOFF_S, next(self._seq),
                                              "listen", None))

    def _resume_accepting(self) -> None:
        if self._listener is not None and not self._listening:
            self._sel.register(self._listener, _READ, "listener")
            self._listening = True

    def _close_listener(self) -> None:
        lst = self._listener
        self._listener = None
        if lst is not None:
            if self._listening:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._sel.unregister(lst)
            self._listening = False
            lst.close()

    # -- reading and writing ------------------------------------------------------

    def _sync(self, conn: _Conn) -> None:
        """Make the selector's interest match what the connection waits for."""
        mask = (_READ if conn.reading and not conn.paused else 0) | (_WRITE if conn.writing else 0)
        if mask == conn.mask:
            return
        try:
            if conn.mask == 0:
                self._sel.register(conn.fd, mask, conn)
            elif mask == 0:
                self._sel.unregister(conn.fd)
            else:
                self._sel.modify(conn.fd, mask, conn)
        except (KeyError, ValueError, OSError):
            self._finish(conn)
            return
        conn.mask = mask

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._finish(conn)
            return
        if not data:
            self._finish(conn)
            return
        if conn.lingering:
            return  # discarded: we answered and are closing
        if conn.ws is not None:
            conn.ws.receive(data)
            self._ws_step(conn)
        else:
            self._http_data(conn, data)

    def _on_writable(self, conn: _Conn) -> None:
        ch = conn.channel
        if ch is None:
            self._flush_http(conn)
            if not conn.out and conn.fd in self._conns:
                self._http_events(conn)
        elif ch.flush():
            self._flushed(conn)

    def _flushed(self, conn: _Conn) -> None:
        if conn.channel is not None:
            self._writing.pop(id(conn.channel), None)
        conn.writing = False
        if conn.finish_when_flushed:
            self._finish(conn)
        else:
            self._sync(conn)

    def _ws_step(self, conn: _Conn) -> None:
        ws = conn.ws
        if ws is None:
            return
        step = ws.process()
        if step is Step.PAUSE:
            conn.paused = True
        elif step is Step.FINISH:
            conn.reading = False
            conn.finish_when_flushed = True
            ch = conn.channel
            if ch is not None and ch.flush():
                self._finish(conn)
                return
        self._sync(conn)

    def _finish(self, conn: _Conn) -> None:
        """Forget the connection and close its socket (the one place that does)."""
        if self._conns.pop(conn.fd, None) is None:
            return
        self._pings.cancel(conn)
        if conn.mask:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(conn.fd)
            conn.mask = 0
        self._unpend(conn)
        ch = conn.channel
        if ch is None and conn.upgrade is not None:
            ch = conn.upgrade[0].channel  # accepted, never upgraded: release it too
        if ch is not None:
            self._by_channel.pop(id(ch), None)
            self._writing.pop(id(ch), None)
            ch.transport_closed()
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _unpend(self, conn: _Conn) -> None:
        if self._pending.pop(conn.fd, None) is not None:
            self._pending_by_ip[conn.ip] -= 1
            if self._pending_by_ip[conn.ip] <= 0:
                del self._pending_by_ip[conn.ip]

    # -- channels that are not connections of this loop (tests, benchmarks) ----

    def _want_write_bare(self, ch: SocketChannel) -> None:
        if ch.flush():
            return
        fd = ch.sock.fileno()
        if fd < 0 or id(ch) in self._bare:
            return
        try:
            self._sel.register(fd, _WRITE, ch)
        except (KeyError, ValueError, OSError):
            ch.shutdown_socket()
            return
        self._bare[id(ch)] = (fd, ch)
        self._writing[id(ch)] = ch

    def _flush_bare(self, ch: SocketChannel) -> None:
        if ch.flush():
            self._drop_bare(ch)

    def _drop_bare(self, ch: SocketChannel) -> None:
        entry = self._bare.pop(id(ch), None)
        self._writing.pop(id(ch), None)
        if entry is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(entry[0])

    # -- HTTP -----------------------------------------------------------------------

    def _http_data(self, conn: _Conn, data: bytes) -> None:
        http = conn.http
        if http is None:
            return
        conn.received += len(data)
        if not conn.line_done and b"\n" in data:
            conn.line_done = True
        http.receive_data(data)
        self._http_events(conn)

    def _http_events(self, conn: _Conn) -> None:
        site = self._site
        while (site is not None and conn.http is not None and conn.fd in self._conns
               and not conn.out and not conn.close_after and not conn.awaiting):
            http = conn.http
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if status == 431 and not conn.line_done:
                    status = 414
                self.stats.bad_requests += 1
                log.info("%s: bad request (%d): %s", conn.peer, status, exc)
                self._send_raw(conn, status, reason_phrase(status).lower())
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if conn.upgrade is not None:
                    self._upgrade(conn, site)
                else:  # pragma: no cover - h11 pauses only on a proposed upgrade
                    self._send_raw(conn, 400, "bad request")
                return
            if isinstance(event, h11.Request):
                self._request(conn, event, site)
            elif isinstance(event, h11.EndOfMessage):
                if conn.api is not None:
                    self._api_submit(conn)
                elif conn.upgrade is None:
                    self._next_cycle(conn, site)
            elif isinstance(event, h11.ConnectionClosed):
                self._finish(conn)
                return
            elif isinstance(event, h11.Data) and conn.body is not None and site.api is not None:
                conn.body += event.data
                if len(conn.body) > site.api.max_body_bytes:
                    self._too_large(conn, site.api)
                    return
            # other h11.Data: the body of a request we answered already (and close after).

    def _next_cycle(self, conn: _Conn, site: Site) -> None:
        """Both sides are done with a request: ready the connection for the next one."""
        http = conn.http
        if http is None or http.our_state is not h11.DONE or http.their_state is not h11.DONE:
            return
        http.start_next_cycle()
        trailing = http.trailing_data[0]
        conn.received = len(trailing)
        conn.line_done = b"\n" in trailing
        conn.deadline = self._monotonic() + site.limits.handshake_timeout_s

    def _too_large(self, conn: _Conn, api: ApiSite) -> None:
        self.stats.bad_requests += 1
        log.info("%s: request body over %d bytes refused (413)", conn.peer, api.max_body_bytes)
        conn.api = None
        conn.body = None
        self._respond(conn, _text(413, "request body too large"), close=True)

    def _api_request(self, conn: _Conn, method: str, path: str, query: str,
                     headers: Mapping[str, str], api: ApiSite) -> None:
        """An API request's head: refuse a declared body over the cap at once,
        else collect the body (:meth:`_http_events`) and submit at its end."""
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > api.max_body_bytes:
            self._too_large(conn, api)
            return
        conn.api = ApiRequest(method, path, query, b"", headers, conn.peer)
        conn.body = bytearray()

    def _api_submit(self, conn: _Conn) -> None:
        req, body = conn.api, conn.body
        conn.api = None
        conn.body = None
        workers, site = self._api, self._site
        if req is None or body is None or workers is None or site is None or site.api is None:
            return
        api = site.api
        full = ApiRequest(req.method, req.path, req.query, bytes(body), req.headers, req.peer)
        head = req.method == "HEAD"
        conn.awaiting = True
        conn.reading = False
        self._sync(conn)
        job = _RouteJob(conn, lambda _h, _q: api.handler(full), req.path, req.headers, {},
                        head, False)
        if not workers.submit(job):
            conn.awaiting = False
            self._respond(conn, api.busy, head=head, close=True)

    def _request(self, conn: _Conn, req: h11.Request, site: Site) -> None:
        headers: dict[str, str] = {}
        for name, value in req.headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        if len(req.target) > min(_MAX_TARGET, site.limits.max_header_bytes):
            self.stats.bad_requests += 1
            log.info("%s: request target of %d bytes refused (414)", conn.peer, len(req.target))
            self._send_raw(conn, 414, "request target too long")
            return
        # h11 caps a head that arrives in pieces; one that came whole is measured here.
        head_bytes = (len(req.method) + len(req.target) + 12
                      + sum(len(n) + len(v) + 4 for n, v in req.headers))
        if head_bytes > site.limits.max_header_bytes:
            self.stats.bad_requests += 1
            log.info("%s: bad request (431): request head of %d bytes", conn.peer, head_bytes)
            self._send_raw(conn, 431, "request header fields too large")
            return
        if not site.hosts.host_allowed(headers.get("host")):
            self.stats.misdirected += 1
            log.debug("%s: Host %r is not one of ours (421)", conn.peer, headers.get("host"))
            self._respond(conn, _text(421, "unknown host"), close=True)
            return
        target = req.target.decode("latin-1")
        parts = urlsplit(target)
        path = parts.path
        # For the access log: never a query string (it may carry ?token=...).
        conn.method_path = f"{req.method.decode('latin-1')} {path}"
        has_body = ("transfer-encoding" in headers
                    or headers.get("content-length", "0").strip() not in ("", "0"))
        method = req.method
        api = site.api
        if (api is not None and path.startswith(api.prefix)
                and method in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE")):
            self._api_request(conn, method.decode("latin-1"), path, parts.query, headers, api)
            return
        if method == b"OPTIONS":
            known = target == "*" or path in site.routes or site.upgrades(path)
            resp = (HttpResponse(204, "text/plain", b"", (("Allow", _ALLOW),)) if known
                    else _text(404, "not found"))
            self._respond(conn, resp, close=has_body)
            return
        if method not in (b"GET", b"HEAD"):
            self._respond(conn, HttpResponse(405, "text/plain", b"method not allowed\n",
                                             (("Allow", _ALLOW),)), close=True)
            return
        head = method == b"HEAD"
        query = parse_qs(parts.query, keep_blank_values=True)
        if site.upgrades(path):
            if head or headers.get("upgrade", "").lower() != "websocket":
                self._respond(conn, HttpResponse(426, "text/plain", b"WebSocket upgrade required\n",
                                                 (("Upgrade", "websocket"),)),
                              head=head, close=has_body)
                return
            if has_body:
                self._respond(conn, _text(400, "an upgrade request has no body"), close=True)
                return
            upgrade = UpgradeRequest(path, query, headers, conn.peer)
            try:
                accepted = site.on_upgrade(conn.sock, upgrade)
            except Refusal as refusal:
                self._respond(conn, _text(refusal.status, refusal.message), close=True)
                return
            except Exception:
                log.exception("WebSocket upgrade failed")
                self._respond(conn, _text(500, "internal error"), close=True)
                return
            conn.upgrade = (accepted, req)
            return
        route = site.routes.get(path)
        if route is None:
            self._respond(conn, _text(404, "not found"), head=head, close=has_body)
            return
        # Routes run on the route thread: a slow /metrics (it asks actors) must
        # not stall every socket. This connection waits, unread, meanwhile.
        conn.awaiting = True
        conn.reading = False
        self._sync(conn)
        if not self._routes.submit(_RouteJob(conn, route, path, headers, query, head, has_body)):
            conn.awaiting = False
            self._respond(conn, _text(503, "busy"), head=head, close=True)

    def _route_done(self, job: _RouteJob, resp: HttpResponse) -> None:
        conn = job.conn
        if self._conns.get(conn.fd) is not conn or not conn.awaiting:
            return  # it went away meanwhile
        conn.awaiting = False
        conn.reading = True
        self._respond(conn, resp, head=job.head, close=job.close)
        site = self._site
        if site is not None and conn.fd in self._conns and not conn.close_after:
            self._next_cycle(conn, site)  # an API request's end was read before it ran
        if conn.fd in self._conns and not conn.out and not conn.close_after:
            self._http_events(conn)
        if conn.fd in self._conns and conn.http is not None:
            self._sync(conn)  # reading again (it was off while the route ran)

    def _upgrade(self, conn: _Conn, site: Site) -> None:
        assert conn.upgrade is not None and conn.http is not None
        accepted, req = conn.upgrade
        trailing = bytes(conn.http.trailing_data[0])
        lines = [b"GET " + req.target + b" HTTP/1.1"]
        lines += [name + b": " + value for name, value in req.headers]
        request = b"\r\n".join(lines) + b"\r\n\r\n"
        limits = site.limits
        ch = accepted.channel
        control = RateLimiter(limits.control_rate_per_s, limits.control_burst)
        ws = WsEndpoint(ch, accepted.on_message, max_message_size=limits.max_message_bytes,
                        control=control, monotonic=self._monotonic,
                        ping_interval_s=limits.ping_interval_s)
        self._unpend(conn)
        conn.http = None
        conn.upgrade = None
        conn.ws = ws
        conn.channel = ch
        self._by_channel[id(ch)] = conn
        if not ws.handshake(request, trailing):
            self.stats.bad_requests += 1
            log.info("%s: WebSocket handshake refused by wsproto (400)", conn.peer)
            ch.write_control(raw_response(400, "bad WebSocket handshake"))
            ch.close(CloseReason.PROTOCOL_ERROR, "", frame=b"")
            conn.reading = False
            conn.finish_when_flushed = True
            if ch.flush():
                self._finish(conn)
            return
        access_log.debug("%s %s 101", conn.peer, conn.method_path)
        ping_at = ws.next_ping_at
        if ping_at is not None:
            self._pings.set(conn, ping_at)
        try:
            accepted.start()
        except Exception:
            log.exception("starting the session of %s failed", conn.peer)
            ch.close(1011, "internal error")
        self._ws_step(conn)

    def _respond(self, conn: _Conn, resp: HttpResponse, *, head: bool = False,
                 close: bool = False) -> None:
        http = conn.http
        if http is None:
            return
        close = close or resp.status >= 400
        headers = [("Content-Type", resp.content_type),
                   ("Content-Length", str(len(resp.body))),
                   ("Cache-Control", "no-store"), *resp.headers]
        if resp.status == 204:
            headers = [h for h in headers if h[0] not in ("Content-Type", "Content-Length")]
        if close:
            headers.append(("Connection", "close"))
        try:
            data = http.send(h11.Response(status_code=resp.status, headers=headers,
                                          reason=reason_phrase(resp.status).encode()))
            if resp.body and not head and resp.status != 204:
                data = (data or b"") + (http.send(h11.Data(data=resp.body)) or b"")
            data = (data or b"") + (http.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            data = raw_response(resp.status, resp.body.decode("utf-8", "replace").strip())
            close = True
        if http.our_state is h11.MUST_CLOSE:
            close = True
        access_log.debug("%s %s %d", conn.peer, conn.method_path, resp.status)
        conn.out += data
        conn.close_after = close
        self._flush_http(conn)

    def _linger(self, conn: _Conn) -> None:
        """Our answer is written: end our side, then drain what the client still
        sends (closing with unread bytes would reset the connection and could
        destroy the answer) until it closes or :data:`_LINGER_S` passed."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._finish(conn)
            return
        conn.lingering = True
        conn.http = None
        conn.deadline = self._monotonic() + _LINGER_S
        conn.writing = False
        conn.reading = True
        self._sync(conn)

    def _send_raw(self, conn: _Conn, status: int, message: str) -> None:
        conn.out += raw_response(status, message)
        conn.close_after = True
        self._flush_http(conn)

    def _flush_http(self, conn: _Conn) -> None:
        if conn.out:
            try:
                n = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._finish(conn)
                return
            del conn.out[:n]
        if conn.out:
            conn.reading = False  # one response at a time: read on once it is written
            conn.writing = True
            self._sync(conn)
            return
        if conn.close_after:
            self._linger(conn)
            return
        if conn.writing or not conn.reading:
            conn.writing = False
            conn.reading = True
            self._sync(conn)


@dataclass(frozen=True, slots=True)
class _RouteJob:
    conn: _Conn
    route: Route
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, list[str]]
    head: bool
    close: bool


class _RouteThread:
    """Threads that compute routes' responses (``tickdesk-routes``: one; the
    API's ``tickdesk-api``: ``threads``).

    Bounded: at most ``max_jobs`` (default :data:`_MAX_ROUTE_JOBS`) waiting;
    :meth:`submit` returns False beyond (the request is answered 503, or the
    API's ``busy``). Each answer goes back to the I/O thread through ``done``."""

    def __init__(self, done: Callable[[_RouteJob, HttpResponse], None], *,
                 name: str = "tickdesk-routes", threads: int = 1,
                 max_jobs: int = _MAX_ROUTE_JOBS) -> None:
        self._done = done
        self._max = max_jobs
        self._jobs: deque[_RouteJob | None] = deque()
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._run, daemon=True,
                                          name=name if threads == 1 else f"{name}-{i}")
                         for i in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        with self._cond:
            for _ in self._threads:
                self._jobs.appendleft(None)
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._jobs)

    def submit(self, job: _RouteJob) -> bool:
        with self._cond:
            if len(self._jobs) >= self._max or not self._threads[0].is_alive():
                return False
            self._jobs.append(job)
            self._cond.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                job = self._jobs.popleft()
            if job is None:
                return
            try:
                resp = job.route(job.headers, job.query)
            except Exception:
                log.exception("route %s failed", job.path)
                resp = _text(500, "internal error")
            self._done(job, resp)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, "text/plain", message.encode() + b"\n")
