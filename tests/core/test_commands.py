from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from engine.errors import BadRequest, ProtocolError, UnknownAction, UnknownSymbol
from engine.money import Side
from engine.protocol.commands import (
    PARSERS,
    AuthArgs,
    NoArgs,
    OrdersQuery,
    ResumeArgs,
    SymbolArgs,
    decode_command,
)
from engine.protocol.enums import Action
from engine.trading.errors import RequestError
from engine.trading.order import OrderType
from engine.trading.requests import CancelRequest, OrderRequest, parse_cancel


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
        ('{"action":"subscribe_ticker","symbol":"BTC-USDT"}', False, "UNKNOWN_SYMBOL", "symbol"),
        ('{"action":"subscribe_ticker","symbol":"B"}', False, "UNKNOWN_SYMBOL", "symbol"),
        ('{"action":"unsubscribe_ticker","symbol":""}', False, "UNKNOWN_SYMBOL", "symbol"),
        ('{"action":"place_order","symbol":"BTC/USDT","side":"BUY","type":"MARKET",'
         '"quantity":1}', False, "UNKNOWN_SYMBOL", "symbol"),
        ('{"action":"place_order","symbol":["BTCUSDT"],"side":"BUY","type":"MARKET",'
         '"quantity":1}', False, "BAD_REQUEST", "symbol"),
        ('{"action":"place_order","symbol":"BTCUSDT","side":"BUY","type":"MARKET"}', False,
         "BAD_REQUEST", "quantity"),
        ('{"action":"place_oco","symbol":"BTCUSDT","side":"SELL","quantity":1}', False,
         "BAD_REQUEST", "above"),
        ('{"action":"place_bracket","symbol":"x","side":"BUY","quantity":1}', False,
         "UNKNOWN_SYMBOL", "symbol"),
        ('{"action":"get_orders","status":"closed"}', False, "BAD_REQUEST", "status"),
        ('{"action":"get_symbol_info"}', False, "BAD_REQUEST", "symbol"),
        ('{"action":"get_symbol_info","symbol":["BTCUSDT"]}', False, "BAD_REQUEST", "symbol"),
        ('{"action":"auth"}', False, "BAD_REQUEST", "token"),
        ('{"action":"cancel_order"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"cancel_order","orderId":"1"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"amend_order","newQty":"1"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"amend_order","orderId":1}', False, "BAD_REQUEST", "newQty"),
        ('{"action":"cancel_order","orderId":"12"}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"cancel_order","orderId":12.0}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"cancel_order","orderId":true}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"cancel_order","orderId":0}', False, "BAD_REQUEST", "orderId"),
        ('{"action":"cancel_order","listId":"3"}', False, "BAD_REQUEST", "listId"),
        ('{"action":"cancel_order","orderId":1,"listId":2}', False, "BAD_REQUEST", "listId"),
        ('{"action":"cancel_order","clientOrderId":"a b"}', False, "BAD_REQUEST",
         "clientOrderId"),
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
    assert cmd.args == SymbolArgs("ETHUSDT") and cmd.request_id == 1


def test_non_ascii_letters_never_upper_case_into_a_symbol() -> None:
    # "\u0131".upper() is "I": without the ASCII rule this would subscribe to BITUSDT
    with pytest.raises(UnknownSymbol):
        decode_command('{"action":"subscribe_ticker","symbol":"b\u0131tusdt"}')


def test_a_symbol_error_carries_the_request_id() -> None:
    with pytest.raises(UnknownSymbol) as info:
        decode_command('{"action":"place_order","symbol":"BTC-USDT","side":"BUY",'
                       '"type":"MARKET","quantity":1,"id":"o1"}')
    assert info.value.request_id == "o1"


def test_defaults() -> None:
    assert decode_command('{"action":"get_orders"}').args == OrdersQuery(include_closed=False)
    assert decode_command('{"action":"get_orders","status":"all"}').args == OrdersQuery(True)
    ping = decode_command(b'{"action":"ping"}')
    assert ping.action is Action.PING and ping.args == NoArgs()


def test_cancel_order_has_one_validator() -> None:
    """The frame of issue 10: the decoder and the order parser used to disagree on it.
    orderId is a JSON integer, as the server sends it; the one parser refuses a string."""
    with pytest.raises(BadRequest) as info:
        decode_command('{"action":"cancel_order","orderId":"12"}')
    assert "orderId" in info.value.message
    with pytest.raises(RequestError):
        parse_cancel({"orderId": "12"})
    assert decode_command('{"action":"cancel_order","orderId":12}').args == CancelRequest(
        order_id=12)
    assert PARSERS[Action.CANCEL_ORDER] is parse_cancel


def test_trading_commands_decode_to_their_typed_requests() -> None:
    cmd = decode_command('{"action":"place_order","symbol":"btcusdt","side":"SELL",'
                         '"type":"LIMIT","quantity":"0.5","price":41000,"id":7}')
    assert isinstance(cmd.args, OrderRequest)
    assert (cmd.args.symbol, cmd.args.side, cmd.args.type) == ("BTCUSDT", Side.SELL,
                                                              OrderType.LIMIT)
    assert cmd.args.quantity == Decimal("0.5") and cmd.request_id == 7
    auth = decode_command('{"action":"auth","token":"t0k"}')
    assert auth.args == AuthArgs("t0k")


def test_every_action_has_exactly_one_parser() -> None:
    assert set(PARSERS) == set(Action)


def test_get_symbol_info_decodes_its_symbol() -> None:
    cmd = decode_command('{"action":"get_symbol_info","symbol":"ethusdt","id":3}')
    assert (cmd.action, cmd.request_id, cmd.args) == (Action.GET_SYMBOL_INFO, 3,
                                                      SymbolArgs("ETHUSDT"))
def test_amend_order_decodes_to_its_request_and_needs_an_account() -> None:
    from engine.protocol.commands import ACCOUNT_ACTIONS
    from engine.trading.requests import AmendRequest

    cmd = decode_command('{"action":"amend_order","orderId":3,"newQty":"0.5","id":1}')
    assert cmd.action is Action.AMEND_ORDER and cmd.action in ACCOUNT_ACTIONS
    assert cmd.args == AmendRequest(Decimal("0.5"), order_id=3)


def test_resume_takes_an_optional_session_of_32_hex_digits_lower_cased() -> None:
    def frame(**fields: object) -> bytes:
        return orjson.dumps({"action": "resume", "epoch": "e1", "seq": 0, "id": 7, **fields})

    assert decode_command(frame()).args == ResumeArgs("e1", 0, None)
    assert decode_command(frame(session="AB" * 16)).args == ResumeArgs("e1", 0, "ab" * 16)
    for bad in ("ab", "g" * 32, "ab" * 17, False, 1, ["ab" * 16]):
        with pytest.raises(BadRequest) as info:
            decode_command(frame(session=bad))
        assert "session" in str(info.value) and info.value.request_id == 7
