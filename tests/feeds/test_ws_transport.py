"""engine.feeds.ws_transport: the frame limit on hand-made frames, and the
bounded, verified socket opening against loopback servers."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.feeds.ws_transport import BoundedFrames, FrameTooLarge, open_socket

TEXT, CONT, PING = 0x1, 0x0, 0x9


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A server frame (unmasked), with the 16- or 64-bit length forms as needed."""
    b1 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b1, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b1, 126, n)
    else:
        head = struct.pack("!BBQ", b1, 127, n)
    return head + payload


class Wire:
    """A recv function over bytes; counts what was read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read = 0

    def recv(self, n: int) -> bytes:
        chunk = self.data[self.read:self.read + n]
        self.read += len(chunk)
        return chunk


def reader(data: bytes, limit: int) -> tuple[BoundedFrames, Wire, list[FrameTooLarge]]:
    wire = Wire(data)
    refused: list[FrameTooLarge] = []
    return BoundedFrames(wire.recv, True, limit, refused.append), wire, refused


def test_a_frame_at_the_limit_is_read_and_one_byte_more_is_refused_at_its_header() -> None:
    frames, _, refused = reader(frame(TEXT, b"a" * 1000), 1000)
    assert frames.recv_frame().data == b"a" * 1000
    big = frame(TEXT, b"b" * 1001)
    frames, wire, refused = reader(big, 1000)
    with pytest.raises(FrameTooLarge, match="1001 bytes"):
        frames.recv_frame()
    assert wire.read == 4  # the header and its 16-bit length, not the payload
    assert [e.length for e in refused] == [1001]
    with pytest.raises(FrameTooLarge):  # and nothing more is read afterwards
        frames.recv_frame()
    assert wire.read == 4


def test_a_64_bit_length_is_refused_before_any_payload() -> None:
    head = struct.pack("!BBQ", 0x81, 127, 300 * 1024 * 1024)
    frames, wire, _ = reader(head + b"x" * 10, 1 << 20)
    with pytest.raises(FrameTooLarge, match=str(300 * 1024 * 1024)):
        frames.recv_frame()
    assert wire.read == 10


def test_fragments_count_together_and_control_frames_between_them_do_not() -> None:
    ok = (frame(TEXT, b"a" * 400, fin=False) + frame(PING, b"p")
          + frame(CONT, b"b" * 600) + frame(TEXT, b"c" * 900))
    frames, _, _ = reader(ok, 1000)
    assert [len(frames.recv_frame().data) for _ in range(4)] == [400, 1, 600, 900]
    too_big = frame(TEXT, b"a" * 600, fin=False) + frame(CONT, b"b" * 600)
    frames, _, refused = reader(too_big, 1000)
    assert len(frames.recv_frame().data) == 600
    with pytest.raises(FrameTooLarge, match="1200 bytes"):
        frames.recv_frame()
    assert len(refused) == 1


# -- open_socket: bounded connect and TLS, verified certificates ----------------------


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A loopback listener that accepts (the kernel does) and never says a word."""
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        yield srv
    finally:
        srv.close()


def test_a_tls_handshake_that_never_completes_times_out(silent_server: socket.socket) -> None:
    port = silent_server.getsockname()[1]
    with pytest.raises(TimeoutError):
        open_socket(f"wss://127.0.0.1:{port}", 0.2)


def test_a_plain_connection_comes_back_connected_with_its_timeout(
        silent_server: socket.socket) -> None:
    port = silent_server.getsockname()[1]
    sock = open_socket(f"ws://127.0.0.1:{port}", 0.2)
    try:
        assert sock.gettimeout() == 0.2
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with pytest.raises(TimeoutError):  # the handshake's reads are bounded too
            sock.recv(1)
    finally:
        sock.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_certificate_nobody_vouches_for_is_refused(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(5)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = srv.accept()
            conn.settimeout(5)
            with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            open_socket(f"wss://127.0.0.1:{srv.getsockname()[1]}", 5)
    finally:
        thread.join(10)
        srv.close()
