"""Shared fixtures: the real recorded Binance data in ``<worktree>/../shared/data``
(or the directory named by ``TICKDESK_DATA_DIR``, for a checkout elsewhere).

The data files are test fixtures only (see ``shared/data/SOURCES.md`` for their
licenses); they are never copied into this repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(
    os.environ.get("TICKDESK_DATA_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)


def data_file(relative: str) -> Path:
    """Path of a recorded data file, or skip the test with the reason."""
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"recorded data file {path} is absent (shared/data not available)")
    return path
