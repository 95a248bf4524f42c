"""The simulated market resumes from given start prices instead of its seed's."""

from __future__ import annotations

from decimal import Decimal

from engine.market.simulated import START_PRICES, SimulatedMarket


def test_a_symbol_with_a_start_price_resumes_from_it() -> None:
    market = SimulatedMarket(("BTCUSDT", "ETHUSDT"), seed=3,
                             start_prices={"BTCUSDT": Decimal("61234.5678")})
    assert market.last_prices() == {"BTCUSDT": Decimal("61234.57"),  # on the 0.01 tick
                                    "ETHUSDT": Decimal(START_PRICES["ETHUSDT"][0])}
    btc = market.step("BTCUSDT", 1_000).trade.price
    eth = market.step("ETHUSDT", 1_000).trade.price
    # one step moves a few basis points (5 bps volatility), never back to the seed's start
    assert abs(btc - Decimal("61234.57")) / Decimal("61234.57") < Decimal("0.01")
    assert abs(eth - Decimal("3200")) / Decimal("3200") < Decimal("0.01")
    assert market.last_prices() == {"BTCUSDT": btc, "ETHUSDT": eth}
    ticker = market.ticker("BTCUSDT", 1_000)
    assert ticker.price_change == btc - Decimal("61234.57")  # the day opens where it resumed


def test_unusable_start_prices_are_ignored() -> None:
    for bad in (Decimal(0), Decimal(-5), Decimal("NaN"), Decimal("Infinity")):
        market = SimulatedMarket(("SOLUSDT",), seed=1, start_prices={"SOLUSDT": bad})
        assert market.last_prices() == {"SOLUSDT": Decimal("140.00")}


def test_resuming_is_as_deterministic_as_starting() -> None:
    def walk() -> list[Decimal]:
        m = SimulatedMarket(("BNBUSDT",), seed=11, start_prices={"BNBUSDT": Decimal("612.34")})
        return [m.step("BNBUSDT", t).trade.price for t in range(50)]

    assert walk() == walk()
