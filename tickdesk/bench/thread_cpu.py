"""Where a tickdesk server process spends its CPU, by thread, idle and under ticks.

One :class:`~tickdesk.app.Engine` (the bench's configuration, in this
process) and one lean client process with N subscribed connections
(:mod:`tickdesk.bench.lean_client`). Two phases of ``--seconds`` each:
*idle* (connected, no ticks) and *ticks* (``--rate`` trades per second told
to the FeedActor from this process's main thread, as ``tickdesk bench``
does). For each phase it prints the process's CPU split by thread kind
(``/proc/self/task/*/stat``, names without their numbers: the I/O thread,
the feed, the ConnectionActors together, ...) and the frames the server
wrote (the channels' ``frames_sent``) against the MARKET_UPDATE deliveries
(subscribers × ticks); the ticks phase ends when the FeedActor has
handled the last trade (an ask through its mailbox). Not a test: nothing
is asserted; CPU figures are clock ticks (10 ms), so use phases of a few
seconds. ``MainThread`` is this bench itself (publishing, reading /proc).

    python -m tickdesk.bench.thread_cpu [--clients 1000] [--rate 20] [--seconds 4] [--open-mode]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from engine.messages import Trade
from tickdesk.bench.lean_client import run_client
from tickdesk.bench.servers import make_trade, start_engine

if TYPE_CHECKING:
    from tickdesk.app import Engine

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _thread_cpu() -> dict[int, float]:
    """CPU seconds (user + sys) of each OS thread of this process, by native id."""
    out: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) * _TICK_S
    return out


def _kind(name: str) -> str:
    """A thread's name without its numbers and actor URNs ("ConnectionActor")."""
    name = name.split(" (", 1)[0]
    return re.sub(r"[-_]?\d+$", "", name) or name


def _by_kind(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    spent: defaultdict[str, float] = defaultdict(float)
    for tid, cpu in after.items():
        spent[_kind(names.get(tid, "(native)"))] += cpu - before.get(tid, 0.0)
    return spent


def _frames(engine: Engine) -> int:
    return sum(getattr(ch, "frames_sent", 0)
               for ch in engine.hub.channels())


def _drained(engine: Engine) -> None:
    """Return once the FeedActor has handled every trade told so far: an ask
    through its mailbox comes after them (a loaded machine lags behind)."""
    ref = engine.feed.ref
    if ref is not None:
        ref.proxy().trades.get(timeout=60)


def _report(label: str, seconds: float, spent: dict[str, float], frames: int,
            deliveries: int) -> None:
    total = sum(spent.values())
    print(f"{label}: {seconds:.1f} s, process CPU {100 * total / seconds:.2f} % of a core; "
          f"frames written {frames} ({frames / seconds:,.0f}/s), "
          f"MARKET_UPDATE deliveries {deliveries}")
    if deliveries:
        print(f"  CPU per MARKET_UPDATE delivery {total * 1e6 / deliveries:.2f} µs, "
              f"per frame written {total * 1e6 / max(1, frames):.2f} µs")
    for kind, cpu in sorted(spent.items(), key=lambda kv: -kv[1]):
        if cpu > 0:
            print(f"  {kind:32s} {100 * cpu / seconds:6.2f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--open-mode", action="store_true",
                    help="no accounts: every reader also gets account default's periodic updates")
    args = ap.parse_args()
    from actors.messages import TradeTick

    engine = start_engine(open_mode=args.open_mode)
    url = engine.url

    def publish(trade: Trade) -> None:
        engine.feed.tell(TradeTick(trade, trade.event_time))

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=run_client, args=(child,), daemon=True)
    proc.start()
    try:
        host_port = url.split("//", 1)[1]
        host, _, rest = host_port.partition(":")
        port, _, path = rest.partition("/")
        parent.send(("connect", host, int(port), "/" + path, args.clients))
        if not parent.poll(60 + args.clients * 0.05):
            raise SystemExit("the client process did not connect in time")
        msg = parent.recv()
        if msg[0] != "ready" or msg[1] != args.clients:
            raise SystemExit(f"client: {msg}")
        time.sleep(1.0)  # let the subscriptions' snapshots drain
        f0, c0 = _frames(engine), _thread_cpu()
        time.sleep(args.seconds)
        f1, c1 = _frames(engine), _thread_cpu()
        _report("idle", args.seconds, _by_kind(c0, c1), f1 - f0, 0)
        ticks = int(args.rate * args.seconds)
        period = 1.0 / args.rate
        f0, c0 = _frames(engine), _thread_cpu()
        start = time.monotonic()
        for k in range(ticks):
            wait = start + k * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            publish(make_trade(1_000_000 + k))
        _drained(engine)
        elapsed = time.monotonic() - start
        f1, c1 = _frames(engine), _thread_cpu()
        _report(f"{args.rate:g} ticks/s", elapsed, _by_kind(c0, c1), f1 - f0,
                ticks * args.clients)
    finally:
        parent.send(("stop",))
        proc.join(10)
        if proc.is_alive():
            proc.kill()
        engine.stop()


if __name__ == "__main__":
    main()
