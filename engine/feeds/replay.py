"""The replay source: a recorded file played back into the FeedActor.

Edge module. One thread (``feed-replay``), started by the FeedActor in
``started()`` and stopped and joined in ``cleanup()``, reads
``feed.replay.path``, detects its format with
:func:`engine.market.replay_format.detect_format` (JSON lines, raw or
combined; a JSON document; a cryptofeed ``.ws.1.0`` capture; a freqtrade
trades file, gzip or not), decodes each frame with
:func:`engine.market.binance_codec.decode_frame` and sends the trades and
tickers of the served symbols to the FeedActor.

Pacing: the gap between two frames (the recorded receive time when the
file has one, else the event's own trade/event time) divided by
``feed.replay.speed`` (:func:`~engine.market.replay_format.replay_delay_ms`,
each wait capped at 5 s). The waits follow a schedule anchored at the start
of the pass, so processing time does not add up into drift; a wait ends
when the injected clock reaches the due time (re-read every 50 ms at most). ``speed = 0``
plays as fast as the FeedActor routes.

Bounds: frames are sent in batches of at most ``batch_max`` items, and at
most ``max_in_flight`` batches may wait in the FeedActor's mailbox; the
reader thread blocks (checking for stop) until the FeedActor has routed one.
Memory therefore stays bounded at any speed. Line formats are streamed from
the file; JSON documents and freqtrade files are parsed whole (gzip
decompression is capped at 256 MiB by :mod:`engine.market.replay_format`).

Time stamps: prices, quantities, ids and ``trade_time`` are the recorded
ones, but ``event_time`` of every trade and ticker is re-stamped with the
current clock when it is sent, so the OrderMonitor (which ignores trades
older than ``trading.max_tick_age_s``) fills orders during a replay, and
``eventTime`` in MARKET_UPDATE is the replay's "now".

End of file: with ``loop = true`` the file starts again from the top (the
board keeps its state; prices jump back to the first recorded ones);
otherwise the source simply stops producing and the feed stays ``UP`` with
no more data. A file that cannot be read or parsed is a failure of the feed
(the Supervisor restarts it with backoff, FEED_STATUS RECONNECTING).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.clock import Clock
from engine.config import ReplayConfig
from engine.feeds.base import FeedShared, FeedSink, MarketItem
from engine.market.binance_codec import decode_frame
from engine.market.replay_format import (
    DEFAULT_MAX_DELAY_MS,
    ReplayFormat,
    ReplayRecord,
    detect_format,
    iter_records,
    records_from_bytes,
    replay_delay_ms,
)
from engine.messages import Ticker24h, Trade

__all__ = ["ReplaySource", "open_records"]

log = logging.getLogger("tickdesk.feed.replay")

_HEAD_BYTES = 65536
#: Longest single wait before the clock is read again (pacing).
_PACING_SLICE_S = 0.05


def open_records(path: str | Path) -> Iterator[ReplayRecord]:
    """The records of a recorded file (format detected from its first 64 KiB).

    Raises ``OSError`` if the file cannot be read, ``ValueError`` if its
    format is unknown or its gzip data is broken.
    """
    p = Path(path)
    with p.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    fmt = detect_format(head)
    if fmt in (ReplayFormat.JSON_LINES, ReplayFormat.CRYPTOFEED):
        return _stream_lines(p)
    return iter(records_from_bytes(p.read_bytes()))


def _stream_lines(path: Path) -> Iterator[ReplayRecord]:
    with path.open("r", encoding="utf-8", errors="replace") as f:
        yield from iter_records(f)


def _restamp(item: MarketItem, now_ms: int) -> MarketItem:
    return dataclasses.replace(item, event_time=now_ms)


class ReplaySource:
    """Plays one recorded file into a :class:`~engine.feeds.base.FeedSink`."""

    def __init__(
        self,
        cfg: ReplayConfig,
        symbols: frozenset[str],
        sink: FeedSink,
        clock: Clock,
        shared: FeedShared,
        *,
        batch_max: int = 256,
        max_in_flight: int = 8,
        max_delay_ms: int = DEFAULT_MAX_DELAY_MS,
        opener: Callable[[str], Iterator[ReplayRecord]] = open_records,
    ) -> None:
        if batch_max < 1 or max_in_flight < 1:
            raise ValueError("batch_max and max_in_flight must be >= 1")
        self._cfg = cfg
        self._symbols = symbols
        self._sink = sink
        self._clock = clock
        self._shared = shared
        self._batch_max = batch_max
        self._max_delay_ms = max_delay_ms
        self._opener = opener
        self._slots = threading.Semaphore(max_in_flight)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        """Completed passes over the file."""
        self.sent = 0
        """Trades and tickers sent to the sink."""
        self.finished = threading.Event()
        """Set when the file has been played to its end and ``loop`` is off."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="feed-replay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._halt.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    # -- the reader thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._halt.is_set():
                played = self._play_once()
                if self._halt.is_set():
                    return
                self.passes += 1
                if not self._cfg.loop:
                    log.info("replay of %s finished after %d events; feed stays up, idle",
                             self._cfg.path, self.sent)
                    self.finished.set()
                    return
                if not played:  # a file with nothing to play would spin
                    log.warning("replay file %s has no events for the served symbols",
                                self._cfg.path)
                    self.finished.set()
                    return
        except Exception as exc:
            if not self._halt.is_set():
                log.error("replay of %s failed: %r", self._cfg.path, exc)
                self._sink.failed(f"replay failed: {type(exc).__name__}")

    def _play_once(self) -> int:
        """One pass over the file; returns the number of events sent."""
        speed = self._cfg.speed
        anchor = self._clock.monotonic()
        elapsed_ms = 0  # scheduled time of the current frame since the anchor
        prev_ms: int | None = None
        batch: list[MarketItem] = []
        sent = 0
        for record in self._opener(self._cfg.path):
            if self._halt.is_set():
                return sent
            decoded = self._shared.record(decode_frame(record.frame))
            if not isinstance(decoded, Trade | Ticker24h):
                continue
            if decoded.symbol not in self._symbols:
                self._shared.count_skipped()
                continue
            if record.recv_time_ms is not None:
                at_ms = record.recv_time_ms
            elif isinstance(decoded, Trade):
                at_ms = decoded.trade_time
            else:
                at_ms = decoded.event_time
            delay = replay_delay_ms(prev_ms, at_ms, speed, self._max_delay_ms)
            if prev_ms is None or at_ms > prev_ms:
                prev_ms = at_ms
            if delay > 0:
                sent += self._flush(batch)
                elapsed_ms += delay
                due = anchor + elapsed_ms / 1000
                while (wait_s := due - self._clock.monotonic()) > 0:
                    # In slices, re-reading the clock: a due time is kept on the
                    # injected clock (a test's clock moves only when told).
                    if self._halt.wait(min(wait_s, _PACING_SLICE_S)):
                        return sent
            batch.append(decoded)
            if len(batch) >= self._batch_max:
                sent += self._flush(batch)
        sent += self._flush(batch)
        return sent

    def _flush(self, batch: list[MarketItem]) -> int:
        """Send ``batch`` (then empty it) once a slot is free; returns its size."""
        if not batch:
            return 0
        while not self._slots.acquire(timeout=0.1):
            if self._halt.is_set():
                batch.clear()
                return 0
        now = self._clock.now_ms()
        items = tuple(_restamp(item, now) for item in batch)
        n = len(items)
        batch.clear()
        released = itertools.count()

        def done() -> None:
            if next(released) == 0:  # release once, however often it is called
                self._slots.release()

        self._sink.deliver(items, now, done)
        self.sent += n
        return n
