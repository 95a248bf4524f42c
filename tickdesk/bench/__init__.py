"""``tickdesk bench``: WebSocket fan-out measured against an asyncio reference.

Edge module (processes, sockets, clocks). See ``docs/performance.md``.

How a delivery's latency is measured: every scripted trade gets a tick
number ``k`` and is priced ``PRICE_BASE + k`` (an integer, exact as a JSON
double), so the MARKET_UPDATE carries its own identity whatever ``seq`` the
board gives it and whatever else the feed publishes. The server process
records ``t0[k] = time.monotonic_ns()`` when it creates the tick; each client
records ``(k, t_recv)`` with ``time.monotonic_ns()`` taken right after the
``recv`` that brought the frame. CLOCK_MONOTONIC is shared by all processes
of one machine, so the parent computes ``t_recv - t0[k]`` directly.
"""

from __future__ import annotations

#: Scripted trades are priced ``PRICE_BASE + k``: far above any simulated price.
PRICE_BASE = 10_000_000
#: The one symbol every bench client watches.
SYMBOL = "BTCUSDT"
