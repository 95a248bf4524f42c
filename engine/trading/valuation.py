"""What one unit of an asset is worth in another, at the last prices.

Pure core; run by whoever owns the marks (the PortfolioActor's thread).

:func:`rate` values ``asset`` in ``home`` from the marks (symbol -> last
fresh trade price): 1 for the home asset itself; else the direct pair
(``asset``/``home``, e.g. BTCUSDT for BTC in USDT); else the inverse pair
(``home``/``asset``: 1 / price); else one hop through another asset ``X``
that has a pair with both (LRC in USDT through LRCBTC and BTCUSDT). An asset
with no such path has no rate (None): it is listed as *unvalued* and never
summed into an equity. :func:`account_value` values a whole account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

from engine.money import MONEY, ZERO
from engine.trading.assets import UnknownAssets, symbol_assets
from engine.trading.ledger import LEDGER, AssetsFn, Ledger

__all__ = ["AccountValue", "AssetValue", "account_value", "pair_prices", "rate"]

_ONE = Decimal(1)


def pair_prices(marks: Mapping[str, Decimal],
                assets_of: AssetsFn = symbol_assets) -> dict[tuple[str, str], Decimal]:
    """``(base, quote) -> price`` for every marked symbol whose assets are known."""
    out: dict[tuple[str, str], Decimal] = {}
    for symbol, price in marks.items():
        try:
            assets = assets_of(symbol)
        except UnknownAssets:
            continue
        if price > 0:
            out[(assets.base, assets.quote)] = price
    return out


def _direct(pairs: Mapping[tuple[str, str], Decimal], a: str, b: str) -> Decimal | None:
    if a == b:
        return _ONE
    price = pairs.get((a, b))
    if price is not None:
        return price
    inverse = pairs.get((b, a))
    if inverse is not None:
        with localcontext(MONEY):
            return _ONE / inverse
    return None


def rate(asset: str, home: str, pairs: Mapping[tuple[str, str], Decimal]) -> Decimal | None:
    """One ``asset`` in ``home`` (see the module docstring), or None."""
    found = _direct(pairs, asset, home)
    if found is not None:
        return found
    hops = sorted({q for b, q in pairs if b == asset} | {b for b, q in pairs if q == asset})
    for via in hops:
        first = _direct(pairs, asset, via)
        second = _direct(pairs, via, home)
        if first is not None and second is not None:
            with localcontext(MONEY):
                return first * second
    return None


@dataclass(frozen=True, slots=True)
class AssetValue:
    """One asset of an account: ``free + locked == total``; ``value`` is
    ``total`` in the home asset (None: no rate)."""

    asset: str
    free: Decimal
    locked: Decimal
    total: Decimal
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class AccountValue:
    """An account valued in its home asset at the last prices. Sums include
    only valued assets; ``unvalued`` lists the assets with a non-zero balance
    or unrealized P&L and no rate."""

    home_asset: str
    assets: tuple[AssetValue, ...]
    equity: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal
    unvalued: tuple[str, ...]


def account_value(ledger: Ledger, marks: Mapping[str, Decimal]) -> AccountValue:
    """Value ``ledger`` in its home asset (see :class:`AccountValue`)."""
    pairs = pair_prices(marks, ledger.assets_of)
    home = ledger.home_asset
    rows: list[AssetValue] = []
    unvalued: list[str] = []
    equity = unrealized = realized = fees = ZERO
    with localcontext(LEDGER):
        for asset in ledger.assets():
            total = ledger.balance_of(asset)
            locked = ledger.locked(asset)
            open_pnl = ledger.unrealized_in(asset, marks)
            r = rate(asset, home, pairs)
            if r is None:
                if total or open_pnl:
                    unvalued.append(asset)
            else:
                equity += (total + open_pnl) * r
                unrealized += open_pnl * r
                realized += ledger.realized.get(asset, ZERO) * r
                fees += ledger.fees.get(asset, ZERO) * r
            rows.append(AssetValue(asset, total - locked, locked, total,
                                   None if r is None else total * r))
    return AccountValue(home, tuple(rows), equity, unrealized, realized, fees, tuple(unvalued))
