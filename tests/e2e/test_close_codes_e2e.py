"""Closes the WebSocket layer decides, as docs/protocol.md ("Close codes") says.

Over 127.0.0.1: invalid UTF-8 in a text frame fails the connection with 1007
(RFC 6455 §8.1), a frame with a reserved bit set with 1002, and a client's own
close code is echoed back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websocket

from tests.e2e.wsclient import WsClient
from tickdesk import Engine


@pytest.fixture
def client(engine: Engine) -> Iterator[WsClient]:
    c = WsClient(engine.url)
    assert c.recv()["type"] == "CONNECTED"
    yield c
    c.close()


def test_invalid_utf8_in_a_text_frame_closes_1007(client: WsClient) -> None:
    client.ws.send(b'{"action":"ping","x":"\xff"}', opcode=websocket.ABNF.OPCODE_TEXT)
    assert client.wait_closed() == 1007


def test_a_reserved_bit_closes_1002(client: WsClient) -> None:
    # RSV1 without a negotiated extension (permessage-deflate is declined).
    client.ws.send_frame(websocket.ABNF(fin=1, rsv1=1, opcode=websocket.ABNF.OPCODE_TEXT,
                                        data=b"{}"))
    assert client.wait_closed() == 1002


def test_the_clients_close_code_is_echoed(client: WsClient) -> None:
    client.ws.send_close(4100, b"bye")
    assert client.wait_closed() == 4100
