"""FeedActor: owns the market feed and routes every tick.

Runs in its own pykka thread. For each trade it updates the
:class:`~engine.market.board.MarketBoard`, encodes and frames the
MARKET_UPDATE **once**, writes the same bytes to every subscriber's channel
(:meth:`Hub.publish`, non-blocking), and forwards the trade to the
OrderMonitorActor (triggers) and the PortfolioActor (mark price), whether or
not any client watches the symbol.

Sources: ``simulated`` (a TimerActor pulses this actor ``ticks_per_second``
times a second; each pulse makes one trade per symbol, and once a second a
24 h ticker). The live and replay sources feed :class:`TradeTick` /
:class:`TickerTick` messages in from their own threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pykka

from actors.base import ActorSlot, FailureHook, TickdeskActor
from actors.messages import Pulse, SendSnapshot, TickerTick, TradeTick
from actors.timer import TimerActor
from engine.clock import Clock
from engine.config import FeedConfig
from engine.market.board import MarketBoard
from engine.market.simulated import SimulatedMarket
from engine.messages import Ticker24h, Trade
from engine.protocol import server_messages as sm
from engine.server.hub import Hub

__all__ = ["FeedActor"]


class FeedActor(TickdeskActor):
    def __init__(
        self,
        cfg: FeedConfig,
        hub: Hub,
        order_monitor: ActorSlot,
        portfolio: ActorSlot,
        clock: Clock,
        *,
        on_failure: FailureHook | None = None,
        generation: int = 0,
        on_trade_published: Callable[[Trade, int], None] | None = None,
    ) -> None:
        super().__init__("feed", on_failure, generation)
        self._cfg = cfg
        self._hub = hub
        self._orders = order_monitor
        self._portfolio = portfolio
        self._clock = clock
        self._board = MarketBoard()
        self._latest: dict[str, sm.Outgoing] = {}
        self._sim: SimulatedMarket | None = None
        self._pulses = 0
        self._pulses_per_ticker = 1
        self._timer: pykka.ActorRef[Any] | None = None
        self._on_trade_published = on_trade_published
        self.trades = 0
        self.handlers = {
            Pulse: self._on_pulse,
            TradeTick: self._on_trade_tick,
            TickerTick: self._on_ticker_tick,
            SendSnapshot: self._on_send_snapshot,
        }

    def started(self) -> None:
        if self._cfg.source == "simulated":
            sim_cfg = self._cfg.simulated
            self._sim = SimulatedMarket(self._cfg.symbols, sim_cfg.seed)
            self._pulses_per_ticker = max(1, round(sim_cfg.ticks_per_second))
            me = ActorSlot("feed-self")
            me.set(self.actor_ref)
            self._timer = TimerActor.start(
                "feed-pulse", me, Pulse("sim"), 1.0 / sim_cfg.ticks_per_second, self._clock,
                max_backlog=10,
            )
            now = self._clock.now_ms()
            for sym in self._sim.symbols:  # a price for every symbol from the start
                self._route_trade(self._sim.step(sym, now), now)
                self._route_ticker(self._sim.ticker(sym, now))

    def cleanup(self) -> None:
        timer = self._timer
        self._timer = None
        if timer is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                timer.stop(block=True, timeout=2.0)

    # -- handlers -----------------------------------------------------------

    def _on_pulse(self, _msg: Pulse) -> None:
        sim = self._sim
        if sim is None:
            return
        now = self._clock.now_ms()
        self._pulses += 1
        ticker_due = self._pulses % self._pulses_per_ticker == 0
        for sym in sim.symbols:
            self._route_trade(sim.step(sym, now), now)
            if ticker_due:
                self._route_ticker(sim.ticker(sym, now))

    def _on_trade_tick(self, msg: TradeTick) -> None:
        self._route_trade(msg.trade, msg.received_ms)

    def _on_ticker_tick(self, msg: TickerTick) -> None:
        self._route_ticker(msg.ticker)

    def _on_send_snapshot(self, msg: SendSnapshot) -> None:
        out = self._latest.get(msg.symbol)
        if out is not None:
            msg.channel.deliver(out)

    # -- routing ------------------------------------------------------------

    def _route_trade(self, trade: Trade, received_ms: int) -> None:
        snap = self._board.apply_trade(trade)
        out = sm.market_update(snap, self._clock.now_ms())
        self._latest[trade.symbol] = out
        self._hub.publish(trade.symbol, out)
        tick = TradeTick(trade, received_ms)
        self._orders.tell(tick)
        self._portfolio.tell(tick)
        self.trades += 1
        if self._on_trade_published is not None:
            self._on_trade_published(trade, received_ms)

    def _route_ticker(self, ticker: Ticker24h) -> None:
        snap = self._board.apply_ticker(ticker)
        if snap is None:
            return
        out = sm.market_update(snap, self._clock.now_ms())
        self._latest[ticker.symbol] = out
        self._hub.publish(ticker.symbol, out)
