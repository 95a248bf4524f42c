"""resume in one process: account events carry seq, CONNECTED carries the
epoch, and a second session that resumes gets what it missed, in order."""

from __future__ import annotations

from typing import Any

from tickdesk import Engine


def _is(mtype: str) -> Any:
    return lambda m: m["type"] == mtype


def test_a_resuming_session_gets_the_events_it_missed_then_resumed(local_engine: Engine) -> None:
    first = local_engine.connect()
    hello = first.wait_for(_is("CONNECTED"), timeout=5)
    epoch = hello["epoch"]
    first.send({"action": "subscribe_ticker", "symbol": "BTCUSDT", "id": "s"})
    price = first.wait_for(_is("MARKET_UPDATE"), timeout=5)["price"]
    below = str(int(price * 0.95))  # rests: below the market, inside the percent-price band
    events = []
    for n in range(2):
        first.send({"action": "place_order", "symbol": "BTCUSDT", "side": "BUY",
                    "type": "LIMIT", "price": below, "quantity": "0.01",
                    "timeInForce": "GTC", "id": f"o{n}"})
        events.append(first.wait_for(lambda m, n=n: m.get("id") == f"o{n}", timeout=5))
    assert [(e["executionType"], e["seq"]) for e in events] == [("NEW", 1), ("NEW", 2)]

    second = local_engine.connect()
    assert second.wait_for(_is("CONNECTED"), timeout=5)["epoch"] == epoch
    second.send({"action": "resume", "epoch": epoch, "seq": 1, "id": "r"})
    missed = second.wait_for(_is("ORDER_UPDATE"), timeout=5)
    done = second.wait_for(_is("RESUMED"), timeout=5)
    assert (missed["seq"], missed["order"]["orderId"]) == (2, events[1]["order"]["orderId"])
    assert "id" not in missed  # the account's copy, not the issuer's
    assert (done["recovered"], done["id"]) == (True, "r")

    second.send({"action": "resume", "epoch": "not-this-one", "seq": 2, "id": "r2"})
    assert second.wait_for(_is("RESUMED"), timeout=5)["recovered"] is False
    second.send({"action": "resume", "epoch": epoch, "seq": -1, "id": "bad"})
    err = second.wait_for(_is("ERROR"), timeout=5)
    assert (err["code"], err["id"]) == ("BAD_REQUEST", "bad")
    first.close()
    second.close()
