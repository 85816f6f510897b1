"""Fixtures for the local-exchange tests: an in-process venue on 127.0.0.1 with a stepped clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from sim_helpers import make_config, new_wallet

from exchange.sim.harness import SimServer


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(make_config()) as server:
        yield server


@pytest.fixture
def wallet(sim: SimServer) -> LocalAccount:
    w = new_wallet()
    sim.deposit(w.address, 100_000)
    return w
