"""The reference server: asyncio ``websockets`` with ``websockets.broadcast``.

It sends the same bytes as tickdesk: each scripted trade goes through a
:class:`~engine.market.board.MarketBoard` and
:func:`~engine.protocol.server_messages.market_update`, and the payload is
broadcast as a text frame to every subscribed connection. Like tickdesk it
greets with CONNECTED and answers ``subscribe_ticker`` with SUBSCRIBED and
the symbol's latest MARKET_UPDATE. ``broadcast`` has no backpressure: this is
the cost floor of one asyncio thread, not a design to copy as is.

Threads: the asyncio loop runs in one thread; :meth:`publish` may be called
from any other (it hops onto the loop with ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import orjson

from engine.market.board import MarketBoard
from engine.messages import Trade
from engine.protocol import server_messages as sm
from engine.protocol.enums import Action
from engine.version import __version__

__all__ = ["ReferenceServer"]


class ReferenceServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._board = MarketBoard()
        self._subs: set[Any] = set()
        self._latest: dict[str, sm.Outgoing] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="reference-loop", daemon=True)
        self._started = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.port = 0

    # -- any thread -------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ReferenceServer:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("reference server did not start")
        if self._error is not None:
            raise RuntimeError(f"reference server failed: {self._error!r}")
        return self

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}/api/ws/realtime"

    def publish(self, trade: Trade) -> None:
        self._loop.call_soon_threadsafe(self._publish, trade)

    def stop(self, timeout: float = 5.0) -> None:
        stop = self._stop
        if stop is not None and not self._loop.is_closed():
            def done() -> None:
                if not stop.done():
                    stop.set_result(None)

            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(done)
        self._thread.join(timeout)

    # -- loop thread ------------------------------------------------------------

    def _run(self) -> None:
        # asyncio warns "socket.send() raised exception" for each write to a peer
        # that hung up; at the end of a bench that is hundreds of lines of noise.
        logging.getLogger("asyncio").setLevel(logging.ERROR)
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
            self._started.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = self._loop.create_future()
        async with serve(self._handler, self._host, 0, compression=None,
                         ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._stop
            server.close()

    async def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            now = int(time.time() * 1000)
            await ws.send(sm.connected(__version__, "default", {"status": "UP"}, now).payload,
                          text=True)
            async for raw in ws:
                try:
                    cmd = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if cmd.get("action") == Action.SUBSCRIBE_TICKER:
                    sym = str(cmd.get("symbol"))
                    self._subs.add(ws)
                    now = int(time.time() * 1000)
                    await ws.send(sm.subscribed(sym, now).payload, text=True)
                    latest = self._latest.get(sym)
                    if latest is not None:
                        await ws.send(latest.payload, text=True)
        except ConnectionClosed:
            pass  # bench clients just hang up at the end
        finally:
            self._subs.discard(ws)

    def _publish(self, trade: Trade) -> None:
        from websockets.asyncio.server import broadcast

        snap = self._board.apply_trade(trade)
        out = sm.market_update(snap, int(time.time() * 1000))
        self._latest[trade.symbol] = out
        broadcast(self._subs, out.payload, text=True)
