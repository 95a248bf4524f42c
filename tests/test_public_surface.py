"""The public package: what users import is small, documented and complete."""

from __future__ import annotations

import re
from pathlib import Path

import tickdesk

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_is_importable_and_documented() -> None:
    assert sorted(tickdesk.__all__) == sorted(set(tickdesk.__all__))
    for name in tickdesk.__all__:
        assert getattr(tickdesk, name) is not None, name
    for name in tickdesk.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(tickdesk, name)
        assert (getattr(obj, "__doc__", None) or "").strip(), f"{name} has no docstring"


def test_the_readme_imports_only_the_public_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    imports = re.findall(r"^from (\S+) import", readme, flags=re.M)
    assert imports, "the README shows no import"
    assert {m.split(".")[0] for m in imports} <= {"tickdesk"}, imports
