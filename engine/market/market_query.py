"""Market queries a gateway asks the engine, and their wire form.

Pure core. A gateway holds no KlineBook and no recent-trades ring (they live
in the engine's PortfolioActor and FeedActor), so ``get_klines`` and the REST
``/api/v3/klines``, ``/trades``, ``/aggTrades``, ``/historicalTrades`` ask the
engine across the bus (:mod:`engine.server.bus`, ``klines`` and
``recent_trades``). This module turns those queries and their answers into
bytes and back, losslessly (prices and quantities as decimal strings):

* :func:`encode_query` / :func:`decode_query`: a :class:`MarketQuery` (its
  kind and JSON body); a body that does not decode raises :class:`BadQuery`;
* :func:`encode_answer` / :func:`decode_klines` / :func:`decode_trades`: the
  answer, a JSON list.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from engine.errors import TickdeskError
from engine.market.klines import Kline, KlineQuery
from engine.market.recent_trades import RecentTrade, TradesQuery

__all__ = ["KLINES", "TRADES", "BadQuery", "MarketQuery", "decode_klines", "decode_query",
           "decode_trades", "encode_answer", "encode_query"]

MarketQuery = KlineQuery | TradesQuery
KLINES = "klines"
TRADES = "trades"


class BadQuery(TickdeskError):
    """A query or an answer on the bus that does not decode (a bug or a
    mismatched version: answered as unavailable, never executed)."""


def _opt_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadQuery(f"not an integer: {v!r}")
    return v


def encode_query(q: MarketQuery) -> tuple[str, bytes]:
    """``(kind, body)`` of a query."""
    if isinstance(q, KlineQuery):
        return KLINES, orjson.dumps({"symbol": q.symbol, "interval": q.interval,
                                     "start": q.start_ms, "end": q.end_ms, "limit": q.limit})
    return TRADES, orjson.dumps({"symbol": q.symbol, "limit": q.limit, "from": q.from_id,
                                 "start": q.start_ms, "end": q.end_ms})


def decode_query(kind: str, body: bytes) -> MarketQuery:
    """The query :func:`encode_query` made (checked again, as the gateway did)."""
    try:
        d = orjson.loads(body)
        if not isinstance(d, dict) or not isinstance(d.get("symbol"), str):
            raise BadQuery("a query needs a symbol")
        limit = _opt_int(d.get("limit"))
        if limit is None:
            raise BadQuery("a query needs a limit")
        if kind == KLINES:
            if not isinstance(d.get("interval"), str):
                raise BadQuery("a kline query needs an interval")
            return KlineQuery.checked(d["symbol"], d["interval"], _opt_int(d.get("start")),
                                      _opt_int(d.get("end")), limit)
        if kind == TRADES:
            if not 1 <= limit <= 1000:
                raise BadQuery(f"limit {limit} out of 1..1000")
            return TradesQuery(d["symbol"], limit, _opt_int(d.get("from")),
                               _opt_int(d.get("start")), _opt_int(d.get("end")))
    except BadQuery:
        raise
    except (orjson.JSONDecodeError, TickdeskError) as exc:
        raise BadQuery(str(exc)) from None
    raise BadQuery(f"unknown query kind {kind!r}")


def encode_answer(rows: list[Kline] | list[RecentTrade]) -> bytes:
    """The answer, as a JSON list (decimals as strings)."""
    out: list[list[Any]] = []
    for r in rows:
        if isinstance(r, Kline):
            out.append([r.symbol, r.interval, r.open_time, r.close_time, str(r.open),
                        str(r.high), str(r.low), str(r.close), str(r.volume),
                        str(r.quote_volume), r.trades])
        else:
            out.append([r.trade_id, str(r.price), str(r.quantity), r.time, r.buyer_is_maker])
    return orjson.dumps(out)


def _rows(body: bytes, width: int) -> list[list[Any]]:
    try:
        rows = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadQuery(str(exc)) from None
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == width
                                             for r in rows):
        raise BadQuery("an answer is a list of rows")
    return rows


def decode_klines(body: bytes) -> list[Kline]:
    try:
        return [Kline(r[0], r[1], int(r[2]), int(r[3]), Decimal(r[4]), Decimal(r[5]),
                      Decimal(r[6]), Decimal(r[7]), Decimal(r[8]), Decimal(r[9]), int(r[10]))
                for r in _rows(body, 11)]
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise BadQuery(f"a kline row does not decode: {exc}") from None


def decode_trades(body: bytes) -> list[RecentTrade]:
    try:
        return [RecentTrade(int(r[0]), Decimal(r[1]), Decimal(r[2]), int(r[3]), bool(r[4]))
                for r in _rows(body, 5)]
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise BadQuery(f"a trade row does not decode: {exc}") from None
