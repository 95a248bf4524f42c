"""Shared fixtures: the real recorded Binance data in ``<worktree>/../shared/data``
(or the directory named by ``TICKDESK_DATA_DIR``, for a checkout elsewhere).

The data files are test fixtures only (see ``shared/data/SOURCES.md`` for their
licenses); they are never copied into this repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _data_dir() -> Path:
    """``shared/data`` beside the checkout, or beside any folder above it (a git
    worktree may sit deeper than the main checkout)."""
    root = Path(__file__).resolve().parents[2]
    for parent in root.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return root.parent / "shared" / "data"


DATA_DIR = Path(os.environ.get("TICKDESK_DATA_DIR") or _data_dir())


def data_file(relative: str) -> Path:
    """Path of a recorded data file, or skip the test with the reason."""
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"recorded data file {path} is absent (shared/data not available)")
    return path
