"""Shared helpers for the data-layer tests: where the real market data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_path() -> Path:
    """``$AI_QUANT_SHARED_DATA``, else ``../shared/data`` relative to the repository root."""
    override = os.environ.get("AI_QUANT_SHARED_DATA")
    return Path(override) if override else (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_path()
    if not (path / "MANIFEST.csv").is_file():
        pytest.skip(
            f"real market data not found at {path} (set AI_QUANT_SHARED_DATA to the shared/data folder)"
        )
    return path
