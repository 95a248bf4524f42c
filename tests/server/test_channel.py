"""SocketChannel + its owner (the I/O loop) over a real socketpair: never block, keep order,
conflate market data, evict slow consumers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from engine.protocol.enums import CloseCode
from engine.protocol.frames import close_frame, text_frame
from engine.server.channel import SocketChannel
from engine.server.edge import EdgeLoop
from tests.conftest import timeout, wait_until


@pytest.fixture
def writer() -> Iterator[EdgeLoop]:
    w = EdgeLoop(time.monotonic)
    w.start()
    yield w
    w.stop()


def _pair(writer: EdgeLoop, **kw: float) -> tuple[SocketChannel, socket.socket]:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ch = SocketChannel(1, a, writer, max_queued_bytes=int(kw.get("max_queued", 64 * 1024)),
                       write_timeout_s=kw.get("write_timeout", 30.0), monotonic=time.monotonic)
    return ch, b


def _read_frames(sock: socket.socket, want: int) -> list[bytes]:
    """Parse ``want`` unmasked server frames (payload < 64 KiB) from ``sock``."""
    sock.settimeout(timeout(5))
    buf = b""
    frames: list[bytes] = []
    while len(frames) < want:
        chunk = sock.recv(65536)
        assert chunk, "peer closed early"
        buf += chunk
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            start = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = int.from_bytes(buf[2:4], "big")
                start = 4
            if len(buf) < start + n:
                break
            frames.append(buf[start:start + n])
            buf = buf[start + n:]
    return frames


def test_a_full_socket_never_blocks_the_sender_and_order_is_kept(writer: EdgeLoop) -> None:
    ch, peer = _pair(writer)
    for i in range(300):  # far more than the socket buffers hold: a blocking
        ch.send_frame(text_frame(b"order-%04d" % i + b"." * 200))  # send would hang here
    assert ch.queued_bytes > 0
    frames = _read_frames(peer, 300)
    assert [f[:10] for f in frames] == [b"order-%04d" % i for i in range(300)]
    wait_until(lambda: ch.queued_bytes == 0, what="drained")
    ch.transport_closed()
    peer.close()


def test_market_updates_conflate_while_the_client_is_behind(writer: EdgeLoop) -> None:
    ch, peer = _pair(writer)
    filler = text_frame(b"x" * 1000)
    while ch.queued_bytes == 0:  # fill the kernel buffers until the channel queues
        ch.send_frame(filler)
    for i in range(50):
        ch.send_frame(text_frame(b"BTC %d" % i), "BTC")
        ch.send_frame(text_frame(b"ETH %d" % i), "ETH")
    ch.send_frame(text_frame(b"ORDER"))
    peer.settimeout(timeout(5))
    got: list[bytes] = []
    while b"ORDER" not in got:
        got += [f for f in _read_frames(peer, 1) if not f.startswith(b"x")]
    assert got == [b"BTC 49", b"ETH 49", b"ORDER"]
    assert ch._outbox.conflated == 98
    ch.transport_closed()
    peer.close()


def test_overflow_of_ordered_messages_evicts_with_4001(writer: EdgeLoop) -> None:
    ch, peer = _pair(writer, max_queued=8192)
    for _ in range(200):
        ch.send_frame(text_frame(b"y" * 500))
    assert ch.closed and ch.close_code == CloseCode.SLOW_CONSUMER
    ch.transport_closed()
    peer.close()


def test_a_socket_that_stays_unwritable_is_evicted_with_4002(writer: EdgeLoop) -> None:
    ch, peer = _pair(writer, write_timeout=0.2)
    while ch.queued_bytes == 0:
        ch.send_frame(text_frame(b"z" * 1000))
    wait_until(lambda: ch.close_code == CloseCode.WRITE_TIMEOUT, what="eviction")
    assert writer.statistics().write_timeouts == 1
    ch.transport_closed()
    peer.close()


def test_a_dead_peer_is_noticed_without_raising(writer: EdgeLoop) -> None:
    ch, peer = _pair(writer)
    peer.close()
    for _ in range(5):
        ch.send_frame(text_frame(b"hello"))
    assert ch.closed
    ch.transport_closed()


class _ScriptedSock:
    """A socket whose ``send`` takes what the test allows; records what it took."""

    def __init__(self) -> None:
        self.room = 0
        self.taken: list[bytes] = []

    def send(self, data: bytes, flags: int = 0) -> int:
        n = min(len(data), self.room)
        if n == 0:
            raise BlockingIOError
        self.room -= n
        self.taken.append(bytes(data[:n]))
        return n

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


class _NoWriter:
    def want_write(self, ch: object) -> None: ...
    def shutdown_later(self, ch: object, grace_s: float) -> None: ...
    def release(self, ch: object) -> None: ...


def test_eviction_never_writes_a_close_frame_into_a_half_sent_frame() -> None:
    sock = _ScriptedSock()
    ch = SocketChannel(1, sock, _NoWriter(), max_queued_bytes=4096,  # type: ignore[arg-type]
                       write_timeout_s=30, monotonic=time.monotonic)
    sock.room = 100
    ch.send_frame(text_frame(b"q" * 3000))  # 100 bytes go out: the frame is cut
    sock.room = 10**6  # the peer read: the socket now takes anything
    sock.taken.clear()
    ch.close(CloseCode.SLOW_CONSUMER, "slow consumer", drop_pending=True)
    # Any byte now would be read as the rest of the cut frame: nothing is sent.
    assert sock.taken == []
    assert ch.closed and ch.close_code == CloseCode.SLOW_CONSUMER


def test_a_close_frame_follows_whole_frames() -> None:
    sock = _ScriptedSock()
    ch = SocketChannel(1, sock, _NoWriter(), max_queued_bytes=4096,  # type: ignore[arg-type]
                       write_timeout_s=30, monotonic=time.monotonic)
    sock.room = 10**6
    ch.send_frame(text_frame(b"whole"))
    ch.close(1001, "bye", drop_pending=True)
    assert sock.taken[-1] == close_frame(1001, "bye")
