from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.outbox import Outbox


def test_market_frames_conflate_in_place_and_others_keep_order() -> None:
    box = Outbox(max_strict_bytes=1000)
    assert box.push(b"m-btc-1", "BTC")
    assert box.push(b"order-1")
    assert box.push(b"m-eth-1", "ETH")
    assert box.push(b"m-btc-2", "BTC")
    assert box.push(b"order-2")
    assert box.conflated == 1
    out = [box.pop_batch(1) for _ in range(len(box))]
    assert out == [b"m-btc-2", b"order-1", b"m-eth-1", b"order-2"]
    assert box.queued_bytes == 0 and box.strict_bytes == 0


def test_overflow_of_ordered_frames_is_refused_not_dropped_silently() -> None:
    box = Outbox(max_strict_bytes=10)
    assert box.push(b"12345")
    assert box.push(b"12345")
    assert not box.push(b"1")
    assert box.push(b"market-frames-still-conflate", "BTC")
    assert box.strict_bytes == 10


def test_pop_batch_joins_up_to_the_limit() -> None:
    box = Outbox(max_strict_bytes=1000)
    for i in range(5):
        box.push(bytes([65 + i]) * 10)
    assert box.pop_batch(25) == b"A" * 10 + b"B" * 10
    assert box.pop_batch(5) == b"C" * 10  # one frame even when larger than the limit
    assert len(box) == 2


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=20),
                          st.one_of(st.none(), st.sampled_from(["A", "B", "C"])))))
def test_accounting_is_exact(items: list[tuple[bytes, str | None]]) -> None:
    box = Outbox(max_strict_bytes=10**9)
    latest: dict[str, bytes] = {}
    strict: list[bytes] = []
    for data, key in items:
        if key is None:
            frame = b"s" + data
            strict.append(frame)
        else:
            frame = b"m" + data
            latest[key] = frame
        box.push(frame, key)
    drained = []
    while box:
        drained.append(box.pop_batch(1))
    assert box.queued_bytes == 0 and box.strict_bytes == 0
    assert [d for d in drained if d.startswith(b"s")] == strict
    assert sorted(d for d in drained if d.startswith(b"m")) == sorted(latest.values())
