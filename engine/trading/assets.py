"""Which assets a symbol trades: its base and its quote asset.

Pure core; any thread (a pure function over constants).

:func:`symbol_assets` is the one place the ledger, the risk checks and the
valuation learn a symbol's assets. Until the symbol filters' exchange info is
available to it, it recognises the quote asset by suffix, longest first, from
:data:`QUOTE_ASSETS` (Binance's quote assets); a symbol with no known suffix
raises :class:`UnknownAssets` (the OrderMonitorActor refuses orders for such
a symbol with ``UNKNOWN_SYMBOL``). Swapping in the exchange info is a change
to this function only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from engine.errors import TickdeskError

__all__ = ["QUOTE_ASSETS", "AssetInfo", "SymbolAssets", "UnknownAssets", "assets_from",
           "symbol_assets"]

#: Quote assets recognised by suffix (longest match wins: ``FDUSD`` before ``USD``).
QUOTE_ASSETS = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "BTC", "ETH", "BNB", "EUR", "EURI",
    "AEUR", "TRY", "BRL", "JPY", "GBP", "AUD", "ARS", "MXN", "PLN", "RON", "ZAR", "UAH",
    "IDRT", "BIDR", "COP", "CZK", "DAI", "XRP", "DOGE", "TRX", "SOL", "PAXG",
)
_BY_LENGTH = tuple(sorted(QUOTE_ASSETS, key=len, reverse=True))


class UnknownAssets(TickdeskError):
    """The symbol's base and quote asset are not known."""


@dataclass(frozen=True, slots=True)
class SymbolAssets:
    base: str
    quote: str


@lru_cache(maxsize=4096)
def symbol_assets(symbol: str) -> SymbolAssets:
    """The base and quote asset of ``symbol`` (``LRCBTC`` -> ``LRC``, ``BTC``)."""
    for quote in _BY_LENGTH:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return SymbolAssets(symbol[: -len(quote)], quote)
    raise UnknownAssets(f"the assets of {symbol} are not known")


class AssetInfo(Protocol):
    """What :func:`assets_from` reads of a symbol's exchange info."""

    @property
    def base_asset(self) -> str: ...
    @property
    def quote_asset(self) -> str: ...


def assets_from(
    info_of: Callable[[str], AssetInfo | None],
) -> Callable[[str], SymbolAssets]:
    """A lookup that takes a symbol's assets from its exchange info
    (``info_of(symbol)``, e.g. a symbol catalog's ``get``), and only for a
    symbol whose info names none (no exchange info known) from
    :func:`symbol_assets`."""

    def lookup(symbol: str) -> SymbolAssets:
        info = info_of(symbol)
        if info is not None and info.base_asset and info.quote_asset:
            return SymbolAssets(info.base_asset, info.quote_asset)
        return symbol_assets(symbol)

    return lookup
