"""Shared helpers for the local-exchange tests (imported by conftest and test modules)."""

from __future__ import annotations

import time
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.utils.signing import sign_l1_action

from exchange.sim.config import SimConfig
from exchange.sim.data import DAY_MS
from exchange.sim.harness import SimServer
from tests.shared_data import HL_FUTURES, SHARED_DATA

REPLAY_START = 1_743_508_800_000  # 2025-04-01T12:00:00Z, inside the shipped 5m data
DATA_DIR = HL_FUTURES
CASSETTES = SHARED_DATA / "fixtures" / "hyperliquid-python-sdk" / "cassettes"


def make_config(**overrides: Any) -> SimConfig:
    """Deterministic prices: the replay starts at REPLAY_START, sim time is today at the same time of day."""
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    cfg = SimConfig(
        clock_mode="stepped",
        data_dir=DATA_DIR,
        start=REPLAY_START,
        sim_start=today + REPLAY_START % DAY_MS,
        rate_limit=0,
        seed=7,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


_counter = [0]


def new_wallet() -> LocalAccount:
    _counter[0] += 1
    return Account.from_key("0x" + f"{_counter[0] + 1000:064x}")


def post_signed(
    sim: SimServer, wallet: LocalAccount, action: dict[str, Any], nonce: int, expires_after: int | None = None
) -> Any:
    """POST one L1 action, signed as the SDK signs it (testnet source), exactly as given."""
    sig = sign_l1_action(wallet, action, None, nonce, expires_after, False)
    body = {
        "action": action,
        "nonce": nonce,
        "signature": sig,
        "vaultAddress": None,
        "expiresAfter": expires_after,
    }
    return requests.post(sim.base_url + "/exchange", json=body, timeout=10).json()
