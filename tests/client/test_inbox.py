"""The messages() buffer: bounded, arrival order, market data discarded first."""

from __future__ import annotations

import pytest

from engine.backoff import Backoff
from tickdesk.client.connection import DEFAULT_BACKOFF, encode
from tickdesk.client.inbox import Inbox


def tick(symbol: str, seq: int) -> dict[str, object]:
    return {"type": "MARKET_UPDATE", "symbol": symbol, "seq": seq}


def order(n: int) -> dict[str, object]:
    return {"type": "ORDER_UPDATE", "n": n}


def drain(inbox: Inbox) -> list[dict[str, object]]:
    out = []
    while (m := inbox.pop()) is not None:
        out.append(m)
    return out


def test_fifo_below_capacity() -> None:
    inbox = Inbox(4)
    msgs = [tick("BTCUSDT", 1), order(1), tick("ETHUSDT", 1)]
    for m in msgs:
        inbox.push(m)
    assert len(inbox) == 3
    assert drain(inbox) == msgs
    assert inbox.dropped == 0


def test_overflow_discards_the_oldest_market_update_first() -> None:
    inbox = Inbox(3)
    inbox.push(order(1))
    inbox.push(tick("BTCUSDT", 1))
    inbox.push(order(2))
    inbox.push(order(3))          # full: the tick goes, the orders stay
    inbox.push(tick("BTCUSDT", 2))  # full, no tick queued: the oldest message goes
    assert drain(inbox) == [order(2), order(3), tick("BTCUSDT", 2)]
    assert inbox.dropped == 2


def test_overflow_keeps_the_newest_market_state() -> None:
    inbox = Inbox(2)
    for seq in range(1, 6):
        inbox.push(tick("BTCUSDT", seq))
    assert drain(inbox) == [tick("BTCUSDT", 4), tick("BTCUSDT", 5)]
    assert inbox.dropped == 3


def test_book_updates_are_market_data_too() -> None:
    inbox = Inbox(2)
    book = {"type": "BOOK_UPDATE", "symbol": "BTCUSDT", "seq": 1}
    inbox.push(book)
    inbox.push(order(1))
    inbox.push(order(2))  # full: the book goes, the orders stay
    assert drain(inbox) == [order(1), order(2)] and inbox.dropped == 1


def test_zero_capacity_keeps_nothing_and_bad_capacity_is_refused() -> None:
    inbox = Inbox(0)
    inbox.push(order(1))
    assert inbox.pop() is None
    with pytest.raises(ValueError, match="capacity"):
        Inbox(-1)


def test_default_backoff_is_half_a_second_doubling_to_thirty() -> None:
    policy = DEFAULT_BACKOFF
    assert [policy.base_delay(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff = Backoff(policy)
    delays = [backoff.on_failure(float(t), 0.999).delay_s for t in range(200)]
    assert max(delays) <= 30 * 1.2
    assert all(d > 0 for d in delays)  # never gives up


def test_decimals_are_sent_as_exact_json_numbers() -> None:
    from decimal import Decimal

    assert encode({"quantity": Decimal("0.010"), "price": 1.5}) == '{"quantity":0.010,"price":1.5}'
    with pytest.raises(TypeError):
        encode({"quantity": Decimal("NaN")})
