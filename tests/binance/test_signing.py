"""Signing as Binance checks it, against the worked example of Binance's API docs."""

from __future__ import annotations

import pytest

from engine.binance.errors import BinanceError
from engine.binance.signing import (
    ApiKey,
    check_timestamp,
    signed_payload,
    verify_key,
    verify_signature,
)

# Binance's "SIGNED endpoint examples for POST /api/v3/order" (HMAC keys).
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PARAMS = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
          "&recvWindow=5000&timestamp=1499827319559")
SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_the_docs_example_verifies_in_the_query_in_the_body_and_mixed() -> None:
    verify_signature(SECRET, f"{PARAMS}&signature={SIGNATURE}", "")
    verify_signature(SECRET, "", f"{PARAMS}&signature={SIGNATURE}")
    # Example 3: part in the query, part in the body, concatenated without '&'
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    mixed = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    verify_signature(SECRET, query + f"&signature={mixed}", body)


@pytest.mark.parametrize(("query", "code"), [
    (PARAMS, -1102),                                             # no signature
    (f"{PARAMS}&signature={'0' * 64}", -1022),                   # wrong
    (f"{PARAMS}&signature=nothex", -1022),
    (f"{PARAMS.replace('quantity=1', 'quantity=2')}&signature={SIGNATURE}", -1022),  # tampered
])
def test_bad_signatures_are_refused(query: str, code: int) -> None:
    with pytest.raises(BinanceError) as info:
        verify_signature(SECRET, query, "")
    assert info.value.code == code


def test_a_signature_given_twice_is_refused() -> None:
    with pytest.raises(BinanceError):
        signed_payload(f"signature={SIGNATURE}", f"a=1&signature={SIGNATURE}")


def test_keys() -> None:
    keys = {"key-of-alice": ApiKey("alice", "s" * 8)}
    assert verify_key("key-of-alice", keys).account == "alice"
    for header, code in ((None, -2014), ("", -2014), ("bad key!", -2014),
                         ("key-of-bob", -2015)):
        with pytest.raises(BinanceError) as info:
            verify_key(header, keys)
        assert info.value.code == code
        assert info.value.status == 401


@pytest.mark.parametrize(("ts", "window", "ok"), [
    (10_000, None, True),
    (5_000, None, True),        # exactly 5000 ms old: inside the default window
    (4_999, None, False),       # older than the default 5000 ms
    (4_999, "6000", True),
    (10_999, None, True),       # less than 1000 ms ahead
    (11_000, None, False),      # 1000 ms ahead
])
def test_the_timestamp_window(ts: int, window: str | None, ok: bool) -> None:
    if ok:
        check_timestamp(str(ts), window, 10_000)
    else:
        with pytest.raises(BinanceError) as info:
            check_timestamp(str(ts), window, 10_000)
        assert info.value.code == -1021


def test_timestamp_and_window_must_be_well_formed() -> None:
    for ts, window, code in ((None, None, -1102), ("abc", None, -1130),
                             ("10000", "70000", -1131), ("10000", "x", -1130)):
        with pytest.raises(BinanceError) as info:
            check_timestamp(ts, window, 10_000)
        assert info.value.code == code
