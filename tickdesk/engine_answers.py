"""The engine's answers to the bus's market queries: its actors, asked.

Edge module (public package: it asks actors). :class:`ActorAnswers` is the
:class:`~engine.server.bus.MarketAnswers` of a process that runs the engine
(role ``all`` or ``engine``): ``klines`` asks the PortfolioActor (it owns the
KlineBook), ``recent_trades`` the FeedActor (it owns the recent-trades ring).
Any thread (an API worker, a ConnectionActor, the Redis bus's query thread);
each ask waits at most ``timeout_s``, and an actor that is down or does not
answer in time is :class:`~engine.errors.EngineUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable

import pykka

from actors.base import ActorSlot
from actors.messages import KlineRequest, RecentTradesRequest
from engine.errors import EngineUnavailable
from engine.market.klines import Kline, KlineQuery
from engine.market.recent_trades import RecentTrade, TradesQuery

__all__ = ["ActorAnswers"]


class ActorAnswers:
    """See the module docstring."""

    def __init__(self, portfolio: ActorSlot, feed: ActorSlot,
                 before_ask: Callable[[], None] | None = None) -> None:
        """``before_ask``: run before the portfolio is asked (the trade relay's
        flush: a trade in its fan-out is in the bars first, actors.trade_relay)."""
        self._portfolio = portfolio
        self._feed = feed
        self._before_ask = before_ask

    def klines(self, query: KlineQuery, timeout_s: float) -> list[Kline]:
        if self._before_ask is not None:
            self._before_ask()
        try:
            return list(self._portfolio.ask(KlineRequest(query), timeout=timeout_s))
        except pykka.ActorDeadError:
            raise EngineUnavailable("the engine's portfolio is restarting; retry") from None
        except pykka.Timeout:
            raise EngineUnavailable(f"the engine's portfolio did not answer within "
                                    f"{timeout_s:g} s; retry") from None

    def recent_trades(self, query: TradesQuery, timeout_s: float) -> list[RecentTrade]:
        try:
            return list(self._feed.ask(RecentTradesRequest(query), timeout=timeout_s))
        except pykka.ActorDeadError:
            raise EngineUnavailable("the engine's market feed is restarting; retry") from None
        except pykka.Timeout:
            raise EngineUnavailable(f"the engine's market feed did not answer within "
                                    f"{timeout_s:g} s; retry") from None
