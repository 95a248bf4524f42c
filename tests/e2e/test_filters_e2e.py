"""Symbol filters end to end over 127.0.0.1: what a WebSocket client sees."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from engine.config import AccountConfig, FeedConfig, SimulatedConfig
from engine.market.symbol_info import SymbolOverride
from tests.conftest import make_config
from tests.e2e.wsclient import WsClient
from tickdesk import Engine


@pytest.fixture
def client(engine: Engine) -> Iterator[WsClient]:
    c = WsClient(engine.url)
    c.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
    c.reply("s")
    c.wait_for(lambda m: m["type"] == "MARKET_UPDATE")  # a last price is known
    yield c
    c.close()


def test_the_issue_order_is_rejected_lot_size(client: WsClient) -> None:
    # 1e-7 BTC written with 18 decimals: Binance answers "Filter failure: LOT_SIZE".
    client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                 "quantity": "0.000000100000000000", "id": "tiny"})
    reply = client.reply("tiny")
    assert reply["type"] == "ORDER_UPDATE" and reply["executionType"] == "REJECTED"
    assert reply["order"]["status"] == "REJECTED"
    assert reply["order"]["rejectReason"] == "Filter failure: LOT_SIZE"
    client.send({"action": "get_orders", "status": "all", "id": "g"})
    assert client.reply("g")["orders"] == []  # a rejected order is not kept
    client.send({"action": "get_positions", "id": "p"})
    assert client.reply("p")["positions"] == []


def test_a_valid_order_still_fills(client: WsClient) -> None:
    client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                 "quantity": "0.001", "id": "ok"})
    assert client.reply("ok")["executionType"] == "NEW"
    fill = client.wait_for(lambda m: m.get("executionType") == "TRADE")
    assert fill["order"]["status"] == "FILLED" and fill["order"]["quantity"] == 0.001


def test_oco_leg_off_the_tick_rejects_the_list(client: WsClient) -> None:
    last = client.wait_for(lambda m: m["type"] == "MARKET_UPDATE")["price"]
    client.send({"action": "place_oco", "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01",
                 "above": {"type": "LIMIT_MAKER", "price": str(round(last * 1.2, 2))},
                 "below": {"type": "STOP_LOSS", "stopPrice": f"{int(last * 0.8)}.005"},
                 "id": "oco"})
    msgs = [client.wait_for(lambda m: m.get("id") == "oco") for _ in range(3)]
    (lst,) = [m for m in msgs if m["type"] == "ORDER_LIST_UPDATE"]
    assert lst["list"]["status"] == "REJECTED"
    assert lst["list"]["rejectReason"] == "Filter failure: PRICE_FILTER"
    legs = [m for m in msgs if m["type"] == "ORDER_UPDATE"]
    assert [m["order"]["rejectReason"] for m in legs] == ["Filter failure: PRICE_FILTER"] * 2


def test_get_symbol_info_in_binances_names(client: WsClient) -> None:
    client.send({"action": "get_symbol_info", "symbol": "btcusdt", "id": "i"})
    info = client.reply("i")
    assert info["type"] == "SYMBOL_INFO" and info["symbol"] == "BTCUSDT"
    assert (info["baseAsset"], info["quoteAsset"], info["status"]) == ("BTC", "USDT", "TRADING")
    lot = next(f for f in info["filters"] if f["filterType"] == "LOT_SIZE")
    assert Decimal(lot["stepSize"]) == Decimal("0.000001")
    assert Decimal(lot["minQty"]) == Decimal("0.000001")
    assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL"} <= {
        f["filterType"] for f in info["filters"]}
    assert info["filtersSource"] == "snapshot" and isinstance(info["timestamp"], int)
    client.send({"action": "get_symbol_info", "symbol": "NOPEUSDT", "id": "n"})
    err = client.reply("n")
    assert err["type"] == "ERROR" and err["code"] == "UNKNOWN_SYMBOL"
    client.send({"action": "get_symbol_info", "id": "m"})
    assert client.reply("m")["code"] == "BAD_REQUEST"


def test_unknown_order_field_is_a_bad_request_naming_it(client: WsClient) -> None:
    client.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                 "quantity": "0.001", "price": "50000", "postOnly": True, "id": "u"})
    err = client.reply("u")
    assert err["type"] == "ERROR" and err["code"] == "BAD_REQUEST"
    assert "postOnly" in err["message"]
    client.send({"action": "get_orders", "id": "g"})
    assert client.reply("g")["orders"] == []


def test_anonymous_clients_may_ask_for_symbol_info_and_overrides_show() -> None:
    cfg = make_config(
        accounts=(AccountConfig(name="alice", token="a-long-token"),),
        symbols=(SymbolOverride(symbol="ETHUSDT", tick_size=Decimal("0.5")),),
        feed=FeedConfig(symbols=("ETHUSDT", "RUNEEUR"),
                        simulated=SimulatedConfig(seed=7, ticks_per_second=20)),
    )
    with Engine(cfg) as engine:
        c = WsClient(engine.url)
        try:
            assert c.recv()["account"] is None
            c.send({"action": "get_symbol_info", "symbol": "ETHUSDT", "id": 1})
            info = c.reply(1)
            price = next(f for f in info["filters"] if f["filterType"] == "PRICE_FILTER")
            assert Decimal(price["tickSize"]) == Decimal("0.5")
            assert info["filtersSource"] == "config"
            # a served symbol the snapshot does not know: served without filters
            c.send({"action": "get_symbol_info", "symbol": "RUNEEUR", "id": 2})
            rune = c.reply(2)
            assert rune["filters"] == [] and rune["filtersSource"] == "none"
            # placing still needs an account
            c.send({"action": "place_order", "symbol": "ETHUSDT", "side": "BUY",
                    "type": "MARKET", "quantity": "0.01", "id": 3})
            assert c.reply(3)["code"] == "UNAUTHORIZED"
        finally:
            c.close()
