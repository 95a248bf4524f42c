"""Which assets a symbol trades: its base and its quote asset.

Pure core; any thread (a pure function over constants).

:func:`symbol_assets` is the one place the ledger, the risk checks and the
valuation learn a symbol's assets. Until the symbol filters' exchange info is
available to it, it recognises the quote asset by suffix, longest first, from
:data:`QUOTE_ASSETS` (Binance's quote assets); a symbol with no known suffix
raises :class:`UnknownAssets`. Swapping in the exchange info is a change to
this function only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["QUOTE_ASSETS", "SymbolAssets", "UnknownAssets", "symbol_assets"]

#: Quote assets recognised by suffix (longest match wins: ``FDUSD`` before ``USD``).
QUOTE_ASSETS = (
    "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL",
    "JPY", "GBP", "AUD", "DAI", "XRP", "DOGE", "TRX", "SOL",
)
_BY_LENGTH = tuple(sorted(QUOTE_ASSETS, key=len, reverse=True))


class UnknownAssets(ValueError):
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
