"""Statistics: what an object counts, as a small frozen dataclass (as trio's objects have).

Pure core. An object that counts things offers ``statistics()``, returning a
frozen dataclass whose fields are declared with :func:`counter` or
:func:`gauge`. ``/metrics`` reads every source's ``statistics()`` at scrape
time and exports each declared field as ``tickdesk_<prefix>_<field>``
(:class:`engine.server.ops.StatisticsCollector`; counters get Prometheus'
``_total`` suffix). So a new metric of an existing object is one field in its
dataclass plus the line that counts it; a new object is its ``statistics()``
plus one line in ``Engine.statistics`` (``tickdesk/app.py``).

A field's value is a number (one sample) or a ``Mapping[str, int | float]``
(one sample per key, the key in the label the field names).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import field, fields, is_dataclass
from typing import Any, Literal

__all__ = ["Sample", "counter", "gauge", "samples"]

Kind = Literal["counter", "gauge"]


def counter(help: str, label: str | None = None) -> Any:
    """A dataclass field that only grows (it may restart from 0 with its owner)."""
    return field(metadata={"kind": "counter", "help": help, "label": label})


def gauge(help: str, label: str | None = None) -> Any:
    """A dataclass field that is a current value."""
    return field(metadata={"kind": "gauge", "help": help, "label": label})


#: ``(field name, kind, help, label, value)``: ``value`` is a number, or a
#: mapping of label value to number when ``label`` is set.
Sample = tuple[str, Kind, str, str | None, float | Mapping[str, float]]


def samples(stats: object) -> Iterator[Sample]:
    """Every declared field of a statistics dataclass, in declaration order."""
    if not is_dataclass(stats) or isinstance(stats, type):
        raise TypeError(f"not a statistics dataclass instance: {stats!r}")
    for f in fields(stats):
        kind = f.metadata.get("kind")
        if kind is None:
            continue
        yield f.name, kind, f.metadata["help"], f.metadata["label"], getattr(stats, f.name)
