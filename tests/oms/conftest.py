"""Fixtures for the OMS tests: an in-process local exchange (stepped clock) and fresh wallets."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from engine.oms import LiveOms
from exchange.executor import HyperliquidExecutor, MonotonicNonce
from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
from exchange.sim.config import SimConfig
from exchange.sim.data import DAY_MS
from exchange.sim.harness import SimServer
from tests.shared_data import HL_FUTURES

REPLAY_START = 1_743_508_800_000  # 2025-04-01T12:00:00Z, inside the shipped 5m data
DATA_DIR = HL_FUTURES
_keys = itertools.count(0x5000)


def sim_config(**overrides: Any) -> SimConfig:
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    cfg = SimConfig(
        clock_mode="stepped",
        data_dir=DATA_DIR,
        start=REPLAY_START,
        sim_start=today + REPLAY_START % DAY_MS,
        rate_limit=0,
        seed=11,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def new_wallet() -> LocalAccount:
    return Account.from_key("0x" + f"{next(_keys):064x}")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(sim_config()) as server:
        yield server


@pytest.fixture
def wallet(sim: SimServer) -> LocalAccount:
    w = new_wallet()
    sim.deposit(w.address, 100_000)
    return w


@pytest.fixture
def oms(tmp_path: Path) -> Iterator[LiveOms]:
    o = LiveOms(tmp_path / "live.db", client_ids=HYPERLIQUID_CLIENT_IDS)
    yield o
    o.close()


@pytest.fixture
def executor(sim: SimServer, wallet: LocalAccount, oms: LiveOms) -> HyperliquidExecutor:
    return HyperliquidExecutor(wallet, sim.base_url, MonotonicNonce(oms), timeout=10)
