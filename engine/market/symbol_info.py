"""A symbol's exchange information: assets, status, precisions and filters.

Pure core: no threads, sockets, clocks or pykka. :class:`SymbolInfo` is a
frozen value parsed from one entry of Binance's
``GET /api/v3/exchangeInfo`` ``symbols`` array (:func:`parse_symbol`,
:func:`parse_exchange_info`), from the snapshot shipped in
``engine/market/data/binance_exchange_info.json`` (:func:`load_snapshot`),
and changed per symbol by ``[[symbols]]`` in config.toml
(:func:`apply_override`). ``SYMBOL_INFO``
(:func:`engine.protocol.server_messages.symbol_info`) gives it back in
Binance's field names.

The filters the engine applies are typed (:class:`PriceFilter`,
:class:`LotSize`, ...; the rules are in :mod:`engine.trading.filters`).
Every other filter Binance sends (``ICEBERG_PARTS``, ``MAX_NUM_ORDERS``...)
is kept as received in :attr:`SymbolInfo.other_filters`, shown, not applied.
As Binance documents, a value of 0 means "no limit" for that rule.

:class:`SymbolCatalog` maps symbols to their info. It is shared by the
threads that read it (order monitor, connections) and the ones that add to it
(the engine at start, the feed when a symbol is added live): every change
replaces one dictionary entry with a new frozen value, a single atomic
operation, so readers need no lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.errors import TickdeskError

__all__ = [
    "OVERRIDE_FIELDS",
    "SNAPSHOT_RESOURCE",
    "LotSize",
    "MinNotional",
    "Notional",
    "PercentPrice",
    "PercentPriceBySide",
    "PriceFilter",
    "SymbolCatalog",
    "SymbolInfo",
    "SymbolInfoError",
    "SymbolOverride",
    "apply_override",
    "build_catalog",
    "load_snapshot",
    "parse_exchange_info",
    "parse_symbol",
    "permissive",
]

#: The shipped snapshot, inside the ``engine.market`` package.
SNAPSHOT_RESOURCE = "data/binance_exchange_info.json"


class SymbolInfoError(TickdeskError):
    """An exchangeInfo document (or one of its symbols) is malformed."""


@dataclass(frozen=True, slots=True)
class PriceFilter:
    """``PRICE_FILTER``: bounds and tick of ``price`` and ``stopPrice``."""

    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal


@dataclass(frozen=True, slots=True)
class PercentPrice:
    """``PERCENT_PRICE``: ``price`` within multiples of the average price."""

    multiplier_up: Decimal
    multiplier_down: Decimal
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class PercentPriceBySide:
    """``PERCENT_PRICE_BY_SIDE``: as PERCENT_PRICE, one range per side."""

    bid_multiplier_up: Decimal
    bid_multiplier_down: Decimal
    ask_multiplier_up: Decimal
    ask_multiplier_down: Decimal
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class LotSize:
    """``LOT_SIZE`` and ``MARKET_LOT_SIZE``: bounds and step of ``quantity``."""

    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal


@dataclass(frozen=True, slots=True)
class MinNotional:
    """``MIN_NOTIONAL`` (older symbols): ``price × quantity >= minNotional``."""

    min_notional: Decimal
    apply_to_market: bool
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class Notional:
    """``NOTIONAL``: ``minNotional <= price × quantity <= maxNotional``."""

    min_notional: Decimal
    apply_min_to_market: bool
    max_notional: Decimal
    apply_max_to_market: bool
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class TrailingDelta:
    """``TRAILING_DELTA``: bounds of ``trailingDelta`` (basis points)."""

    min_trailing_above_delta: int
    max_trailing_above_delta: int
    min_trailing_below_delta: int
    max_trailing_below_delta: int


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    base_asset_precision: int = 8
    quote_asset_precision: int = 8
    price_filter: PriceFilter | None = None
    percent_price: PercentPrice | None = None
    percent_price_by_side: PercentPriceBySide | None = None
    lot_size: LotSize | None = None
    market_lot_size: LotSize | None = None
    min_notional: MinNotional | None = None
    notional: Notional | None = None
    trailing_delta: TrailingDelta | None = None
    #: Filters received but not applied, as received (JSON objects).
    other_filters: tuple[Mapping[str, Any], ...] = ()
    #: Where the filters came from: ``snapshot``, ``exchange``, ``config`` or
    #: ``none`` (a symbol with no known filters: nothing beyond the request checks).
    source: str = "snapshot"




# ------------------------------------------------------------------ parsing


def _dec(f: Mapping[str, Any], key: str) -> Decimal:
    raw = f.get(key)
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise SymbolInfoError(f"{f.get('filterType')}.{key} must be a number")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise SymbolInfoError(f"{f.get('filterType')}.{key} is not a number: {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise SymbolInfoError(f"{f.get('filterType')}.{key} must be finite and >= 0")
    return value


def _int(f: Mapping[str, Any], key: str, default: int | None = None) -> int:
    raw = f.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise SymbolInfoError(f"{f.get('filterType')}.{key} must be an integer >= 0")
    return raw


def _bool(f: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    raw = f.get(key, default)
    if not isinstance(raw, bool):
        raise SymbolInfoError(f"{f.get('filterType')}.{key} must be true or false")
    return raw


def _str(entry: Mapping[str, Any], key: str) -> str:
    raw = entry.get(key)
    if not isinstance(raw, str) or not raw:
        raise SymbolInfoError(f"{key} must be a non-empty string")
    return raw


def parse_symbol(entry: Mapping[str, Any], source: str = "exchange") -> SymbolInfo:
    """One element of exchangeInfo's ``symbols`` (raises :class:`SymbolInfoError`)."""
    if not isinstance(entry, Mapping):
        raise SymbolInfoError("a symbol entry must be an object")
    kw: dict[str, Any] = {}
    other: list[Mapping[str, Any]] = []
    raw_filters = entry.get("filters", [])
    if not isinstance(raw_filters, list):
        raise SymbolInfoError("filters must be a list")
    for f in raw_filters:
        if not isinstance(f, Mapping) or not isinstance(f.get("filterType"), str):
            raise SymbolInfoError("every filter must be an object with a filterType")
        kind = f["filterType"]
        if kind == "PRICE_FILTER":
            kw["price_filter"] = PriceFilter(_dec(f, "minPrice"), _dec(f, "maxPrice"),
                                             _dec(f, "tickSize"))
        elif kind == "PERCENT_PRICE":
            kw["percent_price"] = PercentPrice(_dec(f, "multiplierUp"),
                                               _dec(f, "multiplierDown"),
                                               _int(f, "avgPriceMins", 0))
        elif kind == "PERCENT_PRICE_BY_SIDE":
            kw["percent_price_by_side"] = PercentPriceBySide(
                _dec(f, "bidMultiplierUp"), _dec(f, "bidMultiplierDown"),
                _dec(f, "askMultiplierUp"), _dec(f, "askMultiplierDown"),
                _int(f, "avgPriceMins", 0))
        elif kind in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            lot = LotSize(_dec(f, "minQty"), _dec(f, "maxQty"), _dec(f, "stepSize"))
            kw["lot_size" if kind == "LOT_SIZE" else "market_lot_size"] = lot
        elif kind == "MIN_NOTIONAL":
            kw["min_notional"] = MinNotional(_dec(f, "minNotional"),
                                             _bool(f, "applyToMarket", True),
                                             _int(f, "avgPriceMins", 0))
        elif kind == "NOTIONAL":
            kw["notional"] = Notional(_dec(f, "minNotional"), _bool(f, "applyMinToMarket", True),
                                      _dec(f, "maxNotional"), _bool(f, "applyMaxToMarket", False),
                                      _int(f, "avgPriceMins", 0))
        elif kind == "TRAILING_DELTA":
            kw["trailing_delta"] = TrailingDelta(
                _int(f, "minTrailingAboveDelta"), _int(f, "maxTrailingAboveDelta"),
                _int(f, "minTrailingBelowDelta"), _int(f, "maxTrailingBelowDelta"))
        else:
            other.append(dict(f))
    return SymbolInfo(
        symbol=_str(entry, "symbol").upper(),
        status=_str(entry, "status"),
        base_asset=_str(entry, "baseAsset"),
        quote_asset=_str(entry, "quoteAsset"),
        base_asset_precision=_int(entry, "baseAssetPrecision", 8),
        quote_asset_precision=_int(entry, "quoteAssetPrecision", 8),
        other_filters=tuple(other),
        source=source,
        **kw,
    )


def parse_exchange_info(doc: Any, source: str = "exchange") -> dict[str, SymbolInfo]:
    """Every symbol of an exchangeInfo document, by symbol."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("symbols"), list):
        raise SymbolInfoError("an exchangeInfo document needs a 'symbols' list")
    out: dict[str, SymbolInfo] = {}
    for entry in doc["symbols"]:
        info = parse_symbol(entry, source)
        out[info.symbol] = info
    return out


def load_snapshot() -> dict[str, SymbolInfo]:
    """The shipped snapshot of real Binance filters (see ``data/SOURCE.md``)."""
    text = (Path(__file__).parent / SNAPSHOT_RESOURCE).read_text("utf-8")
    return parse_exchange_info(json.loads(text), source="snapshot")


def permissive(symbol: str) -> SymbolInfo:
    """The info of a served symbol nothing is known about: no filters at all."""
    return SymbolInfo(symbol=symbol, status="TRADING", base_asset="", quote_asset="",
                      source="none")


# ---------------------------------------------------------------- overrides


@dataclass(frozen=True, slots=True)
class SymbolOverride:
    """One ``[[symbols]]`` table of config.toml: None keeps the snapshot's value.

    Setting any field of a filter the symbol does not have creates that filter
    with the other fields 0 (no limit)."""

    symbol: str = ""
    base_asset: str | None = None
    quote_asset: str | None = None
    # PRICE_FILTER
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    tick_size: Decimal | None = None
    # LOT_SIZE
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    step_size: Decimal | None = None
    # MARKET_LOT_SIZE
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    market_step_size: Decimal | None = None
    # NOTIONAL (replaces an older MIN_NOTIONAL)
    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    apply_min_to_market: bool | None = None
    apply_max_to_market: bool | None = None
    # TRAILING_DELTA
    min_trailing_above_delta: int | None = None
    max_trailing_above_delta: int | None = None
    min_trailing_below_delta: int | None = None
    max_trailing_below_delta: int | None = None
    # PERCENT_PRICE_BY_SIDE (replaces an older PERCENT_PRICE)
    bid_multiplier_up: Decimal | None = None
    bid_multiplier_down: Decimal | None = None
    ask_multiplier_up: Decimal | None = None
    ask_multiplier_down: Decimal | None = None


#: The override fields, for the config parser and the documentation test.
OVERRIDE_FIELDS = tuple(f.name for f in fields(SymbolOverride) if f.name != "symbol")

_Z = Decimal(0)


def _given(o: SymbolOverride, names: Iterable[str]) -> bool:
    return any(getattr(o, n) is not None for n in names)


def _pick(value: Any, current: Any) -> Any:
    return current if value is None else value


def apply_override(info: SymbolInfo | None, o: SymbolOverride) -> SymbolInfo:
    """``info`` (None: a symbol without filters) with ``o``'s fields applied."""
    base = info if info is not None else permissive(o.symbol)
    kw: dict[str, Any] = {"source": "config"}
    if o.base_asset is not None:
        kw["base_asset"] = o.base_asset
    if o.quote_asset is not None:
        kw["quote_asset"] = o.quote_asset
    if _given(o, ("min_price", "max_price", "tick_size")):
        p = base.price_filter or PriceFilter(_Z, _Z, _Z)
        kw["price_filter"] = PriceFilter(_pick(o.min_price, p.min_price),
                                         _pick(o.max_price, p.max_price),
                                         _pick(o.tick_size, p.tick_size))
    if _given(o, ("min_qty", "max_qty", "step_size")):
        lot = base.lot_size or LotSize(_Z, _Z, _Z)
        kw["lot_size"] = LotSize(_pick(o.min_qty, lot.min_qty), _pick(o.max_qty, lot.max_qty),
                                 _pick(o.step_size, lot.step_size))
    if _given(o, ("market_min_qty", "market_max_qty", "market_step_size")):
        m = base.market_lot_size or LotSize(_Z, _Z, _Z)
        kw["market_lot_size"] = LotSize(_pick(o.market_min_qty, m.min_qty),
                                        _pick(o.market_max_qty, m.max_qty),
                                        _pick(o.market_step_size, m.step_size))
    if _given(o, ("min_notional", "max_notional", "apply_min_to_market", "apply_max_to_market")):
        n = base.notional
        if n is None:
            old = base.min_notional
            n = Notional(old.min_notional if old else _Z, old.apply_to_market if old else True,
                         _Z, False, old.avg_price_mins if old else 0)
        kw["notional"] = Notional(_pick(o.min_notional, n.min_notional),
                                  _pick(o.apply_min_to_market, n.apply_min_to_market),
                                  _pick(o.max_notional, n.max_notional),
                                  _pick(o.apply_max_to_market, n.apply_max_to_market),
                                  n.avg_price_mins)
        kw["min_notional"] = None
    names = ("min_trailing_above_delta", "max_trailing_above_delta",
             "min_trailing_below_delta", "max_trailing_below_delta")
    if _given(o, names):
        t = base.trailing_delta or TrailingDelta(0, 0, 0, 0)
        kw["trailing_delta"] = TrailingDelta(*(_pick(getattr(o, n), getattr(t, n))
                                               for n in names))
    names = ("bid_multiplier_up", "bid_multiplier_down", "ask_multiplier_up",
             "ask_multiplier_down")
    if _given(o, names):
        b = base.percent_price_by_side
        if b is None:
            pp = base.percent_price
            up, down = (pp.multiplier_up, pp.multiplier_down) if pp else (_Z, _Z)
            b = PercentPriceBySide(up, down, up, down, pp.avg_price_mins if pp else 0)
        kw["percent_price_by_side"] = PercentPriceBySide(
            _pick(o.bid_multiplier_up, b.bid_multiplier_up),
            _pick(o.bid_multiplier_down, b.bid_multiplier_down),
            _pick(o.ask_multiplier_up, b.ask_multiplier_up),
            _pick(o.ask_multiplier_down, b.ask_multiplier_down),
            b.avg_price_mins)
        kw["percent_price"] = None
    return replace(base, **kw)


# ------------------------------------------------------------------ catalog


class SymbolCatalog:
    """Symbol -> :class:`SymbolInfo`, shared between threads (see the module
    docstring: each change is one atomic dict assignment of a frozen value)."""

    def __init__(self, infos: Mapping[str, SymbolInfo] | None = None,
                 overrides: Iterable[SymbolOverride] = ()) -> None:
        self._infos: dict[str, SymbolInfo] = dict(infos or {})
        self._overrides = {o.symbol: o for o in overrides}

    def get(self, symbol: str) -> SymbolInfo | None:
        return self._infos.get(symbol)

    def put(self, info: SymbolInfo) -> None:
        """Store ``info`` as it is."""
        self._infos[info.symbol] = info

    def add(self, info: SymbolInfo) -> SymbolInfo:
        """Store ``info`` (e.g. loaded for a symbol added live) with its
        configured override applied; returns what was stored."""
        override = self._overrides.get(info.symbol)
        if override is not None:
            info = apply_override(info, override)
        self.put(info)
        return info

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._infos

    def symbols(self) -> list[str]:
        return sorted(self._infos)


def build_catalog(
    served: Iterable[str],
    known: Mapping[str, SymbolInfo],
    overrides: Iterable[SymbolOverride] = (),
    *,
    permissive_missing: bool = True,
) -> tuple[SymbolCatalog, list[str]]:
    """The catalog of the ``served`` symbols from the ``known`` infos (the
    snapshot, or what the exchange answered) with ``overrides`` applied.

    Returns it with the served symbols nothing was known about. Those get
    :func:`permissive` info when ``permissive_missing`` (simulated and replay
    feeds) and are left out otherwise (Binance: their orders are refused
    ``UNKNOWN_SYMBOL``). The overrides stay in the catalog for symbols added
    later (:meth:`SymbolCatalog.add`); with Binance an override applies only
    once the exchange's own filters are known."""
    catalog = SymbolCatalog(overrides=overrides)
    missing: list[str] = []
    for symbol in served:
        info = known.get(symbol)
        if info is None:
            missing.append(symbol)
            if not permissive_missing:
                continue
        catalog.add(info if info is not None else permissive(symbol))
    return catalog, missing
