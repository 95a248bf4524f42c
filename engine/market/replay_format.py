"""Recorded market-data files: format detection, parsing into frames, pacing.

Pure core: no threads, sockets, clocks or pykka, and no file opening: callers
hand in bytes or lines and get :class:`ReplayRecord` s back. A record is
``(recv_time_ms, frame)``: the receive time when the recording has one (else
``None``) and the exact frame text, to be decoded with
:func:`engine.market.binance_codec.decode_frame`.

Formats (:class:`ReplayFormat`), detected from content by :func:`detect_format`:

``JSON_LINES``       one Binance frame (raw or combined) per line; blank
                     lines are skipped.
``JSON_DOCUMENT``    one JSON value, possibly pretty-printed: a frame object,
                     or an array of frame objects.
``CRYPTOFEED``       cryptofeed's capture: first line ``<url> <-> <unix time>``,
                     then ``<unix seconds with fraction>: <exact frame>``; the
                     last line is empty.
``FREQTRADE_TRADES`` a JSON array of ccxt trade dicts (gzip-compressed or
                     not) whose ``info`` is a raw Binance aggTrade record; each
                     becomes ``{"e":"aggTrade","E":T,"s":<symbol>,**info}``
                     with the symbol from ccxt ``symbol`` minus ``"/"``.

Parsing does not judge frames: a line it cannot split is passed on as the
whole line (with ``recv_time_ms=None``) so the codec drops it and counts it;
nothing is lost silently.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Iterator
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, NamedTuple

import orjson

__all__ = [
    "DEFAULT_MAX_DELAY_MS",
    "GZIP_MAGIC",
    "ReplayFormat",
    "ReplayRecord",
    "detect_format",
    "freqtrade_records",
    "iter_records",
    "json_document_records",
    "records_from_bytes",
    "replay_delay_ms",
]

GZIP_MAGIC: Final = b"\x1f\x8b"

#: Default longest wall-clock wait between two replayed frames (ms).
DEFAULT_MAX_DELAY_MS: Final = 5_000

#: Upper bound on decompressed size, so a hostile gzip cannot exhaust memory.
_MAX_DECOMPRESSED: Final = 256 * 1024 * 1024

_CRYPTOFEED_HEAD_RE: Final = re.compile(r"\S+ <-> [0-9]+(?:\.[0-9]+)?")
_CRYPTOFEED_LINE_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?): ")


class ReplayFormat(StrEnum):
    """The recorded-file formats :func:`detect_format` knows."""

    JSON_LINES = "json_lines"
    JSON_DOCUMENT = "json_document"
    CRYPTOFEED = "cryptofeed"
    FREQTRADE_TRADES = "freqtrade_trades"
    GZIP = "gzip"
    """Gzip magic seen: decompress, then detect again (see :func:`records_from_bytes`)."""
    UNKNOWN = "unknown"


class ReplayRecord(NamedTuple):
    """One recorded frame: receive time (epoch ms) if recorded, and the frame text."""

    recv_time_ms: int | None
    frame: str


# ---------------------------------------------------------------- detection


def _first_line(text: str) -> tuple[str, bool]:
    """The first non-blank line (stripped) and whether it ended with a newline."""
    for raw in text.splitlines(keepends=True):
        if raw.strip():
            return raw.strip(), raw.endswith(("\n", "\r"))
    return "", False


def detect_format(head: bytes) -> ReplayFormat:
    """Detect the format from the first bytes of a file (give at least 64 KiB).

    Gzip data gives :attr:`ReplayFormat.GZIP` (decompress and call again).
    """
    if head.startswith(GZIP_MAGIC):
        return ReplayFormat.GZIP
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        return ReplayFormat.UNKNOWN
    if stripped.startswith("["):
        compact = re.sub(r"\s+", "", stripped[:200])
        if compact.startswith('[{"info":'):
            return ReplayFormat.FREQTRADE_TRADES
        return ReplayFormat.JSON_DOCUMENT
    line, complete = _first_line(text)
    if _CRYPTOFEED_HEAD_RE.fullmatch(line):
        return ReplayFormat.CRYPTOFEED
    if line.startswith("{"):
        if complete or len(line) == len(stripped.rstrip()):
            try:
                if isinstance(orjson.loads(line), dict):
                    return ReplayFormat.JSON_LINES
            except orjson.JSONDecodeError:
                pass
        return ReplayFormat.JSON_DOCUMENT
    return ReplayFormat.UNKNOWN


# ---------------------------------------------------------------- text formats


def _seconds_to_ms(seconds: str) -> int | None:
    try:
        value = Decimal(seconds) * 1000
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        return None
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _cryptofeed(lines: Iterator[str]) -> Iterator[ReplayRecord]:
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        match = _CRYPTOFEED_LINE_RE.match(line)
        if match is None:
            yield ReplayRecord(None, line)
            continue
        yield ReplayRecord(_seconds_to_ms(match.group(1)), line[match.end() :])


def _json_lines(lines: Iterable[str]) -> Iterator[ReplayRecord]:
    for raw in lines:
        line = raw.strip()
        if line:
            yield ReplayRecord(None, line)


def iter_records(lines: Iterable[str]) -> Iterator[ReplayRecord]:
    """Records of a line-based recording (JSON lines or cryptofeed).

    The format is decided by the first non-blank line: a cryptofeed header
    (``<url> <-> <time>``) is consumed and the rest parsed as cryptofeed
    lines; anything else is JSON lines.
    """
    it = iter(lines)
    for raw in it:
        line = raw.strip()
        if not line:
            continue
        if _CRYPTOFEED_HEAD_RE.fullmatch(line):
            yield from _cryptofeed(it)
        else:
            yield ReplayRecord(None, line)
            yield from _json_lines(it)
        return


def json_document_records(text: str | bytes) -> list[ReplayRecord]:
    """Records of one JSON document: a frame object or an array of frames.

    A document that does not parse is returned as one record, whole, so the
    codec drops it visibly.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        return [ReplayRecord(None, raw.strip())]
    if not isinstance(value, list):
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        return [ReplayRecord(None, raw.strip())]  # one frame: keep its exact text
    return [ReplayRecord(None, orjson.dumps(item).decode()) for item in value]


def freqtrade_records(data: bytes | str) -> list[ReplayRecord]:
    """aggTrade frames from a freqtrade trades file (gzip or plain JSON array).

    Elements that are not ccxt trade dicts with an ``info`` object are passed
    on as their JSON text, for the codec to drop.
    """
    if isinstance(data, bytes) and data.startswith(GZIP_MAGIC):
        data = _gunzip(data)
    value = orjson.loads(data)
    if not isinstance(value, list):
        raise ValueError("a freqtrade trades file is a JSON array")
    out: list[ReplayRecord] = []
    for item in value:
        out.append(ReplayRecord(None, _freqtrade_frame(item)))
    return out


def _freqtrade_frame(item: object) -> str:
    if not isinstance(item, dict):
        return orjson.dumps(item).decode()
    info = item.get("info")
    symbol = item.get("symbol")
    if not isinstance(info, dict) or not isinstance(symbol, str):
        return orjson.dumps(item).decode()
    event: dict[str, object] = {
        "e": "aggTrade",
        "E": info.get("T"),
        "s": symbol.replace("/", ""),
    }
    event.update(info)
    return orjson.dumps(event).decode()


def _gunzip(data: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, _MAX_DECOMPRESSED)
    if inflater.unconsumed_tail:
        raise ValueError(f"decompressed data exceeds {_MAX_DECOMPRESSED} bytes")
    return out


def records_from_bytes(data: bytes) -> list[ReplayRecord]:
    """Detect the format of a whole file's bytes and parse it.

    Raises :class:`ValueError` for an unknown format or broken gzip data.
    """
    fmt = detect_format(data[:65536])
    if fmt is ReplayFormat.GZIP:
        try:
            data = _gunzip(data)
        except zlib.error as exc:
            raise ValueError(f"bad gzip data: {exc}") from exc
        fmt = detect_format(data[:65536])
        if fmt is ReplayFormat.GZIP:
            raise ValueError("nested gzip is not supported")
    if fmt is ReplayFormat.FREQTRADE_TRADES:
        return freqtrade_records(data)
    if fmt is ReplayFormat.JSON_DOCUMENT:
        return json_document_records(data)
    if fmt in (ReplayFormat.JSON_LINES, ReplayFormat.CRYPTOFEED):
        text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
        return list(iter_records(text.splitlines()))
    raise ValueError("unknown recording format")


# ---------------------------------------------------------------- pacing


def replay_delay_ms(
    prev_event_ms: int | None,
    next_event_ms: int,
    speed: float,
    max_delay_ms: int = DEFAULT_MAX_DELAY_MS,
) -> int:
    """How long to wait (wall-clock ms) before replaying the next frame.

    * ``speed`` 1.0 is real time, 2.0 twice as fast, 0 as fast as possible
      (always 0 ms); negative or non-finite speeds raise ``ValueError``.
    * The first frame (``prev_event_ms is None``) and frames whose time does
      not advance (equal or out of order) wait 0 ms.
    * The wait is ``(next - prev) / speed`` rounded to the nearest ms and then
      capped at ``max_delay_ms`` (default 5 s), so a recording with an hour's
      hole does not freeze the replay.
    """
    if not math.isfinite(speed) or speed < 0:
        raise ValueError(f"speed must be a finite number >= 0, got {speed!r}")
    if max_delay_ms < 0:
        raise ValueError(f"max_delay_ms must be >= 0, got {max_delay_ms!r}")
    if speed == 0 or prev_event_ms is None:
        return 0
    gap = next_event_ms - prev_event_ms
    if gap <= 0:
        return 0
    delay = gap / speed
    if delay >= max_delay_ms:  # also catches inf from a tiny speed
        return max_delay_ms
    return round(delay)
