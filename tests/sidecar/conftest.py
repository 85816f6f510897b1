"""Fixtures for the sidecar integration tests: the local exchange and the sidecar binary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sidecar_helpers import DATA_DIR, Venue, ensure_binary

USER = "0x" + "ab" * 20


@pytest.fixture(scope="session")
def sidecar_binary() -> Path:
    binary = ensure_binary()
    if binary is None:
        pytest.skip("the sidecar binary is not built and cargo is not available to build it")
    return binary


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    if not (DATA_DIR / "BTC_USDC_USDC-5m-futures.feather").exists():
        pytest.skip(f"local exchange data not found at {DATA_DIR}")
    v = Venue(tmp_path_factory.mktemp("venue"), deposits=[f"{USER}=1000000"])
    yield v
    v.stop()


@pytest.fixture(autouse=True)
def _clear_faults(venue: Venue) -> Iterator[None]:
    yield
    venue.faults(ws_drop_rate=0.0, freeze_mids=False, duplicate_fill_rate=0.0, ws_delay_rate=0.0)
