"""A client that never reads cannot hurt the others (loopback, real sockets).

The non-reading client asks for a tiny receive buffer and subscribes to every
symbol of a fast simulated feed; the reading clients each run a reader
thread. Asserted: the readers keep receiving MARKET_UPDATEs whose seqs only
move forward (contiguous, or with gaps where updates were conflated); the
non-reading client is closed as a slow consumer (4001 or 4002); the daemon's
thread count stays within two threads per live client. No timing is asserted.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
import websocket

from engine.config import FeedConfig, ServerConfig, SimulatedConfig
from engine.protocol.enums import CloseCode
from tests.conftest import make_config, wait_until
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

READERS = 3


def connection_threads() -> int:
    """Server threads that exist per client: its actor (the I/O thread reads
    every socket; the other names are those of the former transport, which
    must not come back)."""
    return sum(1 for t in threading.enumerate()
               if t.name.startswith("ConnectionActor-") or "simple_websocket" in t.name
               or "process_request_thread" in t.name)


@dataclass
class Reader:
    client: WsClient
    seqs: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    updates: int = 0
    close_code: int | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        ws = self.client.ws
        ws.settimeout(0.2)
        try:
            while not stop.is_set():
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    continue
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_code = int.from_bytes(data[:2], "big") if data else 1005
                    return
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    msg = orjson.loads(data)
                    if msg["type"] == "MARKET_UPDATE":
                        self.seqs[msg["symbol"]].append(msg["seq"])
                        self.updates += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_a_client_that_never_reads_is_dropped_and_the_others_keep_streaming() -> None:
    # write_timeout_s leaves a reading client that a loaded machine starves for a
    # moment well clear of eviction; the non-reading one is still dropped.
    server = ServerConfig(port=0, max_queued_bytes=4096, write_timeout_s=2.0,
                          rate_limit_per_s=1000.0, rate_limit_burst=1000)
    feed = FeedConfig(simulated=SimulatedConfig(seed=7, ticks_per_second=1000))
    cfg = make_config(server=server, feed=feed)
    symbols = cfg.feed.symbols
    stop = threading.Event()
    readers: list[Reader] = []
    with Engine(cfg) as eng:
        slow = WsClient(eng.url, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        try:
            for sym in symbols:
                slow.send({"action": "subscribe_ticker", "symbol": sym})
            for i in range(READERS):
                c = WsClient(eng.url)
                # reader i watches one symbol: together they cover most of the feed
                c.send({"action": "subscribe_ticker", "symbol": symbols[i % len(symbols)]})
                r = Reader(c)
                r.thread = threading.Thread(target=r.run, args=(stop,), name=f"reader-{i}")
                r.thread.start()
                readers.append(r)
            # While everyone is connected: two server threads (reader + actor) per client.
            limit = 2 * (READERS + 1) + 1
            assert connection_threads() <= limit

            def evicted() -> bool:
                ev = eng.ops_snapshot().evictions
                return ev[CloseCode.SLOW_CONSUMER] + ev[CloseCode.WRITE_TIMEOUT] >= 1

            wait_until(evicted, seconds=60, what="the non-reading client to be dropped")
            assert connection_threads() <= limit
            # The readers keep streaming after the eviction.
            marks = [r.updates for r in readers]
            wait_until(lambda: all(r.updates >= m + 50 for r, m in zip(readers, marks,
                                                                       strict=True)),
                       seconds=30, what="readers to keep receiving")
            # Only the non-reading client was dropped: it alone is gone.
            snap = eng.ops_snapshot()
            ev = snap.evictions
            assert ev[CloseCode.SLOW_CONSUMER] + ev[CloseCode.WRITE_TIMEOUT] == 1
            wait_until(lambda: eng.ops_snapshot().connections == READERS,
                       what="the dropped client's transport to close")
            # Its server threads are gone too.
            wait_until(lambda: connection_threads() <= 2 * READERS,
                       what="the dropped client's threads to end")
            # Reading it now drains what the kernel held, then ends: the server dropped
            # its queue (no close frame fits a full socket, so EOF is as good as 4001/4002).
            assert slow.wait_closed(seconds=30) in (CloseCode.SLOW_CONSUMER,
                                                    CloseCode.WRITE_TIMEOUT, 1006)
        finally:
            stop.set()
            for r in readers:
                assert r.thread is not None
                r.thread.join(timeout=5)
                r.client.close()
            slow.close()
    for r in readers:
        assert r.error is None, r.error
        assert r.close_code is None, f"a reading client was closed ({r.close_code})"
        assert r.updates > 0
        for sym, seqs in r.seqs.items():
            steps = [b - a for a, b in itertools.pairwise(seqs)]
            # forward only; 0 at most once (the subscribe snapshot may repeat a seq)
            assert all(s >= 0 for s in steps), f"{sym} seq went backwards"
            assert steps.count(0) <= 1, f"{sym} repeated a seq"
