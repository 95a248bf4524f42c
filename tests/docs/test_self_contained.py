"""The repository stands alone: nothing in it cites a file outside it, and the
links of its documentation resolve (files and ``#anchors``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Built from pieces so that this file does not match itself.
_OUTSIDE = re.compile("|".join([
    r"spec/" + "PROTOCOL", r"spec/" + "TRADING", r"\.\./" + "shared",
    r"\b" + "DESIGN" + r"\.md", "LIBRARY" + "-FACTS", r"(?<!docs/)\b" + "PROTOCOL" + r"\.md",
    r"(?<!docs/)\b" + "TRADING" + r"\.md",
]))
#: Tests may locate the recorded market data beside the repository (see tests/feeds/helpers.py).
_DATA_PATH = re.compile(r"shared/data")


def _files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("git is not available")
    return [ROOT / name for name in out.stdout.splitlines() if (ROOT / name).is_file()]


def test_nothing_cites_a_file_outside_the_repository() -> None:
    found = []
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE.search(line) and not (rel.startswith("tests/") and _DATA_PATH.search(line)):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []


def _slug(title: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", path.read_text(encoding="utf-8"),
                                                      re.M)}


DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves(doc: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert broken == []


def test_the_index_links_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)(?:#[^)]*)?\)", index))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages - linked == set()
    assert "docs/index.md" in (ROOT / "README.md").read_text(encoding="utf-8")


_PATH = re.compile(r"(?:engine|actors|tickdesk|tests|docs|scripts|examples)/[\w./-]*")


def _named_paths(doc: Path) -> set[str]:
    """Repository paths a page names in backticks. In design.md's "Where things
    live" tables a name is relative to its section's directory (``### `actors/```)."""
    text = doc.read_text(encoding="utf-8")
    names = {t for t in re.findall(r"`([^`\n]+)`", text) if _PATH.fullmatch(t)}
    if doc.name == "design.md":
        where = text[text.index("## Where things live"):text.index("## How a trade flows")]
        for block in re.split(r"^### ", where, flags=re.M)[1:]:
            prefix = re.match(r"`([\w/]+/)`", block)
            assert prefix, block.splitlines()[0]
            for row in block.splitlines():
                if row.startswith("| `"):
                    for name in re.findall(r"`([\w./]+)`", row.split("|")[1]):
                        names.add(name if name.startswith(prefix.group(1))
                                  else prefix.group(1) + name)
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_named_path_exists(doc: Path) -> None:
    missing = {n for n in _named_paths(doc) if not (ROOT / n).exists()}
    assert missing == set()
