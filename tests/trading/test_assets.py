"""A symbol's base and quote asset (engine.trading.assets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.trading.assets import SymbolAssets, UnknownAssets, assets_from, symbol_assets


def test_the_quote_is_the_longest_known_suffix() -> None:
    assert symbol_assets("LRCBTC") == SymbolAssets("LRC", "BTC")
    assert symbol_assets("NKNUSDT") == SymbolAssets("NKN", "USDT")
    assert symbol_assets("BTCFDUSD") == SymbolAssets("BTC", "FDUSD")
    assert symbol_assets("PAXGUSDT") == SymbolAssets("PAXG", "USDT")
    with pytest.raises(UnknownAssets):
        symbol_assets("ABCXYZ")
    with pytest.raises(UnknownAssets):
        symbol_assets("USDT")  # a quote alone has no base


@dataclass(frozen=True)
class Info:
    base_asset: str
    quote_asset: str


def test_exchange_info_wins_and_the_suffix_is_only_a_fallback() -> None:
    infos = {"WEIRDPAIR": Info("WEIRD", "PAIR"), "NOINFOUSDT": Info("", "")}
    lookup = assets_from(infos.get)
    assert lookup("WEIRDPAIR") == SymbolAssets("WEIRD", "PAIR")
    assert lookup("NOINFOUSDT") == SymbolAssets("NOINFO", "USDT")  # info names no assets
    assert lookup("ETHBTC") == SymbolAssets("ETH", "BTC")  # no info at all
