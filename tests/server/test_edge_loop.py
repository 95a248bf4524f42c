"""The I/O loop on its own (no engine): a slow route never stalls the sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping

import websocket

from engine.protocol.frames import frame_header
from engine.server.channel import SocketChannel
from engine.server.edge import Accepted, EdgeLimits, EdgeLoop, Site
from engine.server.http import LOOPBACK_NAMES, HostPolicy, HttpResponse, UpgradeRequest
from tests.conftest import timeout


def test_a_slow_route_does_not_stall_websocket_traffic() -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow(_h: Mapping[str, str], _q: Mapping[str, list[str]]) -> HttpResponse:
        entered.set()
        release.wait(timeout(10))
        return HttpResponse(200, "text/plain", b"slow\n")

    loop = EdgeLoop(time.monotonic)

    def on_upgrade(sock: socket.socket, req: UpgradeRequest) -> Accepted:
        ch = SocketChannel(1, sock, loop, max_queued_bytes=1 << 20, write_timeout_s=10,
                           monotonic=time.monotonic, peer=req.peer)

        def echo(data: bytes | str, binary: bool) -> bool:
            raw = data if isinstance(data, bytes) else data.encode()
            ch.send_frame(frame_header(0x2 if binary else 0x1, len(raw)) + raw)
            return True

        return Accepted(ch, echo, lambda: None)

    site = Site(("/ws",), on_upgrade, {"/slow": slow},
                HostPolicy(LOOPBACK_NAMES, (), 0), EdgeLimits(ping_interval_s=None))
    port = loop.listen("127.0.0.1", 0, site)
    loop.start()
    try:
        stuck = socket.create_connection(("127.0.0.1", port), timeout=timeout(5))
        stuck.sendall(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert entered.wait(timeout(5))
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=timeout(5))
        for i in range(20):  # while the route thread is stuck
            ws.send(f"hello {i}")
            assert ws.recv() == f"hello {i}"
        release.set()
        assert stuck.recv(4096).startswith(b"HTTP/1.1 200")
        stuck.close()
        ws.close(timeout=1)
    finally:
        release.set()
        loop.stop()


def _echo_site(loop: EdgeLoop) -> Site:
    def on_upgrade(sock: socket.socket, req: UpgradeRequest) -> Accepted:
        ch = SocketChannel(1, sock, loop, max_queued_bytes=1 << 20, write_timeout_s=10,
                           monotonic=time.monotonic, peer=req.peer)

        def echo(data: bytes | str, binary: bool) -> bool:
            raw = data if isinstance(data, bytes) else data.encode()
            ch.send_frame(frame_header(0x2 if binary else 0x1, len(raw)) + raw)
            return True

        return Accepted(ch, echo, lambda: None)

    return Site(("/ws",), on_upgrade, {}, HostPolicy(LOOPBACK_NAMES, (), 0),
                EdgeLimits(ping_interval_s=None))


def test_a_held_loop_handles_nothing_until_released() -> None:
    loop = EdgeLoop(time.monotonic)
    port = loop.listen("127.0.0.1", 0, _echo_site(loop))
    loop.start()
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=timeout(5))
        with loop.held(max_s=timeout(10)) as held:
            assert held
            ws.send("while held")
            ws.settimeout(0.3)
            try:
                early = ws.recv()
            except websocket.WebSocketTimeoutException:
                early = None
            assert early is None  # the loop read nothing while held
        ws.settimeout(timeout(5))
        assert ws.recv() == "while held"  # and carries on once released
        ws.close(timeout=1)
    finally:
        loop.stop()


def test_a_hold_ends_by_itself_after_max_s() -> None:
    loop = EdgeLoop(time.monotonic)
    port = loop.listen("127.0.0.1", 0, _echo_site(loop))
    loop.start()
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=timeout(5))
        with loop.held(max_s=0.2) as held:
            assert held
            ws.send("still held")
            assert ws.recv() == "still held"  # answered although never released
        ws.close(timeout=1)
    finally:
        loop.stop()


def test_holding_a_loop_that_is_not_running_holds_nothing() -> None:
    loop = EdgeLoop(time.monotonic)
    try:
        with loop.held(max_s=timeout(5)) as held:
            assert held is False
    finally:
        loop.stop()
