"""The Binance source: one combined-stream WebSocket connection in its own thread.

Edge module. :class:`BinanceSource` runs websocket-client's ``WebSocketApp``
in a reader thread (``feed-binance``) on ONE connection to
``<feed.binance.url>/stream?streams=<sym>@aggTrade/<sym>@ticker/...`` (lower
case, built by :func:`~engine.market.binance_codec.combined_url`), and a
watchdog thread (``feed-binance-watch``). Callbacks of the ``WebSocketApp``
run in the reader thread; they decode every text frame with
:func:`~engine.market.binance_codec.decode_frame` (counted in
:class:`~engine.feeds.base.FeedShared`, so dropped frames are visible) and
hand trades and tickers to the sink, one small batch per frame.

Transport settings:

* ``skip_utf8_validation=True``: websocket-client's pure-Python UTF-8 check
  costs ~24 µs a frame; orjson validates the text anyway.
* TLS is verified: no ``sslopt`` is passed, so websocket-client requires a
  valid certificate and checks the host name (never ``CERT_NONE``).
* Protocol pings from Binance are answered by websocket-client; we also ping
  every ``ping_interval_s`` and give up after ``ping_timeout_s`` without pong.
* websocket-client's own ``reconnect=`` is **not** used: a connection lives
  exactly as long as this source. Reconnecting is the Supervisor's job.

Connecting: the TCP socket (and TLS) is opened by
:func:`~engine.feeds.ws_transport.open_socket` and handed to the
``WebSocketApp``; connect, TLS and the WebSocket handshake together are
bounded by ``feed.binance.connect_timeout_s`` (socket timeout, and the
watchdog shuts the socket down at the deadline). Once open, frames longer
than ``feed.binance.max_frame_bytes`` are refused before their payload is
read (:class:`~engine.feeds.ws_transport.BoundedFrames`). The source reports
``up`` only with its **first data frame** (a trade or ticker), not at the
handshake: an upstream that opens and closes at once never counts as up.

Failures (each ends the connection and calls ``sink.failed(reason)`` once,
after ``run_forever`` has returned, and is logged): a refused or failed
handshake (``connect failed: <error type>``), no handshake within
``connect_timeout_s`` (``connect timeout``), a close or error from the
upstream (``upstream closed (<code>)`` / ``upstream error: <type>``), a frame
over the limit (``frame too large: <n> bytes (max <m>)``), a *data stall* (no
frame for ``feed.binance.stall_timeout_s``, pings notwithstanding: the
watchdog aborts the socket), and Binance's ``serverShutdown`` event
(``server shutdown``). A source that was stopped reports nothing.

Limits: before connecting, the source takes a slot of the 300-attempts-per-
5-minutes window kept in :class:`FeedShared` (it waits, stoppably, if the
window is full). Live control messages (``subscribe``) are queued and sent
by the watchdog at most 5 per second (sliding window). (Aggregate-trade id
gaps are counted by the FeedActor, on the trades it trusts: a poison id must
not count as billions of missed trades.)

Bound: at most ``max_in_flight`` batches wait for the FeedActor; beyond
that the reader blocks, which shows as a stall if it lasts.

Rotation: Binance closes a connection after 24 h. ``rotate_after_s`` after
the open (default 23 h 50 min), the watchdog calls ``on_rotate`` once; the
FeedActor then opens a second source and retires this one when the new one
is up (connect-new-first; see :mod:`actors.feed`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import websocket

from engine.clock import Clock
from engine.config import BinanceConfig
from engine.feeds.base import FeedShared, FeedSink
from engine.feeds.ws_transport import FrameTooLarge, install_frame_limit, open_socket
from engine.market.binance_codec import (
    ControlError,
    ControlReply,
    ServerShutdown,
    combined_url,
    decode_frame,
    stream_names,
    subscribe_request,
    unsubscribe_request,
)
from engine.market.upstream_limits import control_message_limiter, next_rotation
from engine.messages import Ticker24h, Trade

__all__ = ["BinanceSource", "ControlHandler", "ControlSent", "streams_for"]

log = logging.getLogger("tickdesk.feed.binance")


@dataclass(frozen=True, slots=True)
class ControlSent:
    """A queued control request has been sent (it may wait for the rate limit)."""

    id: int


#: ``handler(event)`` for live control requests: sent (watchdog thread), answered
#: (reader thread).
ControlHandler = Callable[[ControlSent | ControlReply | ControlError], None]


def streams_for(symbols: Iterable[str]) -> list[str]:
    """``<sym>@aggTrade`` and ``<sym>@ticker`` of every symbol, in order."""
    return [s for sym in symbols for s in stream_names(sym)]


class BinanceSource:
    """One Binance combined-stream connection (see the module docstring)."""

    def __init__(
        self,
        cfg: BinanceConfig,
        symbols: Iterable[str],
        sink: FeedSink,
        clock: Clock,
        shared: FeedShared,
        *,
        ping_interval_s: float = 20.0,
        ping_timeout_s: float = 10.0,
        close_timeout_s: float = 0.5,
        max_in_flight: int = 1024,
        rotate_after_s: float | None = None,
        on_rotate: Callable[[], None] | None = None,
        on_control: ControlHandler | None = None,
    ) -> None:
        self._symbols = frozenset(s.upper() for s in symbols)
        self.url = combined_url(cfg.url, streams_for(sorted(self._symbols)))
        self._stall_s = cfg.stall_timeout_s
        self._connect_s = cfg.connect_timeout_s
        self._max_frame = cfg.max_frame_bytes
        self._base_url = cfg.url
        self._sink = sink
        self._clock = clock
        self._shared = shared
        self._ping_interval = ping_interval_s
        self._ping_timeout = ping_timeout_s
        self._close_timeout = close_timeout_s
        self._slots = threading.Semaphore(max_in_flight)
        self._rotate_after = rotate_after_s if rotate_after_s is not None else next_rotation(0.0)
        self._on_rotate = on_rotate
        self._on_control = on_control
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._app: websocket.WebSocketApp | None = None
        self._reason: str | None = None
        self._opened_at: float | None = None
        self._connect_deadline: float | None = None
        self._raw: socket.socket | None = None  # until the handshake is done
        self._up_sent = False
        self._last_frame = clock.monotonic()
        self._rotation_signalled = False
        self._halted_at = 0.0
        self._controls: deque[tuple[int, str]] = deque(maxlen=1024)
        self._control_limiter = control_message_limiter()
        self._next_id = 1
        self._reader: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self.done = threading.Event()
        """Set when the reader thread has finished."""

    # -- owner's API (FeedActor thread) ------------------------------------------

    def start(self) -> None:
        self._reader = threading.Thread(target=self._run, name="feed-binance", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="feed-binance-watch",
                                          daemon=True)
        self._reader.start()
        self._watchdog.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Close politely (close frame, up to ``close_timeout_s`` for the reply), then
        cut the socket; join both threads (each bounded by ``timeout``)."""
        with self._lock:
            if not self._halt.is_set():
                self._halted_at = self._clock.monotonic()
                self._halt.set()
            app = self._app
        if app is not None:
            app.keep_running = False
            sock = app.sock
            if sock is not None and sock.connected:
                with contextlib.suppress(Exception):
                    sock.send_close()
            # app.close() would close the fd under the reader's select(), which
            # does not wake it: let the reader see the close reply, or cut.
            if not self.done.wait(self._close_timeout):
                self._abort(app)
        else:
            self._cut_raw()  # connecting: wake a handshake that waits
        for t in (self._reader, self._watchdog):
            if t is not None and t is not threading.current_thread():
                t.join(timeout)

    def subscribe(self, symbols: Iterable[str]) -> int:
        """Queue a live SUBSCRIBE of the symbols' streams; returns its request id."""
        return self._queue_control(subscribe_request, symbols)

    def unsubscribe(self, symbols: Iterable[str]) -> int:
        """Queue a live UNSUBSCRIBE of the symbols' streams; returns its request id."""
        return self._queue_control(unsubscribe_request, symbols)

    def _queue_control(self, build: Callable[[int, list[str]], str],
                       symbols: Iterable[str]) -> int:
        with self._lock:
            rid = self._next_id
            self._next_id += 1
            self._controls.append((rid, build(rid, streams_for(symbols))))
        return rid

    # -- reader thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            if not self._await_attempt_slot():
                return
            log.info("connecting to %s", self.url)
            with self._lock:
                self._connect_deadline = self._clock.monotonic() + self._connect_s
            sock = self._connect()
            if sock is None:
                return
            app = websocket.WebSocketApp(
                self.url,
                on_open=self._on_open,
                on_message=self._on_message,
                on_error=self._on_error,
                on_close=self._on_close,
                socket=sock,
            )
            with self._lock:
                if self._halt.is_set():
                    sock.close()
                    return
                self._app = app
                self._last_frame = self._clock.monotonic()
            try:
                app.run_forever(
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_timeout,
                    skip_utf8_validation=True,
                )
            except Exception as exc:  # run_forever reports most errors via on_error
                self._set_reason(f"upstream error: {type(exc).__name__}")
            if not self._halt.is_set():
                reason = self._reason or "upstream closed"
                log.warning("binance feed lost: %s", reason)
                self._sink.failed(reason)
        finally:
            self.done.set()

    def _connect(self) -> socket.socket | None:
        """The TCP (+TLS) socket, bounded by ``connect_timeout_s``; None (failure
        reported, unless stopped) if it could not be opened."""
        try:
            sock = open_socket(self._base_url, self._connect_s)
        except TimeoutError:
            reason = f"connect timeout (no connection within {self._connect_s:g}s)"
        except Exception as exc:
            reason = f"connect failed: {type(exc).__name__}"
        else:
            with self._lock:
                self._raw = sock
            return sock
        if not self._halt.is_set():
            log.warning("binance feed lost: %s", reason)
            self._sink.failed(reason)
        return None

    def _await_attempt_slot(self) -> bool:
        """Take a connection-attempt slot (300 per 5 min); False if stopped meanwhile."""
        while not self._halt.is_set():
            wait = self._shared.attempt_delay(self._clock.monotonic())
            if wait <= 0:
                return True
            log.warning("connection-attempt window full; next attempt in %.1fs", wait)
            self._halt.wait(min(wait, 1.0))
        return False

    def _set_reason(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason

    def _on_open(self, app: websocket.WebSocketApp) -> None:
        if self._halt.is_set():
            app.keep_running = False
            return
        now = self._clock.monotonic()
        sock = app.sock
        if sock is not None:
            # From here on the stall watchdog bounds reads and sends (it shuts the
            # socket down); a socket timeout would make websocket-client report a
            # slow frame as a lost connection.
            sock.settimeout(None)
            install_frame_limit(sock, self._max_frame, self._frame_too_large)
        with self._lock:
            self._opened_at = now
            self._last_frame = now
            self._raw = None
        self._shared.note_open()
        log.info("binance handshake done (%d symbols); up at the first data frame",
                 len(self._symbols))

    def _frame_too_large(self, exc: FrameTooLarge) -> None:
        self._set_reason(str(exc))

    def _first_data(self) -> None:
        if not self._up_sent:
            self._up_sent = True
            log.info("binance feed up: first data frame received")
            self._sink.up()

    def _on_message(self, app: websocket.WebSocketApp, text: Any) -> None:
        try:
            self._last_frame = self._clock.monotonic()
            decoded = self._shared.record(decode_frame(text))
            if isinstance(decoded, Trade | Ticker24h):
                self._first_data()
                self._deliver(decoded)
            elif isinstance(decoded, ServerShutdown):
                self._set_reason("server shutdown")
                self._abort(app)
            elif isinstance(decoded, ControlReply | ControlError):
                if isinstance(decoded, ControlError):
                    log.warning("binance control error %s: %s", decoded.code, decoded.msg)
                if self._on_control is not None:
                    self._on_control(decoded)
        except Exception:  # never let a callback error pass silently
            log.exception("binance feed: handling a frame failed")

    def _deliver(self, item: Trade | Ticker24h) -> None:
        while not self._slots.acquire(timeout=0.1):
            if self._halt.is_set():
                return
        self._sink.deliver((item,), self._clock_ms(), self._slots.release)

    def _clock_ms(self) -> int:
        return self._clock.now_ms()

    def _on_error(self, _app: websocket.WebSocketApp, exc: Any) -> None:
        if self._opened_at is None:
            if isinstance(exc, TimeoutError | websocket.WebSocketTimeoutException):
                self._set_reason(f"connect timeout (no handshake within {self._connect_s:g}s)")
            self._set_reason(f"connect failed: {type(exc).__name__}")
        else:
            code = getattr(exc, "status_code", None)  # a close frame, as websocket-client
            if isinstance(exc, websocket.WebSocketConnectionClosedException) and code:
                self._set_reason(f"upstream closed ({code})")  # reports it (1.9)
            self._set_reason(f"upstream error: {type(exc).__name__}")

    def _on_close(self, _app: websocket.WebSocketApp, code: Any, _msg: Any) -> None:
        self._set_reason(f"upstream closed ({code})" if code else "upstream closed")

    # -- watchdog thread ------------------------------------------------------------

    def _watch(self) -> None:
        period = max(0.02, min(0.2, self._stall_s / 5))
        while not self.done.wait(period):
            app = self._app
            if self._halt.is_set():
                # stop() cuts the socket itself; this catches a run_forever that
                # started after stop() looked (keep_running is reset by it).
                if self._clock.monotonic() - self._halted_at > self._close_timeout:
                    self._abort(app)
                continue
            now = self._clock.monotonic()
            if self._opened_at is None:
                deadline = self._connect_deadline
                if deadline is not None and now > deadline:
                    # abort() does nothing before the handshake: cut the socket itself.
                    self._set_reason(
                        f"connect timeout (no handshake within {self._connect_s:g}s)")
                    self._cut_raw()
                continue
            if app is None:
                continue
            idle = now - self._last_frame
            if idle > self._stall_s:
                self._set_reason(f"data stall: no data for {idle:.1f}s")
                self._abort(app)
                continue
            if self._opened_at is not None:
                self._send_controls(app, now)
                if (not self._rotation_signalled and self._on_rotate is not None
                        and now - self._opened_at >= self._rotate_after):
                    self._rotation_signalled = True
                    log.info("binance connection is %.0fs old: rotating", now - self._opened_at)
                    self._on_rotate()

    def _cut_raw(self) -> None:
        """Shut the not-yet-open socket down: wakes a reader blocked in the handshake."""
        with self._lock:
            raw = self._raw
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)

    def _abort(self, app: websocket.WebSocketApp | None) -> None:
        self._cut_raw()
        if app is None:
            return
        app.keep_running = False
        sock = app.sock
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.abort()  # type: ignore[no-untyped-call]

    def _send_controls(self, app: websocket.WebSocketApp, now: float) -> None:
        while True:
            with self._lock:
                if not self._controls or not self._control_limiter.try_acquire(now):
                    return
                rid, text = self._controls.popleft()
            try:
                app.send(text)
            except Exception as exc:
                log.warning("binance feed: sending a control message failed: %r", exc)
                return
            if self._on_control is not None:
                self._on_control(ControlSent(rid))
