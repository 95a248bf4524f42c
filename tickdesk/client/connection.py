"""``TickdeskClient``: a thread-safe, reconnecting client of the tickdesk protocol.

Edge module, built on websocket-client's low-level ``WebSocket`` (not
``WebSocketApp``, whose close/reader races are documented upstream), so that
the threading is ours and simple:

* **One reader thread** per client owns the connection's life: it reads
  frames, dispatches messages, runs the staleness watchdog and, after a drop,
  reconnects. No other thread ever reads from or closes the socket.
* **Sends** come from any thread, serialized by one lock. ``close()`` only
  sends a close frame and, if the peer does not answer in time, shuts the
  socket down (which wakes the reader); then it joins the reader within a bound.
* **Requests** carry a generated ``id`` (``c1``, ``c2``...). A table of pending
  requests (guarded by the client's lock) maps each id to a waiter; the reader
  completes it when the direct reply arrives. An ``ERROR`` reply raises
  :class:`~tickdesk.client.errors.CommandError` in the caller.
* **Delivery**: every server message goes, in arrival order, to the
  ``on_message`` callback (called on the reader thread, or during the first
  ``connect()`` on its caller's thread: keep it quick, and do not call
  blocking client methods from it) and to a bounded buffer read by
  :meth:`TickdeskClient.messages` / :meth:`TickdeskClient.get` (overflow
  policy in :mod:`tickdesk.client.inbox`). Direct replies are delivered too, and
  carry their ``id``. Only the replies to the client's own keep-alive pings are
  swallowed.
* **Reconnect**: after a drop (error, close by the server, staleness) the
  reader waits with exponential backoff (0.5 s doubling to 30 s, ±20 % jitter;
  :class:`engine.backoff.Backoff`) and retries for as long as the client is not
  closed. Each new connection re-authenticates (``auth``) and resumes where
  the last one stopped (``resume {epoch, seq, session}``): the server restores
  the previous connection's market subscriptions (SUBSCRIBED and a snapshot
  each) and sends the missed ORDER_UPDATE / ORDER_LIST_UPDATE in order, then
  ``RESUMED``; :attr:`TickdeskClient.resumed` says whether the events all
  could be, :attr:`TickdeskClient.restored` whether the subscriptions were.
  The client subscribes itself only to the symbols the server did not
  restore (all of them when the session was not restored, e.g. expired) and
  unsubscribes any it restored that the client no longer wants, before
  requests flow again. Without an account, only the session is resumed
  (market data). An account event whose ``seq`` the
  client already delivered is dropped, so none is delivered twice. Requests
  that were waiting when the connection dropped fail with
  :class:`~tickdesk.client.errors.ConnectionLost` (never resent: an order must
  not be placed twice); new requests wait for the connection to come back,
  within their timeout.
* **Staleness watchdog**: with no frame for ``stale_after_s / 2`` the client
  sends a ``ping``; with no frame at all for ``stale_after_s`` it drops the
  connection and reconnects (protocol pings alone cannot see a hung server).

Every loop is bounded: reads poll with ``select`` so that closing and the
watchdog are checked at least every ``poll_s``; waits have deadlines.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import select
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, cast

import orjson
import websocket

from engine.backoff import Backoff, BackoffPolicy
from engine.errors import TickdeskError
from tickdesk.client.errors import (
    ClientClosed,
    CommandError,
    ConnectError,
    ConnectionLost,
    RequestTimeout,
)
from tickdesk.client.inbox import Inbox
from tickdesk.client.types import (
    EquitySample,
    Fill,
    Klines,
    ListResult,
    Order,
    OrderResult,
    Portfolio,
    Position,
    State,
)

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_URL", "TickdeskClient"]

log = logging.getLogger("tickdesk.client")

Message = dict[str, Any]
MessageCallback = Callable[[Message], None]

DEFAULT_URL = "ws://127.0.0.1:8000/api/ws/realtime"

#: Reconnect delays: 0.5 s doubling to 30 s, ±20 % jitter; reset after a
#: connection stayed up 10 s. Escalation is effectively off (a client never
#: gives up, and 30 s is already the cap).
DEFAULT_BACKOFF = BackoffPolicy(min_s=0.5, max_s=30.0, factor=2.0, jitter=0.2,
                                reset_after_s=10.0, max_restarts=1000,
                                restart_window_s=60.0)

_ids = itertools.count(1)


class _Handshake(TickdeskError):
    """A new connection failed before it was open (internal)."""


class _Pending:
    """One request waiting for its direct reply."""

    __slots__ = ("complete", "done", "error", "messages")

    def __init__(self, complete: Callable[[list[Message]], bool]) -> None:
        self.complete = complete
        self.done = threading.Event()
        self.messages: list[Message] = []
        self.error: Exception | None = None


def _first(messages: list[Message]) -> bool:
    return True


def _first_order_update(messages: list[Message]) -> bool:
    return messages[-1].get("type") == "ORDER_UPDATE"


def _whole_list(messages: list[Message]) -> bool:
    """An ORDER_LIST_UPDATE followed by one ORDER_UPDATE per leg."""
    head = next((m for m in messages if m.get("type") == "ORDER_LIST_UPDATE"), None)
    if head is None:
        return False
    legs = len(head["list"].get("orderIds") or ())
    return sum(1 for m in messages if m.get("type") == "ORDER_UPDATE") >= legs


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise TypeError(f"not a finite number: {obj}")
        return orjson.Fragment(str(obj))  # exact: the server parses numbers as Decimal
    raise TypeError(f"cannot send {type(obj).__name__} as JSON")


def encode(command: Mapping[str, Any]) -> str:
    """One command as the JSON text of one frame (``Decimal`` sent as an exact number)."""
    return orjson.dumps(command, default=_json_default).decode()


def _close_code(data: bytes) -> int:
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005


class TickdeskClient:
    """A client of one tickdesk server; see the module docstring.

    ``url``: the WebSocket endpoint. ``token``: sent with ``auth`` on every
    (re)connection (account commands need it unless the server runs in open
    mode). ``on_message``: called with every server message, on the reader
    thread. ``reconnect``: reconnect after a drop (else the client closes).
    ``stale_after_s``: drop a connection silent for that long (None: never).
    ``queue_size``: capacity of the :meth:`messages` buffer (0: no buffer).
    ``request_timeout_s``: default wait for a reply.
    ``fallback_urls``: other gateways of the same engine (docs/scaling.md),
    tried in turn when a reconnect fails; the account's events resume there.

    Use it as a context manager, or call :meth:`connect` and :meth:`close`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        on_message: MessageCallback | None = None,
        reconnect: bool = True,
        stale_after_s: float | None = 10.0,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
        queue_size: int = 10_000,
        backoff: BackoffPolicy | None = None,
        poll_s: float = 0.25,
        fallback_urls: Sequence[str] = (),
    ) -> None:
        if stale_after_s is not None and stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s!r}")
        self.url = url
        #: ``url`` then ``fallback_urls`` (other gateways of the same engine):
        #: a reconnect that fails moves on to the next one.
        self.urls: tuple[str, ...] = (url, *fallback_urls)
        self.token = token
        self.reconnect = reconnect
        self.stale_after_s = stale_after_s
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self._on_message = on_message
        self._policy = backoff or DEFAULT_BACKOFF
        self._poll_s = poll_s if stale_after_s is None else min(poll_s, stale_after_s / 4)
        self._name = f"tickdesk-client-{next(_ids)}"
        self._rng = random.Random()
        # _lock guards: state, _ws, _connecting, _pending, _subs, account, feed, counters.
        self._lock = threading.Condition()
        self._send_lock = threading.Lock()
        self._state = State.IDLE
        self._ws: websocket.WebSocket | None = None
        self._connecting: websocket.WebSocket | None = None
        self._pending: dict[str, _Pending] = {}
        self._subs: dict[str, None] = {}  # ordered set of symbols to keep subscribed
        self._request_ids = itertools.count(1)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._inbox = Inbox(queue_size)
        self._inbox_cv = threading.Condition()
        self._last_frame = 0.0   # reader thread only
        self._probe: str | None = None  # reader thread only
        self._account: str | None = None
        self._server: str | None = None
        self._feed: Message | None = None
        self._reconnects = 0
        self._retry_in_s: float | None = None
        self._epoch: str | None = None  # of the last CONNECTED
        self._session: str | None = None  # of the last CONNECTED
        self._seq = 0  # the last account event's seq delivered
        self._resumed: bool | None = None
        self._restored: bool | None = None
        self._resubscribed: tuple[str, ...] = ()
        self.last_close_code: int | None = None
        """The close code of the last connection the server closed (None if none)."""

    # -- properties ------------------------------------------------------------

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    @property
    def connected(self) -> bool:
        return self.state is State.OPEN

    @property
    def account(self) -> str | None:
        """The account of the connection (from CONNECTED / AUTHENTICATED)."""
        with self._lock:
            return self._account

    @property
    def server(self) -> str | None:
        """The server's ``tickdesk/<version>`` string from CONNECTED."""
        with self._lock:
            return self._server

    @property
    def feed(self) -> Message | None:
        """The latest feed status (``CONNECTED.feed``, then each ``FEED_STATUS``)."""
        with self._lock:
            return None if self._feed is None else dict(self._feed)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The symbols this client keeps subscribed (restored on reconnect)."""
        with self._lock:
            return tuple(self._subs)

    @property
    def resumed(self) -> bool | None:
        """The last reconnect's ``RESUMED.recovered`` (None: no resume yet).
        False: some account events could not be recovered; re-fetch the orders
        and the portfolio."""
        with self._lock:
            return self._resumed

    @property
    def restored(self) -> bool | None:
        """The last reconnect's ``RESUMED.restored``: True when the server
        restored the market subscriptions itself, False when the client had to
        subscribe again (None: no session resumed yet)."""
        with self._lock:
            return self._restored

    @property
    def resubscribed(self) -> tuple[str, ...]:
        """The symbols the last reconnect subscribed again itself, because the
        server did not restore them (empty when it restored them all)."""
        with self._lock:
            return self._resubscribed

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the last account event delivered (0: none)."""
        with self._lock:
            return self._seq

    @property
    def reconnects(self) -> int:
        """How many times the connection was re-established."""
        with self._lock:
            return self._reconnects

    @property
    def retry_in_s(self) -> float | None:
        """While reconnecting: the delay before the current attempt."""
        with self._lock:
            return self._retry_in_s

    @property
    def dropped(self) -> int:
        """Messages discarded from the :meth:`messages` buffer (overflow)."""
        with self._inbox_cv:
            return self._inbox.dropped

    # -- lifecycle -------------------------------------------------------------

    def connect(self) -> TickdeskClient:
        """Connect, authenticate and start the reader thread.

        Raises :class:`ConnectError` if the server cannot be reached or does
        not greet in time, :class:`CommandError` (``UNAUTHORIZED``) for a bad
        token. Returns the client.
        """
        with self._lock:
            if self._state is State.CLOSED:
                raise ClientClosed("the client is closed")
            if self._state is not State.IDLE:
                raise RuntimeError("connect() was already called")
            self._state = State.CONNECTING
        try:
            ws = self._open()
        except CommandError:
            self._set_state(State.IDLE)
            raise
        except _Handshake as exc:
            self._set_state(State.IDLE)
            if self._closed():
                raise ClientClosed("the client was closed while connecting") from None
            raise ConnectError(f"cannot connect to {self.url}: {exc}") from None
        self._reader = threading.Thread(target=self._run, args=(ws,), name=self._name,
                                        daemon=True)
        self._reader.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Close the connection (code 1000) and join the reader thread, within
        about ``timeout`` seconds. Idempotent; pending requests fail with
        :class:`ClientClosed`, and :meth:`messages` ends once drained."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._state = State.CLOSED
            self._fail_pending(ClientClosed("the client is closed"))
            ws = self._ws
            connecting = self._connecting
            self._lock.notify_all()
        reader = self._reader
        # The close frame goes out before the reader is told to stop, so that
        # the server sees a clean close (1000) rather than a bare EOF.
        if ws is not None and self._send_lock.acquire(timeout=max(0.0, timeout / 2)):
            try:
                ws.send_close(1000, b"client closing")
            except Exception:  # the reader may have dropped it already
                log.debug("%s: close frame not sent", self._name, exc_info=True)
            finally:
                self._send_lock.release()
        self._stop.set()
        with self._inbox_cv:
            self._inbox_cv.notify_all()
        if connecting is not None:
            connecting.abort()  # type: ignore[no-untyped-call]
        if reader is None or reader is threading.current_thread():
            return
        # The reader sees the stop flag within poll_s (or the server's close
        # reply first); if it is stuck in a blocking call, cut the socket
        # (shutdown wakes it) and join again.
        reader.join(max(0.0, deadline - time.monotonic() - 0.25))
        if reader.is_alive():
            with self._lock:
                for sock in (self._ws, self._connecting):
                    if sock is not None:
                        sock.abort()  # type: ignore[no-untyped-call]
            reader.join(max(0.25, deadline - time.monotonic()))
        if reader.is_alive():
            log.warning("%s: reader thread did not stop within %.1f s", self._name, timeout)

    def __enter__(self) -> TickdeskClient:
        if self.state is State.IDLE:
            self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------

    def request(self, action: str, *, timeout: float | None = None,
                **fields: Any) -> Message:
        """Send any command and return its direct reply (raises
        :class:`CommandError` on ``ERROR``)."""
        return self._request({"action": action, **fields}, _first, timeout)[0]

    def subscribe(self, symbol: str, *, timeout: float | None = None) -> None:
        """Subscribe to ``symbol``'s MARKET_UPDATEs (kept across reconnects).

        Returns once the server confirmed. Raises :class:`CommandError`
        (``UNKNOWN_SYMBOL``...) and forgets the symbol if the server refused it.
        If the connection drops before the reply, the symbol stays recorded and
        is subscribed again on the next connection (``ConnectionLost`` is raised).
        """
        sym = symbol.upper()
        with self._lock:
            known = sym in self._subs
            self._subs[sym] = None
        try:
            self._request({"action": "subscribe_ticker", "symbol": sym}, _first, timeout)
        except CommandError:
            if not known:
                with self._lock:
                    self._subs.pop(sym, None)
            raise

    def unsubscribe(self, symbol: str, *, timeout: float | None = None) -> None:
        """Stop ``symbol``'s MARKET_UPDATEs (and stop restoring it)."""
        sym = symbol.upper()
        with self._lock:
            self._subs.pop(sym, None)
        self._request({"action": "unsubscribe_ticker", "symbol": sym}, _first, timeout)

    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | int | float | str,
        *,
        price: Decimal | int | float | str | None = None,
        stop_price: Decimal | int | float | str | None = None,
        trailing_delta: int | None = None,
        client_order_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> OrderResult:
        """Place one order; returns its ``NEW`` or ``REJECTED`` ORDER_UPDATE.

        Numbers may be ``Decimal`` (sent exactly), ``int``, ``float`` or numeric
        strings. ``fields`` are sent as they are (camelCase wire names).
        Raises :class:`CommandError` when the server answers ``ERROR``.
        """
        cmd: dict[str, Any] = {"action": "place_order", "symbol": symbol.upper(),
                               "side": side.upper(), "type": type.upper(),
                               "quantity": _number(quantity)}
        _put(cmd, "price", price)
        _put(cmd, "stopPrice", stop_price)
        _put(cmd, "trailingDelta", trailing_delta)
        _put(cmd, "clientOrderId", client_order_id)
        cmd.update(fields)
        replies = self._request(cmd, _first_order_update, timeout)
        return OrderResult(replies[-1], str(replies[-1]["id"]))

    def place_oco(self, symbol: str, side: str, quantity: Decimal | int | float | str,
                  above: Mapping[str, Any], below: Mapping[str, Any], *,
                  timeout: float | None = None, **fields: Any) -> ListResult:
        """Place an OCO (legs as on the wire: ``{"type", "price"?, "stopPrice"?,
        "trailingDelta"?, "clientOrderId"?}``)."""
        cmd = {"action": "place_oco", "symbol": symbol.upper(), "side": side.upper(),
               "quantity": _number(quantity), "above": dict(above), "below": dict(below),
               **fields}
        return self._list_result(self._request(cmd, _whole_list, timeout))

    def place_bracket(self, symbol: str, side: str, quantity: Decimal | int | float | str,
                      entry: Mapping[str, Any], take_profit: Mapping[str, Any],
                      stop_loss: Mapping[str, Any], *, timeout: float | None = None,
                      **fields: Any) -> ListResult:
        """Place a bracket (``entry`` ``{"type": "MARKET"|"LIMIT", "price"?}``,
        ``take_profit`` ``{"price"}``, ``stop_loss`` ``{"stopPrice", "price"?,
        "trailingDelta"?}``)."""
        cmd = {"action": "place_bracket", "symbol": symbol.upper(), "side": side.upper(),
               "quantity": _number(quantity), "entry": dict(entry),
               "takeProfit": dict(take_profit), "stopLoss": dict(stop_loss), **fields}
        return self._list_result(self._request(cmd, _whole_list, timeout))

    def cancel_order(self, order_id: int | None = None, client_order_id: str | None = None,
                     *, list_id: int | None = None,
                     timeout: float | None = None) -> OrderResult:
        """Cancel an order by ``order_id`` or ``client_order_id``, or a whole
        order list by ``list_id``; returns the first ``CANCELED`` ORDER_UPDATE.
        Cancelling any order of a list cancels the whole list (the other legs'
        updates follow as messages, with the same ``id``). ``UNKNOWN_ORDER``
        raises :class:`CommandError`."""
        if sum(x is not None for x in (order_id, client_order_id, list_id)) != 1:
            raise ValueError("give exactly one of order_id, client_order_id, list_id")
        cmd: dict[str, Any] = {"action": "cancel_order"}
        _put(cmd, "orderId", order_id)
        _put(cmd, "clientOrderId", client_order_id)
        _put(cmd, "listId", list_id)
        replies = self._request(cmd, _first_order_update, timeout)
        update = next(m for m in replies if m.get("type") == "ORDER_UPDATE")
        return OrderResult(update, str(update["id"]))

    def amend_order(self, new_qty: Decimal | int | float | str, order_id: int | None = None,
                    client_order_id: str | None = None, *,
                    timeout: float | None = None) -> OrderResult:
        """Reduce an open order's quantity to ``new_qty``, keeping its queue
        position; returns the ``AMENDED`` ORDER_UPDATE. An increase, or a
        quantity at or below what has filled, raises :class:`CommandError`
        (``BAD_REQUEST``); an unknown order ``UNKNOWN_ORDER``."""
        if (order_id is None) == (client_order_id is None):
            raise ValueError("give exactly one of order_id, client_order_id")
        cmd: dict[str, Any] = {"action": "amend_order", "newQty": _number(new_qty)}
        _put(cmd, "orderId", order_id)
        _put(cmd, "clientOrderId", client_order_id)
        replies = self._request(cmd, _first_order_update, timeout)
        update = next(m for m in replies if m.get("type") == "ORDER_UPDATE")
        return OrderResult(update, str(update["id"]))

    def get_orders(self, status: str = "open", *, timeout: float | None = None) -> list[Order]:
        """The account's orders: ``"open"`` (default) or ``"all"``."""
        reply = self.request("get_orders", status=status, timeout=timeout)
        return cast(list[Order], reply["orders"])

    def get_fills(self, symbol: str | None = None, *, since: int | None = None,
                  before: int | None = None, limit: int | None = None,
                  timeout: float | None = None) -> tuple[list[Fill], int | None]:
        """One page of the account's fills, newest first, and the ``before`` of
        the next (older) page (None on the last page). ``since`` is epoch ms;
        ``limit`` 1..1000 (the server's default is 100)."""
        cmd: dict[str, Any] = {}
        _put(cmd, "symbol", symbol)
        _put(cmd, "since", since)
        _put(cmd, "before", before)
        _put(cmd, "limit", limit)
        reply = self.request("get_fills", timeout=timeout, **cmd)
        nxt = reply.get("nextBefore")
        return cast(list[Fill], reply["fills"]), None if nxt is None else int(nxt)

    def iter_fills(self, symbol: str | None = None, *, since: int | None = None,
                   page_size: int = 1000, timeout: float | None = None) -> Iterator[Fill]:
        """Every fill of the account (of ``symbol``, at or after ``since``),
        newest first, fetched ``page_size`` at a time."""
        before: int | None = None
        while True:
            page, before = self.get_fills(symbol, since=since, before=before,
                                          limit=page_size, timeout=timeout)
            yield from page
            if before is None:
                return

    def get_equity_history(self, *, since: int | None = None, limit: int | None = None,
                           timeout: float | None = None) -> list[EquitySample]:
        """The account's equity samples (one per ``intervals.equity_s``), oldest
        first: the latest ``limit`` (1..10080, default 1440) at or after ``since``."""
        cmd: dict[str, Any] = {}
        _put(cmd, "since", since)
        _put(cmd, "limit", limit)
        reply = self.request("get_equity_history", timeout=timeout, **cmd)
        return cast(list[EquitySample], reply["samples"])

    def get_klines(self, symbol: str, interval: str, *, limit: int | None = None,
                   start_time: int | None = None, end_time: int | None = None,
                   timeout: float | None = None) -> Klines:
        """The ``KLINES`` of ``symbol`` and ``interval`` (``1m`` ``5m`` ``15m``
        ``1h`` ``4h`` ``1d``), oldest first, with Binance's ``startTime`` /
        ``endTime`` (epoch ms) / ``limit`` (1..1000, default 500) semantics;
        ``reply["klines"]`` holds the rows. No authentication needed."""
        cmd: dict[str, Any] = {"symbol": symbol, "interval": interval}
        _put(cmd, "limit", limit)
        _put(cmd, "startTime", start_time)
        _put(cmd, "endTime", end_time)
        return cast(Klines, self.request("get_klines", timeout=timeout, **cmd))

    def get_positions(self, *, timeout: float | None = None) -> list[Position]:
        reply = self.request("get_positions", timeout=timeout)
        return cast(list[Position], reply["positions"])

    def get_portfolio(self, *, timeout: float | None = None) -> Portfolio:
        reply = self.request("get_portfolio", timeout=timeout)
        return cast(Portfolio, reply["portfolio"])

    def get_symbol_info(self, symbol: str, *, timeout: float | None = None) -> Message:
        """The ``SYMBOL_INFO`` of ``symbol``: base/quote asset, status and Binance's
        filters in exchangeInfo field names (no authentication needed)."""
        return self.request("get_symbol_info", symbol=symbol, timeout=timeout)

    def get_symbols(self, *, timeout: float | None = None) -> list[str]:
        """Every symbol the server's feed serves now (``SYMBOLS``; no authentication
        needed)."""
        reply = self.request("get_symbols", timeout=timeout)
        return cast(list[str], reply["symbols"])

    def ping(self, *, timeout: float | None = None) -> float:
        """Round-trip time of a ``ping``/``PONG``, in seconds."""
        t0 = time.monotonic()
        self.request("ping", timeout=timeout)
        return time.monotonic() - t0

    # -- delivery ---------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Message:
        """The next buffered message. Raises ``TimeoutError`` (:class:`RequestTimeout`)
        if none comes within ``timeout``, :class:`ClientClosed` once the client is
        closed and the buffer drained."""
        if self._inbox.capacity == 0:
            raise RuntimeError("this client has no message buffer (queue_size=0)")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._inbox_cv:
            while True:
                msg = self._inbox.pop()
                if msg is not None:
                    return msg
                if self._closed():
                    raise ClientClosed("the client is closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise RequestTimeout("no message within the timeout")
                # Bounded wait even without a timeout, so a missed wake-up costs 1 s at most.
                self._inbox_cv.wait(1.0 if left is None else min(left, 1.0))

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Iterate over buffered messages in arrival order. Ends when no message
        came for ``timeout`` seconds (None: never) or when the client is closed
        and the buffer drained. The buffer is bounded: see :mod:`tickdesk.client.inbox`."""
        while True:
            try:
                yield self.get(timeout)
            except (TimeoutError, ClientClosed):
                return

    def wait_for(self, predicate: Callable[[Message], bool],
                 timeout: float = 10.0) -> Message:
        """Consume buffered messages until one matches ``predicate`` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout("no matching message within the timeout")
            msg = self.get(left)
            if predicate(msg):
                return msg

    # -- internals: requests ----------------------------------------------------------

    def _list_result(self, replies: list[Message]) -> ListResult:
        head = next(m for m in replies if m.get("type") == "ORDER_LIST_UPDATE")
        rid = str(head["id"])
        legs = tuple(OrderResult(m, rid) for m in replies if m.get("type") == "ORDER_UPDATE")
        return ListResult(head, legs, rid)

    def _request(self, command: Mapping[str, Any], complete: Callable[[list[Message]], bool],
                 timeout: float | None) -> list[Message]:
        if threading.current_thread() is self._reader:
            raise RuntimeError("cannot wait for a reply on the reader thread "
                               "(from on_message); use another thread")
        wait = self.request_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + wait
        rid = f"c{next(self._request_ids)}"
        pending = _Pending(complete)
        with self._lock:
            if not self._lock.wait_for(
                    lambda: self._state in (State.OPEN, State.CLOSED, State.IDLE),
                    timeout=wait):
                raise RequestTimeout(f"not connected within {wait} s")
            if self._state is State.CLOSED:
                raise ClientClosed("the client is closed")
            if self._state is State.IDLE:
                raise ConnectionLost("not connected: call connect() first")
            self._pending[rid] = pending
        try:
            self._send({**command, "id": rid})
            if not pending.done.wait(max(0.0, deadline - time.monotonic())):
                raise RequestTimeout(f"no reply to {command.get('action')} within {wait} s")
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        if pending.error is not None:
            raise pending.error
        last = pending.messages[-1]
        if last.get("type") == "ERROR":
            raise CommandError.from_message(last)
        return pending.messages

    def _send(self, command: Mapping[str, Any]) -> None:
        data = encode(command)
        with self._send_lock:
            ws = self._ws
            if ws is None:
                raise ConnectionLost("not connected")
            try:
                ws.send(data)
            except (websocket.WebSocketException, OSError) as exc:
                # Let the reader notice at once and reconnect.
                ws.abort()  # type: ignore[no-untyped-call]
                raise ConnectionLost(f"send failed: {exc}") from None

    def _fail_pending(self, error: Exception) -> None:
        """Fail every waiting request (caller holds ``_lock``)."""
        for pending in self._pending.values():
            pending.error = error
            pending.done.set()
        self._pending.clear()

    def _closed(self) -> bool:
        """close() was called (read without the lock: a flag check)."""
        return self._stop.is_set() or self._state is State.CLOSED

    def _set_state(self, state: State) -> None:
        with self._lock:
            if self._state is not State.CLOSED:
                self._state = state
            self._lock.notify_all()

    # -- internals: delivery ----------------------------------------------------------

    def _dispatch(self, msg: Message) -> None:
        """Deliver one server message (reader thread, or connect()'s caller)."""
        kind = msg.get("type")
        rid = msg.get("id")
        if rid is not None and rid == self._probe:
            self._probe = None
            return
        if kind == "FEED_STATUS":
            with self._lock:
                self._feed = {k: v for k, v in msg.items() if k not in ("type", "timestamp")}
        seq = msg.get("seq")
        if isinstance(seq, int) and kind in ("ORDER_UPDATE", "ORDER_LIST_UPDATE"):
            with self._lock:
                if seq <= self._seq:
                    return  # delivered already (live and resumed around a reconnect)
                self._seq = seq
        if self._on_message is not None:
            try:
                self._on_message(msg)
            except Exception:
                log.exception("%s: on_message callback failed", self._name)
        with self._inbox_cv:
            self._inbox.push(msg)
            self._inbox_cv.notify_all()
        if isinstance(rid, str):
            with self._lock:
                pending = self._pending.get(rid)
                if pending is not None:
                    pending.messages.append(msg)
                    if kind == "ERROR" or pending.complete(pending.messages):
                        del self._pending[rid]
                        pending.done.set()

    def _greeted(self, msg: Message) -> tuple[str | None, str | None]:
        """Take CONNECTED in; returns the previous connection's epoch and
        session (None: first, or a server without them)."""
        with self._lock:
            previous = (self._epoch, self._session)
            epoch = msg.get("epoch")
            self._epoch = epoch if isinstance(epoch, str) else None
            session = msg.get("session")
            self._session = session if isinstance(session, str) else None
            self._account = msg.get("account")
            self._server = msg.get("server")
            feed = msg.get("feed")
            if isinstance(feed, dict):
                self._feed = dict(feed)
            return previous

    def _resume(self, ws: websocket.WebSocket, deadline: float, epoch: str,
                session: str | None) -> set[str] | None:
        """``resume`` after a reconnect: the restored subscriptions' SUBSCRIBED
        and snapshots and the missed events are dispatched as they come (in
        order), then RESUMED says whether that was all of them. Returns the
        ticker symbols the server restored (None: it restored nothing)."""
        with self._lock:
            seq = self._seq
            account = self._account
        command: dict[str, Any] = {"action": "resume", "epoch": epoch, "seq": seq}
        if session is not None:
            command["session"] = session
        reply = self._handshake_call(ws, deadline, command)
        resumed = reply.get("type") == "RESUMED"
        restored = resumed and reply.get("restored") is True
        subs = reply.get("subscriptions") if restored else None
        symbols = subs.get("symbols") if isinstance(subs, dict) else None
        with self._lock:
            if session is not None:
                self._restored = restored
        if account is not None:
            recovered = resumed and reply.get("recovered") is True
            with self._lock:
                self._resumed = recovered
                if not recovered:
                    self._seq = 0  # a new history: every event of it is new
            if not recovered:
                log.warning("%s: account events since seq %d could not be recovered; "
                            "re-fetch the orders and the portfolio", self._name, seq)
        if not isinstance(symbols, list):
            return None
        return {s for s in symbols if isinstance(s, str)}

    # -- internals: one connection ------------------------------------------------------

    def _open(self) -> websocket.WebSocket:
        """Connect, read CONNECTED, authenticate, restore subscriptions; then
        publish the socket and go OPEN. Raises _Handshake or CommandError."""
        deadline = time.monotonic() + self.connect_timeout_s
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True)
        with self._lock:
            if self._closed():
                raise _Handshake("closed")
            self._connecting = ws
        try:
            try:
                ws.connect(  # type: ignore[no-untyped-call]
                    self.url, timeout=self.connect_timeout_s, suppress_origin=True)
            except websocket.WebSocketBadStatusException as exc:
                raise _Handshake(f"HTTP {exc.status_code}") from None
            except (websocket.WebSocketException, OSError, ValueError) as exc:
                raise _Handshake(str(exc) or type(exc).__name__) from None
            self._last_frame = time.monotonic()
            self._probe = None
            hello = self._handshake_read(ws, deadline, lambda m: True)
            if hello.get("type") != "CONNECTED":
                raise _Handshake(f"expected CONNECTED, got {hello.get('type')}")
            epoch, session = self._greeted(hello)
            if self.token is not None:
                reply = self._handshake_call(ws, deadline, {"action": "auth",
                                                            "token": self.token})
                if reply.get("type") == "ERROR":
                    raise CommandError.from_message(reply)
                with self._lock:
                    self._account = reply.get("account")
            restored: set[str] | None = None
            if epoch is not None and (self.account is not None or session is not None):
                restored = self._resume(ws, deadline, epoch, session)
            self._restore_subscriptions(ws, deadline, restored)
            with self._lock:
                if self._closed():
                    raise _Handshake("closed")
                self._connecting = None
                self._ws = ws
                self._retry_in_s = None
                self._state = State.OPEN
                self._lock.notify_all()
            return ws
        except BaseException:
            with self._lock:
                self._connecting = None
            ws.shutdown()  # type: ignore[no-untyped-call]
            raise

    def _handshake_send(self, ws: websocket.WebSocket, command: Mapping[str, Any]) -> None:
        try:
            ws.send(encode(command))
        except (websocket.WebSocketException, OSError) as exc:
            raise _Handshake(f"send failed: {exc}") from None

    def _handshake_call(self, ws: websocket.WebSocket, deadline: float,
                        command: Mapping[str, Any]) -> Message:
        rid = f"c{next(self._request_ids)}"
        self._handshake_send(ws, {**command, "id": rid})
        return self._handshake_read(ws, deadline, lambda m: m.get("id") == rid)

    def _handshake_read(self, ws: websocket.WebSocket, deadline: float,
                        wanted: Callable[[Message], bool]) -> Message:
        """Read (and deliver) messages until one is ``wanted``; bounded by ``deadline``."""
        while True:
            if self._closed():
                raise _Handshake("closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Handshake("no answer from the server in time")
            msg = self._read_message(ws, min(left, self._poll_s))
            if msg is None:
                continue
            self._dispatch(msg)
            if wanted(msg):
                return msg

    def _restore_subscriptions(self, ws: websocket.WebSocket, deadline: float,
                               restored: set[str] | None) -> None:
        """Subscribe what the client keeps and the server did not restore
        (``restored``; None: nothing was), and unsubscribe what it restored
        that the client no longer keeps."""
        with self._lock:
            symbols = [s for s in self._subs if restored is None or s not in restored]
            extra = sorted(s for s in restored or () if s not in self._subs)
            self._resubscribed = tuple(symbols)
        waiting: dict[str, str] = {}
        for sym in symbols:
            rid = f"c{next(self._request_ids)}"
            waiting[rid] = sym
            self._handshake_send(ws, {"action": "subscribe_ticker", "symbol": sym, "id": rid})
        for sym in extra:
            rid = f"c{next(self._request_ids)}"
            waiting[rid] = ""
            self._handshake_send(ws, {"action": "unsubscribe_ticker", "symbol": sym,
                                      "id": rid})
        while waiting:
            reply = self._handshake_read(ws, deadline, lambda m: m.get("id") in waiting)
            sym = waiting.pop(str(reply["id"]))
            if sym and reply.get("type") == "ERROR":
                log.warning("%s: cannot restore the subscription to %s: %s", self._name, sym,
                            reply.get("message"))
                with self._lock:
                    self._subs.pop(sym, None)

    def _read_message(self, ws: websocket.WebSocket, wait_s: float) -> Message | None:
        """One text message, or None if nothing complete arrived within ``wait_s``.
        Raises _Handshake when the connection ends."""
        try:
            sock = ws.sock
            if sock is None:
                raise _Handshake("socket closed")
            pending = getattr(sock, "pending", None)  # TLS may hold decrypted bytes
            if not (pending is not None and pending()):
                readable, _, _ = select.select([sock], [], [], wait_s)
                if not readable:
                    return None
            opcode, frame = ws.recv_data_frame(True)
        except _Handshake:
            raise
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            raise _Handshake(str(exc) or type(exc).__name__) from None
        self._last_frame = time.monotonic()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            try:
                msg = orjson.loads(frame.data)
            except orjson.JSONDecodeError:
                log.warning("%s: ignoring a frame that is not JSON", self._name)
                return None
            return msg if isinstance(msg, dict) else None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = _close_code(frame.data)
            self.last_close_code = code
            raise _Handshake(f"closed by the server ({code})")
        return None  # ping/pong (answered by websocket-client), binary: ignored

    # -- internals: the reader thread ---------------------------------------------------

    def _run(self, ws: websocket.WebSocket) -> None:
        backoff = Backoff(self._policy)
        backoff.on_started(time.monotonic())
        current: websocket.WebSocket | None = ws
        while current is not None:
            reason = self._read_until_dropped(current)
            self._drop(current, reason)
            current = None
            if self._closed() or not self.reconnect:
                break
            while not self._closed():
                decision = backoff.on_failure(time.monotonic(), self._rng.random())
                with self._lock:
                    self._retry_in_s = decision.delay_s
                log.info("%s: %s; reconnecting in %.2f s (attempt %d)", self._name, reason,
                         decision.delay_s, decision.attempt)
                if self._stop.wait(decision.delay_s):
                    break
                try:
                    current = self._open()
                except (_Handshake, CommandError) as exc:
                    reason = f"reconnect failed: {exc}"
                    self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
                    continue
                backoff.on_started(time.monotonic())
                with self._lock:
                    self._reconnects += 1
                log.info("%s: reconnected to %s", self._name, self.url)
                break
        with self._lock:
            self._state = State.CLOSED
            self._stop.set()
            self._fail_pending(ClientClosed("the client is closed"))
            self._lock.notify_all()
        with self._inbox_cv:
            self._inbox_cv.notify_all()

    def _read_until_dropped(self, ws: websocket.WebSocket) -> str:
        """Read and dispatch until the connection ends; returns why."""
        stale = self.stale_after_s
        while not self._stop.is_set():
            try:
                msg = self._read_message(ws, self._poll_s)
            except _Handshake as exc:
                return str(exc)
            if msg is not None:
                self._dispatch(msg)
                continue
            if stale is None:
                continue
            idle = time.monotonic() - self._last_frame
            if idle >= stale:
                return f"no frame for {idle:.1f} s (stale)"
            if idle >= stale / 2 and self._probe is None:
                self._probe = f"probe-{next(self._request_ids)}"
                with contextlib.suppress(ConnectionLost):
                    self._send({"action": "ping", "id": self._probe})
        return "closing"

    def _drop(self, ws: websocket.WebSocket, reason: str) -> None:
        """Forget the connection and close its socket (reader thread only)."""
        with self._send_lock:  # no send is in flight on it while we close it
            with self._lock:
                if self._ws is ws:
                    self._ws = None
                if self._state is not State.CLOSED:
                    self._state = State.RECONNECTING if self.reconnect else State.CLOSED
                self._fail_pending(
                    ClientClosed("the client is closed") if self._closed()
                    else ConnectionLost(f"connection lost: {reason}"))
                self._lock.notify_all()
            ws.shutdown()  # type: ignore[no-untyped-call]
        if not self._closed():
            log.info("%s: connection dropped: %s", self._name, reason)


def _number(value: Decimal | int | float | str) -> Any:
    if isinstance(value, bool):
        raise TypeError("a number is required, not bool")
    return value


def _put(cmd: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        cmd[key] = value
