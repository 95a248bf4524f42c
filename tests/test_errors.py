"""The exception tree: one root, drawn in ``engine.errors``'s docstring.

Walks every module of ``engine``, ``actors`` and ``tickdesk``, collects every
exception class defined there, and checks that each derives from
``TickdeskError`` and that the public ones stand in the drawing under their
real base class (so the drawing cannot drift from the code).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import engine.errors
from engine.errors import TickdeskError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "actors", "tickdesk")


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            module = importlib.import_module(name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == name:
                    found[f"{name}.{obj.__qualname__}"] = obj
    return found


def _drawn_tree() -> dict[str, str | None]:
    """``{class name: parent name}`` read from the docstring's drawing."""
    doc = engine.errors.__doc__ or ""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*(?:[│ ]   )*(?:[├└]── )?)([A-Z]\w*)(?:\s{2,}|$)", line)
        if not m or not line.startswith("    ") or ("──" not in line and "Error" not in m[2]):
            continue
        depth = len(m[1])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[m[2]] = stack[-1][1] if stack else None
        stack.append((depth, m[2]))
    return parents


def test_every_exception_tickdesk_defines_derives_from_the_root() -> None:
    found = _defined_exceptions()
    assert len(found) >= 20  # the walk really found the tree
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, TickdeskError))
    assert outside == []


def test_the_drawing_matches_the_classes() -> None:
    public = {name: cls for name, cls in _defined_exceptions().items()
              if not cls.__name__.startswith("_")}
    by_name: dict[str, type[BaseException]] = {}
    for cls in public.values():
        assert cls.__name__ not in by_name, f"two exception classes named {cls.__name__}"
        by_name[cls.__name__] = cls
    drawn = _drawn_tree()
    assert drawn["TickdeskError"] is None
    assert sorted(drawn) == sorted(by_name)
    for name, parent in drawn.items():
        if parent is None:
            continue
        bases = [b.__name__ for b in by_name[name].__bases__]
        assert parent in bases, f"{name} is drawn under {parent}, its bases are {bases}"


def test_one_unknown_order_for_the_book_and_the_wire() -> None:
    from engine.trading.errors import RequestError, UnknownOrder

    assert UnknownOrder is engine.errors.UnknownOrder
    assert UnknownOrder("x").code == "UNKNOWN_ORDER"
    err = RequestError("quantity", "must be > 0")
    assert isinstance(err, engine.errors.BadRequest)
    assert (err.code, err.message, err.field) == ("BAD_REQUEST", "quantity: must be > 0",
                                                  "quantity")
