"""Suite-wide plugins and fixtures: the skip guard (strict in CI) and headless Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.skip_guard"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium through playwright (no browser download), one per test module."""
    from tools.bench_reports import CHROMIUM, launch

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("chromium not found (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
