"""The WebSocket API slice (``/ws-api/v3``): Binance's signature rule checked
against a signature made independently (hmac over the sorted, URL-encoded
parameters, as Binance documents), and every refusal with Binance's code."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.binance.ws_api import WsApiCode, WsApiError, check_signature, decode
from tests.binance.helpers import ALICE_KEY, ALICE_SECRET, accounts_config, signed
from tests.e2e.wsclient import WsClient
from tickdesk import Engine

NOW = 1_700_000_000_000



def test_a_good_signature_passes() -> None:
    check_signature(signed("s", apiKey="k", timestamp=NOW - 10), "s", NOW)
    check_signature(signed("s", apiKey="k", timestamp=NOW - 59_000, recvWindow=60_000),
                    "s", NOW)


@pytest.mark.parametrize(("params", "code"), [
    (signed("other", apiKey="k", timestamp=NOW), WsApiCode.INVALID_SIGNATURE),
    (signed("s", apiKey="k", timestamp=NOW - 5001), WsApiCode.INVALID_TIMESTAMP),
    (signed("s", apiKey="k", timestamp=NOW + 1000), WsApiCode.INVALID_TIMESTAMP),
    (signed("s", apiKey="k", timestamp=NOW, recvWindow=60001), WsApiCode.BAD_PARAMETER),
    ({"apiKey": "k", "timestamp": NOW}, WsApiCode.BAD_PARAMETER),
    ({"apiKey": "k", "signature": "x"}, WsApiCode.BAD_PARAMETER),
])
def test_bad_signatures(params: dict[str, Any], code: WsApiCode) -> None:
    with pytest.raises(WsApiError) as info:
        check_signature(params, "s", NOW)
    assert info.value.code is code


def test_decode_refuses_unknown_methods_and_bad_json() -> None:
    with pytest.raises(WsApiError) as info:
        decode(b'{"id": 1, "method": "order.place", "params": {}}')
    assert (info.value.code, info.value.request_id) == (WsApiCode.UNSUPPORTED_OPERATION, 1)
    with pytest.raises(WsApiError) as info:
        decode(b"{")
    assert info.value.code is WsApiCode.INVALID_JSON


def test_over_the_wire() -> None:
    engine = Engine(accounts_config()).start()
    c = WsClient(f"ws://127.0.0.1:{engine.port}/ws-api/v3")
    try:
        c.send({"id": "a", "method": "ping"})
        assert c.recv() == {"id": "a", "status": 200, "result": {}}
        c.send({"id": "b", "method": "userDataStream.subscribe.signature",
                "params": signed(ALICE_SECRET, apiKey="nope", timestamp=int(time.time() * 1000))})
        refused = c.recv()
        assert (refused["status"], refused["error"]["code"]) == (401, -2015)
        c.send({"id": "c", "method": "userDataStream.subscribe.signature",
                "params": signed("wrong", apiKey=ALICE_KEY, timestamp=int(time.time() * 1000))})
        assert c.recv()["error"]["code"] == -1022
        c.send({"id": "d", "method": "session.subscriptions"})
        assert c.recv()["result"] == []  # the refusals changed nothing
        c.send({"id": "e", "method": "userDataStream.subscribe.signature",
                "params": signed(ALICE_SECRET, apiKey=ALICE_KEY,
                                  timestamp=int(time.time() * 1000))})
        assert c.recv() == {"id": "e", "status": 200, "result": {"subscriptionId": 0}}
        c.send({"id": "f", "method": "userDataStream.unsubscribe",
                "params": {"subscriptionId": 0}})
        assert c.recv() == {"id": "f", "status": 200, "result": {}}
    finally:
        c.close()
        engine.stop()
