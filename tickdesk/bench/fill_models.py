"""How much the fill model changes a strategy's result on a recorded tape.

Run: ``python -m tickdesk.bench.fill_models TAPE [--symbol S] [--quantity Q]
[--grid-bps G]`` where TAPE is any recording the replay feed reads (freqtrade
trade dumps, cryptofeed captures, JSON lines; docs/feeds.md) and S one of its
symbols (default: the first traded). Runs in the calling thread,
on the pure core only (OrderBook + Ledger, no actors, no clock: each frame's
own time is "now").

The strategy is a small grid market maker, the same for every model: it keeps
one BUY LIMIT ``grid_bps`` below and one SELL LIMIT ``grid_bps`` above the
last trade, each for ``quantity``; when one fills completely it places a new
one on that side around the then last trade. Book frames in the tape (when
the replay codec yields them) go to ``OrderBook.on_book``. At the end the
position is marked at the last trade. For each of ``full``, ``book`` and
``queue`` it prints fills, partial fills (``TRADE`` events that left the order
``PARTIALLY_FILLED``), completed orders, fees and P&L.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from engine.market.binance_codec import decode_frame
from engine.market.replay_format import records_from_bytes
from engine.messages import BookTicker, DepthSnapshot, Trade
from engine.trading import (
    ExecutionType,
    FillModel,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from engine.trading.assets import symbol_assets
from engine.trading.book import bps_fee
from engine.trading.ledger import Ledger

__all__ = ["Result", "main", "run"]

Frame = Trade | BookTicker | DepthSnapshot


@dataclass(frozen=True, slots=True)
class Result:
    model: FillModel
    trades: int
    fills: int
    partial_fills: int
    orders_filled: int
    fees: Decimal
    realized: Decimal
    unrealized: Decimal

    @property
    def pnl(self) -> Decimal:
        """Realized + unrealized − fees (equity − starting balance)."""
        return self.realized + self.unrealized - self.fees


def load(path: Path, symbol: str | None = None) -> list[Frame]:
    """The tape's trades and book frames of ``symbol`` (default: the first traded)."""
    items = [decode_frame(r.frame) for r in records_from_bytes(path.read_bytes())]
    frames = [i for i in items if isinstance(i, Trade | BookTicker | DepthSnapshot)]
    if symbol is None:
        symbol = next((f.symbol for f in frames if isinstance(f, Trade)), None)
    return [f for f in frames if f.symbol == symbol]


def run(frames: list[Frame], model: FillModel, *, quantity: Decimal = Decimal(500),
        grid_bps: Decimal = Decimal(20), fee_bps: Decimal = Decimal(10)) -> Result:
    """Replay ``frames`` (one symbol's) through one book with the grid strategy."""
    account = "grid"
    book = OrderBook(fee_for=bps_fee(fee_bps), fill_model=model)
    # the tape's quote asset holds the P&L and the fees (XRPETH: ETH)
    quote = symbol_assets(frames[0].symbol).quote if frames else "USDT"
    ledger = Ledger.single(account, Decimal(10000), fee_bps, home_asset=quote)
    working: dict[Side, int | None] = {Side.BUY: None, Side.SELL: None}
    last: Decimal | None = None
    n_trades = fills = partial = done = 0
    k = grid_bps / Decimal(10000)
    for frame in frames:
        if not isinstance(frame, Trade):
            book.on_book(frame, now_ms=frame.event_time)
            continue
        n_trades += 1
        now = frame.event_time
        last = frame.price
        outcome = book.on_trade(frame, now_ms=now)
        for f in outcome.fills:
            ledger.apply_fill(f.symbol, f.side, f.quantity, f.price)
        for event in outcome.order_events():
            if event.execution_type is ExecutionType.TRADE:
                fills += 1
                if event.order.status is OrderStatus.PARTIALLY_FILLED:
                    partial += 1
                else:
                    done += 1
                    working[event.order.side] = None
        for side, oid in working.items():
            if oid is not None:
                continue
            price = last * (1 - k) if side is Side.BUY else last * (1 + k)
            req = OrderRequest(frame.symbol, side, OrderType.LIMIT, quantity,
                               price=price.quantize(Decimal("1e-8")))
            placed = book.place(account, req, now_ms=now, last_price=last)
            working[side] = placed.order_events()[0].order.order_id
    symbol = frames[-1].symbol if frames else ""
    return Result(model, n_trades, fills, partial, done, ledger.home_fees, ledger.realized_pnl,
                  ledger.position(symbol).unrealized(last))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tickdesk.bench.fill_models",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("tape", type=Path)
    p.add_argument("--symbol", help="which symbol of the tape (default: the first traded)")
    p.add_argument("--quantity", type=Decimal, default=Decimal(500))
    p.add_argument("--grid-bps", type=Decimal, default=Decimal(20))
    args = p.parse_args(argv)
    frames = load(args.tape, args.symbol.upper() if args.symbol else None)
    if not frames:
        print("no trades of that symbol in the tape", file=sys.stderr)
        return 2
    n_trades = sum(isinstance(f, Trade) for f in frames)
    print(f"{args.tape.name} {frames[0].symbol}: {n_trades} trades, "
          f"{len(frames) - n_trades} book frames; grid "
          f"{args.grid_bps} bps, quantity {args.quantity}")
    print(f"{'model':6} {'fills':>6} {'partial':>8} {'orders':>7} {'fees':>14} {'P&L':>14}")
    for model in (FillModel.FULL, FillModel.BOOK, FillModel.QUEUE):
        r = run(frames, model, quantity=args.quantity, grid_bps=args.grid_bps)
        print(f"{model.value:6} {r.fills:>6} {r.partial_fills:>8} {r.orders_filled:>7} "
              f"{r.fees:>14.8f} {r.pnl:>14.8f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
