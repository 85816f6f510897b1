"""Fixtures for the operator-tool tests: the local exchange as a process, the paper daemon as a
process, and a way to run a tool the way an operator does (a subprocess with AI_QUANT_* set).

The venue replays real Hyperliquid 5m candles from ../shared/data at x300 with the data's own
timestamps (``--no-time-shift``), so a replay of the same candles from the same files lines up
with what the daemon saw. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.daemon_harness import CONFIG, DATA, SYMBOLS, DaemonProcess, LocalExchange
from tests.daemon_harness import free_port as free_port  # for the ops tests
from tests.daemon_harness import wait_for as wait_for  # for the ops tests
from tools.daemon_proc import committed_loops, daemon_env

REPO = Path(__file__).resolve().parents[2]
REPLAY_START = "2025-04-01"
# Throwaway keys, funded only on the local exchange; one per test that trades, so positions of
# one test never leak into another.
WALLET_KEYS = ["0x" + f"{0xA11CE + i:064x}" for i in range(6)]
WALLET_KEY = WALLET_KEYS[0]
WALLETS = [Account.from_key(k).address for k in WALLET_KEYS]
LIVE_GATES = {"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": "I_UNDERSTAND_THIS_CAN_LOSE_MONEY"}


class Venue(LocalExchange):
    """The local exchange on the real 5m candles from REPLAY_START with their own timestamps, every
    wallet of WALLETS funded."""

    def __init__(self, root: Path, *extra: str) -> None:
        if not DATA.exists():
            pytest.skip(f"real data not found under {DATA}")
        port = free_port()
        super().__init__(
            root / f"venue-{port}.log", "--no-time-shift", "--start", REPLAY_START,
            *(x for w in WALLETS for x in ("--deposit", f"{w}=100000")), *extra, port=port,
        )  # fmt: skip


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    v = Venue(tmp_path_factory.mktemp("venue"))
    try:
        yield v
    finally:
        v.stop()


def base_env(root: Path, url: str, wallet: int = 0, **extra: str) -> dict[str, str]:
    """The environment an env file would give: no AI_QUANT_* from the caller, all paths under root."""
    config = root / "strategy.yaml"
    if not config.exists():
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG)
    secrets = root / "secrets.json"
    if not secrets.exists():
        secrets.write_text(json.dumps({"secret_key": WALLET_KEYS[wallet]}))
        secrets.chmod(0o600)
    return daemon_env(root, url, SYMBOLS, **{"AI_QUANT_SECRETS_PATH": str(secrets), **extra})


def run_tool(
    tool: str, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / tool), *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def tool_json(tool: str, *args: str, env: dict[str, str], code: int = 0) -> dict[str, Any]:
    r = run_tool(tool, *args, env=env)
    assert r.returncode == code, f"{tool} {args}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    return dict(json.loads(r.stdout))


class Daemon(DaemonProcess):
    """``python -m daemon`` with ``env`` (from ``base_env``), its log beside its data folder."""

    stop_timeout = 30.0

    def __init__(self, env: dict[str, str]) -> None:
        data = Path(env["AI_QUANT_DATA_DIR"])
        super().__init__(env, data / "trading_engine.db", data.parent / "daemon.log")
        self.root = data.parent

    def loops(self) -> int:
        """Loops committed to the trading DB."""
        return committed_loops(self.db_path)

    def alive(self) -> bool:
        return self.running()


def bt_binary() -> Path:
    exe = Path(os.environ.get("AI_QUANT_BT") or REPO / "target" / "release" / "ai-quant-bt")
    if not exe.is_file():
        pytest.skip(f"{exe} not built (make build)")
    return exe


@pytest.fixture(scope="session")
def candles_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same real 5m candles the venue replays, imported with tools/import_candles.py."""
    if not DATA.exists():
        pytest.skip(f"real data not found under {DATA}")
    out = tmp_path_factory.mktemp("candles")
    files = [str(DATA / f"{s}_USDC_USDC-5m-futures.feather") for s in SYMBOLS.split(",")]
    r = subprocess.run([sys.executable, str(REPO / "tools" / "import_candles.py"), "--db-dir", str(out), "--quiet",
                        *files], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out / "candles_5m.db"
