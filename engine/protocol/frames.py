"""Server-side WebSocket framing (RFC 6455 §5.2), for frames built once and sent many times.

Pure core. Server-to-client frames are never masked, so the bytes of one
message are the same for every client: the hot path frames a MARKET_UPDATE
once and appends the same ``bytes`` object to every subscriber's buffer.
"""

from __future__ import annotations

import struct

__all__ = ["close_frame", "frame_header", "text_frame"]

_OP_TEXT = 0x1
_OP_CLOSE = 0x8
_FIN = 0x80


def frame_header(opcode: int, length: int) -> bytes:
    """The header of an unmasked, final frame of ``length`` payload bytes."""
    first = _FIN | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def text_frame(payload: bytes) -> bytes:
    """A complete text frame carrying ``payload`` (already UTF-8)."""
    return frame_header(_OP_TEXT, len(payload)) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and a reason (truncated to fit 123 bytes)."""
    raw = reason.encode("utf-8")[:123]
    # Do not cut a multi-byte character in half.
    raw = raw.decode("utf-8", errors="ignore").encode("utf-8")
    payload = struct.pack("!H", code) + raw
    return frame_header(_OP_CLOSE, len(payload)) + payload
