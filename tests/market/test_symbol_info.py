"""Symbol exchange info: the shipped snapshot, parsing, overrides, the catalog."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config import FeedConfig
from engine.market.symbol_info import (
    LotSize,
    MinNotional,
    Notional,
    PercentPriceBySide,
    PriceFilter,
    SymbolInfoError,
    SymbolOverride,
    TrailingDelta,
    apply_override,
    build_catalog,
    load_snapshot,
    parse_exchange_info,
    parse_symbol,
)
from engine.protocol.server_messages import symbol_info

D = Decimal
ROOT = Path(__file__).resolve().parents[2]

# One entry as Binance answers today (format of the Spot API docs' examples).
ENTRY = {
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
    "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
         "tickSize": "0.01000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
         "stepSize": "0.00001000"},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "83.5",
         "stepSize": "0.00000000"},
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
         "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
         "maxTrailingBelowDelta": 2000},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
         "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ],
}


def test_parse_a_current_entry() -> None:
    info = parse_symbol(ENTRY)
    assert (info.symbol, info.status, info.base_asset, info.quote_asset) == (
        "BTCUSDT", "TRADING", "BTC", "USDT")
    assert info.price_filter == PriceFilter(D("0.01"), D("1000000"), D("0.01"))
    assert info.lot_size == LotSize(D("0.00001"), D("9000"), D("0.00001"))
    assert info.market_lot_size == LotSize(D(0), D("83.5"), D(0))
    assert info.trailing_delta == TrailingDelta(10, 2000, 10, 2000)
    assert info.percent_price_by_side == PercentPriceBySide(D(5), D("0.2"), D(5), D("0.2"), 5)
    assert info.notional == Notional(D(5), True, D(9000000), False, 5)
    assert [f["filterType"] for f in info.other_filters] == ["ICEBERG_PARTS", "MAX_NUM_ORDERS"]


def test_symbol_info_message_keeps_binances_names_and_round_trips() -> None:
    info = parse_symbol(ENTRY)
    wire = json.loads(symbol_info(info, 1, "i").payload)
    assert (wire["type"], wire["id"], wire["filtersSource"]) == ("SYMBOL_INFO", "i", "exchange")
    assert wire["baseAsset"] == "BTC" and wire["quoteAsset"] == "USDT"
    lot = next(f for f in wire["filters"] if f["filterType"] == "LOT_SIZE")
    assert lot == {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                   "stepSize": "0.00001000"}
    assert {f["filterType"] for f in wire["filters"]} == {f["filterType"] for f in ENTRY["filters"]}
    assert parse_symbol(json.loads(json.dumps(wire))) == info


@pytest.mark.parametrize(
    "bad",
    [
        {"filters": [{"filterType": "LOT_SIZE", "minQty": "x", "maxQty": "1", "stepSize": "1"}]},
        {"filters": [{"filterType": "LOT_SIZE", "minQty": "-1", "maxQty": "1", "stepSize": "1"}]},
        {"filters": [{"filterType": "PRICE_FILTER", "minPrice": "1"}]},
        {"filters": [{"minQty": "1"}]},
        {"filters": {}},
        {"symbol": ""},
        {"filters": [{"filterType": "NOTIONAL", "minNotional": "1", "applyMinToMarket": "yes",
                      "maxNotional": "0"}]},
    ],
)
def test_malformed_entries_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(SymbolInfoError):
        parse_symbol({**ENTRY, **bad})


def test_exchange_info_document_needs_symbols() -> None:
    with pytest.raises(SymbolInfoError):
        parse_exchange_info({"code": -1121, "msg": "Invalid symbol."})
    assert set(parse_exchange_info({"symbols": [ENTRY]})) == {"BTCUSDT"}


def test_snapshot_has_the_default_symbols_and_real_filters() -> None:
    snap = load_snapshot()
    for symbol in FeedConfig().symbols:
        info = snap[symbol]
        assert info.status == "TRADING" and info.quote_asset == "USDT"
        assert info.price_filter is not None and info.lot_size is not None
        assert info.min_notional is not None or info.notional is not None
        assert info.source == "snapshot"
    btc = snap["BTCUSDT"]
    assert btc.base_asset == "BTC"
    assert btc.lot_size == LotSize(D("0.000001"), D("9000"), D("0.000001"))
    assert btc.min_notional == MinNotional(D(10), True, 5)


def test_snapshot_covers_the_recorded_data_symbols() -> None:
    snap = load_snapshot()
    for symbol in ("NKNUSDT", "BLZETH", "LRCBTC", "CRVUSDT", "COMPUSDT", "OMGBUSD", "ZRXUSDT",
                   "ADABTC", "XRPETH"):
        assert symbol in snap, symbol


def test_snapshot_origin_is_documented() -> None:
    text = (ROOT / "engine" / "market" / "data" / "SOURCE.md").read_text(encoding="utf-8")
    assert "serverTime" in text and "1619681248636" in text
    doc = json.loads((ROOT / "engine" / "market" / "data" / "binance_exchange_info.json")
                     .read_text(encoding="utf-8"))
    assert doc["serverTime"] == 1619681248636


def test_override_changes_only_the_given_fields() -> None:
    info = parse_symbol(ENTRY)
    out = apply_override(info, SymbolOverride(symbol="BTCUSDT", tick_size=D("0.1"),
                                              max_qty=D(100), min_notional=D(10)))
    assert out.price_filter == PriceFilter(D("0.01"), D("1000000"), D("0.1"))
    assert out.lot_size == LotSize(D("0.00001"), D(100), D("0.00001"))
    assert out.notional == Notional(D(10), True, D(9000000), False, 5)
    assert out.trailing_delta == info.trailing_delta and out.source == "config"


def test_override_of_older_filters_replaces_them_keeping_their_values() -> None:
    old = load_snapshot()["BTCUSDT"]
    out = apply_override(old, SymbolOverride(symbol="BTCUSDT", max_notional=D(1000),
                                             ask_multiplier_up=D(2)))
    assert out.min_notional is None and out.percent_price is None
    assert out.notional == Notional(D(10), True, D(1000), False, 5)
    assert out.percent_price_by_side == PercentPriceBySide(D(5), D("0.2"), D(2), D("0.2"), 5)


def test_override_creates_a_missing_filter_with_no_limits_elsewhere() -> None:
    out = apply_override(None, SymbolOverride(symbol="FOOUSDT", step_size=D("0.1"),
                                              base_asset="FOO", quote_asset="USDT"))
    assert out.lot_size == LotSize(D(0), D(0), D("0.1"))
    assert out.price_filter is None and (out.base_asset, out.quote_asset) == ("FOO", "USDT")


def test_catalog_of_served_symbols() -> None:
    snap = load_snapshot()
    catalog, missing = build_catalog(["BTCUSDT", "RUNEEUR"], snap,
                                     [SymbolOverride(symbol="BTCUSDT", tick_size=D(1)),
                                      SymbolOverride(symbol="ETHUSDT", tick_size=D(1))])
    assert missing == ["RUNEEUR"]
    btc = catalog.get("BTCUSDT")
    assert btc is not None and btc.price_filter is not None
    assert btc.price_filter.tick_size == D(1)
    rune = catalog.get("RUNEEUR")
    assert rune is not None and rune.source == "none" and rune.lot_size is None
    assert catalog.get("ETHUSDT") is None  # not served
    # a symbol added later gets its override
    eth = catalog.add(snap["ETHUSDT"])
    assert eth.price_filter is not None and eth.price_filter.tick_size == D(1)
    strict, missing = build_catalog(["BTCUSDT", "RUNEEUR"], snap, permissive_missing=False)
    assert missing == ["RUNEEUR"] and "RUNEEUR" not in strict and "BTCUSDT" in strict
