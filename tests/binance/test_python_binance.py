"""python-binance, unchanged, against a live engine on 127.0.0.1: its
BinanceSocketManager with only ``STREAM_URL`` pointed at the daemon receives the
trade, aggTrade, bookTicker and combined streams as it would from Binance."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.binance.helpers import ALICE_KEY, ALICE_SECRET, Rest, accounts_config
from tests.conftest import timeout, wait_until
from tickdesk import Engine

binance = pytest.importorskip("binance", reason="python-binance is in the test extra")
from binance import AsyncClient, BinanceSocketManager  # noqa: E402


def _run(engine: Engine, body: Callable[[BinanceSocketManager], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = AsyncClient()  # no keys, no REST call: streams only
        try:
            bm = BinanceSocketManager(client)
            bm.STREAM_URL = f"ws://127.0.0.1:{engine.port}/"
            return await asyncio.wait_for(body(bm), timeout(15))
        finally:
            await client.close_connection()
    return asyncio.run(main())


async def _first(socket: Any, n: int = 1) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with socket as stream:
        while len(out) < n:
            msg = await stream.recv()
            if msg is not None:
                out.append(msg)
    return out


def test_trade_socket(engine: Engine) -> None:
    msgs = _run(engine, lambda bm: _first(bm.trade_socket("BTCUSDT"), 3))
    assert all(m["e"] == "trade" and m["s"] == "BTCUSDT" for m in msgs)
    assert all(Decimal(m["p"]) > 0 for m in msgs)


def test_aggtrade_and_book_ticker_sockets(engine: Engine) -> None:
    agg = _run(engine, lambda bm: _first(bm.aggtrade_socket("ETHUSDT")))[0]
    assert agg["e"] == "aggTrade" and agg["s"] == "ETHUSDT"
    book = _run(engine, lambda bm: _first(bm.symbol_book_ticker_socket("ETHUSDT")))[0]
    assert book["s"] == "ETHUSDT" and Decimal(book["b"]) < Decimal(book["a"])


def test_kline_socket(engine: Engine) -> None:
    msgs = _run(engine, lambda bm: _first(bm.kline_socket("BTCUSDT", "1m"), 2))
    for m in msgs:
        k = m["k"]
        assert m["e"] == "kline" and k["s"] == "BTCUSDT" and k["i"] == "1m"
        assert Decimal(k["l"]) <= Decimal(k["c"]) <= Decimal(k["h"])


def test_multiplex_socket(engine: Engine) -> None:
    msgs = _run(engine, lambda bm: _first(bm.multiplex_socket(
        ["btcusdt@trade", "ethusdt@bookTicker"]), 6))
    assert {m["stream"] for m in msgs} <= {"btcusdt@trade", "ethusdt@bookTicker"}
    assert all(m["data"]["s"] in ("BTCUSDT", "ETHUSDT") for m in msgs)


def test_user_socket_receives_the_execution_report_of_a_rest_order_fill(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """python-binance's ``user_socket`` subscribes on the WebSocket API
    (``userDataStream.subscribe.signature``, HMAC-signed with the account's
    secret); the bot places a MARKET order over REST (``create_order``) and its
    fill arrives as Binance's executionReport, with the order's id."""
    engine = Engine(accounts_config()).start()
    monkeypatch.setattr(AsyncClient, "WS_API_URL", f"ws://127.0.0.1:{engine.port}/ws-api/v3")

    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        client = AsyncClient(ALICE_KEY, ALICE_SECRET)
        client.API_URL = f"http://127.0.0.1:{engine.port}/api"
        try:
            bm = BinanceSocketManager(client)
            bm.STREAM_URL = f"ws://127.0.0.1:{engine.port}/"
            got: list[dict[str, Any]] = []
            async with bm.user_socket() as stream:
                placed = await client.create_order(symbol="BTCUSDT", side="BUY",
                                                   type="MARKET", quantity="0.001")
                while not any(m.get("x") == "TRADE" for m in got):
                    msg = await stream.recv()
                    if msg:
                        got.append(msg)
            return placed, got
        finally:
            await client.close_connection()

    try:
        rest = Rest(engine.port)
        wait_until(lambda: rest.public("GET", "/api/v3/ticker/price",
                                       symbol="BTCUSDT").status_code == 200,
                   10, "a first BTCUSDT price")
        placed, events = asyncio.run(asyncio.wait_for(main(), timeout(20)))
    finally:
        engine.stop()
    reports = [m for m in events if m.get("e") == "executionReport"]
    assert [r["x"] for r in reports] == ["NEW", "TRADE"]
    assert all(r["i"] == placed["orderId"] for r in reports)
    assert all(r["c"] == placed["clientOrderId"] for r in reports)
    assert reports[-1]["X"] == "FILLED" and Decimal(reports[-1]["z"]) == Decimal("0.001")
