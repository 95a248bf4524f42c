from __future__ import annotations

import pytest

from engine.errors import BadRequest, ProtocolError, UnknownAction
from engine.protocol.commands import decode_command


@pytest.mark.parametrize(
    ("frame", "binary", "code", "needle"),
    [
        (b"\xff\xfe", True, "BAD_REQUEST", "binary"),
        ("not json", False, "BAD_REQUEST", "JSON"),
        ('{"action":"ping","x":NaN}', False, "BAD_REQUEST", "NaN"),
        ('{"action":"ping","x":Infinity}', False, "BAD_REQUEST", "JSON"),
        ("[1,2]", False, "BAD_REQUEST", "object"),
        ('"ping"', False, "BAD_REQUEST", "object"),
        ("{}", False, "BAD_REQUEST", "action"),
        ('{"action":5}', False, "BAD_REQUEST", "action"),
        ('{"action":"fly"}', False, "UNKNOWN_ACTION", "fly"),
        ('{"action":"subscribe_ticker"}', False, "BAD_REQUEST", "symbol"),
        ('{"action":"subscribe_ticker","symbol":7}', False, "BAD_REQUEST", "symbol"),
        ('{"action":"subscribe_ticker","symbol":"BTC-USDT"}', False, "BAD_REQUEST", "symbol"),
        ('{"action":"get_orders","status":"closed"}', False, "BAD_REQUEST", "status"),
        ('{"action":"auth"}', False, "BAD_REQUEST", "token"),
        ('{"action":"cancel_order"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"cancel_order","orderId":"1"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"amend_order","newQty":"1"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"amend_order","orderId":1}', False, "BAD_REQUEST", "newQty"),
        ('{"action":"ping","id":true}', False, "BAD_REQUEST", "id"),
        ('{"action":"ping","id":"' + "x" * 65 + '"}', False, "BAD_REQUEST", "id"),
        ('{"action":"ping","id":[1]}', False, "BAD_REQUEST", "id"),
        ("[" * 5000 + "]" * 5000, False, "BAD_REQUEST", "JSON"),
    ],
)
def test_bad_frames_get_typed_errors(frame: str | bytes, binary: bool, code: str,
                                     needle: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_command(frame, binary=binary)
    assert info.value.code == code
    assert needle in info.value.message


def test_errors_carry_the_request_id_when_it_was_readable() -> None:
    with pytest.raises(UnknownAction) as info:
        decode_command('{"action":"fly","id":"abc"}')
    assert info.value.request_id == "abc"
    with pytest.raises(BadRequest) as info2:
        decode_command('{"action":"subscribe_ticker","id":9}')
    assert info2.value.request_id == 9


def test_symbols_are_case_insensitive() -> None:
    cmd = decode_command('{"action":"subscribe_ticker","symbol":"ethusdt","id":1}')
    assert cmd.symbol() == "ETHUSDT" and cmd.request_id == 1


def test_defaults() -> None:
    assert decode_command('{"action":"get_orders"}').body.get("status", "open") == "open"
    assert decode_command(b'{"action":"ping"}').action == "ping"


def test_amend_order_is_an_account_action() -> None:
    from engine.protocol.commands import ACCOUNT_ACTIONS
    from engine.protocol.enums import Action

    cmd = decode_command('{"action":"amend_order","orderId":3,"newQty":"0.5","id":1}')
    assert cmd.action == Action.AMEND_ORDER and cmd.action in ACCOUNT_ACTIONS
