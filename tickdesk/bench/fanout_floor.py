"""Where a MARKET_UPDATE delivery's server CPU goes: tickdesk's fan-out against the floor.

500 TCP loopback connections (TCP_NODELAY) drained by a forked reader; the
same ready-made frame is written to every connection 200 times, (a) through
tickdesk's ``Hub.publish`` -> ``SocketChannel.deliver`` and (b) by a bare
Python loop of ``sock.send(frame, MSG_DONTWAIT)``, the least any Python
server can do. Prints user and system CPU µs per delivery (``os.times``).
``--idle-threads K`` first starts K threads blocked on a queue each (as
idle ConnectionActors are), to see whether many live threads change the
cost. Not a test: nothing is asserted.

    python -m tickdesk.bench.fanout_floor [--clients 500] [--rounds 200] [--idle-threads 0]
"""

from __future__ import annotations

import argparse
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable

from engine.protocol.frames import text_frame
from engine.protocol.server_messages import Outgoing
from engine.server.channel import SocketChannel
from engine.server.edge import EdgeLoop
from engine.server.hub import Hub


def _drain(port: int, n: int) -> None:
    sel = selectors.DefaultSelector()
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for c in conns:
        sel.register(c, selectors.EVENT_READ)
    buf = bytearray(1 << 20)
    while True:
        for key, _ in sel.select(1):
            try:
                if key.fileobj.recv_into(buf) == 0:  # type: ignore[union-attr]
                    os._exit(0)
            except OSError:
                os._exit(0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--idle-threads", type=int, default=0)
    args = ap.parse_args()
    idle: list[queue.Queue[None]] = [queue.Queue() for _ in range(args.idle_threads)]
    for q in idle:
        threading.Thread(target=q.get, daemon=True).start()
    n, rounds = args.clients, args.rounds
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(n)
    pid = os.fork()
    if pid == 0:
        _drain(listener.getsockname()[1], n)
    socks = []
    for _ in range(n):
        s, _addr = listener.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    writer = EdgeLoop(time.monotonic)
    writer.start()
    hub = Hub()
    for i, s in enumerate(socks):
        ch = SocketChannel(i, s, writer, max_queued_bytes=1 << 22, write_timeout_s=10,
                           monotonic=time.monotonic)
        hub.add(ch)
        hub.subscribe(ch, "BTCUSDT")
    payload = (b'{"type":"MARKET_UPDATE","symbol":"BTCUSDT","price":86000.12,'
               b'"priceChange":1.2,"seq":1}' + b" " * 60)
    out = Outgoing(payload, text_frame(payload), "BTCUSDT")
    sends = [s.send for s in socks]

    def bare() -> None:
        for send in sends:
            send(out.frame, socket.MSG_DONTWAIT)

    def measure(label: str, fn: Callable[[], object]) -> None:
        t0 = os.times()
        for _ in range(rounds):
            fn()
            time.sleep(0.002)  # let the reader drain: measure the idle fast path
        t1 = os.times()
        per = rounds * n
        print(f"{label:32s} user {(t1.user - t0.user) / per * 1e6:5.2f} µs   "
              f"sys {(t1.system - t0.system) / per * 1e6:5.2f} µs per delivery")

    for _ in range(2):
        measure("tickdesk Hub.publish", lambda: hub.publish("BTCUSDT", out))
        measure("bare send loop (the floor)", bare)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    writer.stop()
    for q in idle:
        q.put(None)


if __name__ == "__main__":
    main()
