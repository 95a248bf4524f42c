"""Fuzzing decode_command: whatever arrives, only ProtocolError subclasses come out.

Random bytes and text, arbitrary JSON (NaN, Infinity, huge and tiny numbers,
deep nesting), command-shaped objects with unknown actions and fields of the
wrong type. A decoded command always has a known action and a valid id.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ProtocolError
from engine.protocol.commands import PARSERS, Command, decode_command
from engine.protocol.enums import Action

#: Example counts per test: flat inputs get many, structured ones fewer (each
#: costs ~20 ms to generate on a loaded 2-vCPU machine). Raise them when hunting.
_QUICK = {"deadline": None,
          "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
FLAT = settings(max_examples=1000, **_QUICK)  # type: ignore[arg-type]
STRUCTURED = settings(max_examples=300, **_QUICK)  # type: ignore[arg-type]
#: decode_command validates shape only (a non-symbol string in ``symbol`` is UNKNOWN_SYMBOL)
CODES = {"BAD_REQUEST", "UNKNOWN_ACTION", "UNKNOWN_SYMBOL"}
FIELDS = ["action", "id", "symbol", "token", "status", "orderId", "clientOrderId", "side",
          "type", "quantity", "price", "stopPrice", "trailingDelta", "legs", "listId", "above",
          "below", "entry", "takeProfit", "stopLoss"]


def _check(frame: str | bytes, binary: bool = False) -> Command | None:
    try:
        cmd = decode_command(frame, binary=binary)
    except ProtocolError as exc:
        assert exc.code in CODES
        assert isinstance(exc.message, str) and exc.message
        assert exc.request_id is None or isinstance(exc.request_id, (str, int))
        return None
    assert isinstance(cmd.action, Action)
    assert isinstance(cmd.args, type(PARSERS[cmd.action](cmd.body)))  # the one parser
    rid = cmd.request_id
    assert rid is None or (isinstance(rid, str) and len(rid) <= 64) or (
        isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) < 2**53)
    return cmd


huge_ints = st.builds(lambda sign, exp, low: sign * (10**exp + low),
                      st.sampled_from([1, -1]), st.integers(15, 400), st.integers(0, 99))
numbers = st.one_of(
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=80))
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=10))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(keys, inner, max_size=6)),
    max_leaves=12,
)
actions = st.one_of(st.sampled_from(sorted(Action)), st.text(max_size=60), scalars)


def command_shaped() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda action, rest: {"action": action, **rest}, actions,
                     st.dictionaries(st.sampled_from(FIELDS[1:]), json_values, max_size=6))


@FLAT
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes(frame: bytes, binary: bool) -> None:
    _check(frame, binary)


@FLAT
@given(st.text(max_size=300))
def test_random_text(frame: str) -> None:
    _check(frame)


@STRUCTURED
@given(json_values)
def test_any_json_value(value: Any) -> None:
    # json.dumps writes NaN / Infinity / huge integers, which JSON forbids or orjson refuses
    _check(json.dumps(value))


@STRUCTURED
@given(command_shaped())
def test_command_shaped_objects(obj: dict[str, Any]) -> None:
    _check(json.dumps(obj))


@STRUCTURED
@given(command_shaped(), st.data())
def test_mangled_command_text(obj: dict[str, Any], data: st.DataObject) -> None:
    text = json.dumps(obj)
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=5))
    _check(text[:cut] + junk + text[cut:])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200_000), st.sampled_from(["[", '{"a":', '{"action":"ping","x":[']))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = {"[": "]", '{"a":': "}", '{"action":"ping","x":[': "]"}[opener]
    assert _check(opener * depth + "1" + closer * depth) is None or depth < 1024


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.sampled_from(["", "-", "0.", "1e", "1e-"]))
def test_huge_numbers_in_every_field(digits: int, prefix: str) -> None:
    number = prefix + "9" * digits
    for field in ("id", "orderId", "quantity", "symbol", "action"):
        _check(f'{{"action":"cancel_order","{field}":{number}}}')


def test_known_answers() -> None:
    assert _check('{"action":"ping","id":9007199254740991}') is not None
    assert _check('{"action":"ping","id":9007199254740992}') is None
    assert _check('{"action":"ping","n":NaN}') is None
    assert _check('{"action":"ping","n":-Infinity}') is None
    assert _check(b'\xff\xfe{"action":"ping"}') is None
    assert _check('{"action":"ping"}', binary=True) is None
    assert _check('{"action":"cancel_order","orderId":1e400}') is None
    for depth in (1023, 1024, 100_000):
        _check("[" * depth + "]" * depth)
        _check('{"a":' * depth + "1" + "}" * depth)
