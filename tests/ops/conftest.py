"""Fixtures for the operator-tool tests: the local exchange as a process, the paper daemon as a
process, and a way to run a tool the way an operator does (a subprocess with AI_QUANT_* set).

The venue replays real Hyperliquid 5m candles from ../shared/data at x300 with the data's own
timestamps (``--no-time-shift``), so a replay of the same candles from the same files lines up
with what the daemon saw. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

REPO = Path(__file__).resolve().parents[2]
DATA = (
    Path(os.environ.get("AI_QUANT_SHARED_DATA", REPO.parent / "shared" / "data")) / "hyperliquid" / "futures"
)
SYMBOLS = "BTC,ETH,SOL"
REPLAY_START = "2025-04-01"
# Throwaway keys, funded only on the local exchange; one per test that trades, so positions of
# one test never leak into another.
WALLET_KEYS = ["0x" + f"{0xA11CE + i:064x}" for i in range(6)]
WALLET_KEY = WALLET_KEYS[0]
WALLETS = [Account.from_key(k).address for k in WALLET_KEYS]
CONFIG = """\
global:
  trade:
    entry_min_confidence: low
    max_open_positions: 3
    enable_ssf_filter: false
    enable_reef_filter: false
  indicators:
    ema_fast_window: 8
    ema_slow_window: 15
  thresholds:
    entry:
      min_adx: 15.0
  engine:
    interval: 5m
    loop_target_s: 0.4
    lookback_bars: 300
"""
LIVE_GATES = {"AI_QUANT_LIVE_ENABLE": "1", "AI_QUANT_LIVE_CONFIRM": "I_UNDERSTAND_THIS_CAN_LOSE_MONEY"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Venue:
    """``python -m exchange.sim`` as a process on a free loopback port."""

    def __init__(self, root: Path, *extra: str) -> None:
        if not DATA.exists():
            pytest.skip(f"real data not found under {DATA}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"venue-{self.port}.log"
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(self.port),
                 "--symbols", SYMBOLS, "--data-dir", str(DATA), "--interval", "5m", "--speed", "300",
                 "--rate-limit", "0", "--no-time-shift", "--start", REPLAY_START,
                 *(x for w in WALLETS for x in ("--deposit", f"{w}=100000")), *extra],
                cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
        from hyperliquid.info import Info

        def up() -> bool:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                return bool(Info(self.url, skip_ws=True, timeout=2).all_mids())
            except Exception:
                return False

        try:
            wait_for(up, 90, "the local exchange")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    v = Venue(tmp_path_factory.mktemp("venue"))
    try:
        yield v
    finally:
        v.stop()


def base_env(root: Path, url: str, wallet: int = 0, **extra: str) -> dict[str, str]:
    """The environment an env file would give: no AI_QUANT_* from the caller, all paths under root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    config = root / "strategy.yaml"
    if not config.exists():
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG)
    secrets = root / "secrets.json"
    if not secrets.exists():
        secrets.write_text(json.dumps({"secret_key": WALLET_KEYS[wallet]}))
        secrets.chmod(0o600)
    env.update(
        AI_QUANT_MODE="paper", AI_QUANT_DATA_DIR=str(root / "data"), AI_QUANT_CANDLES_DIR=str(root / "no_candles"),
        AI_QUANT_WS_SIDECAR_SOCK=str(root / "no.sock"), AI_QUANT_STRATEGY_YAML=str(config),
        AI_QUANT_SYMBOLS=SYMBOLS, AI_QUANT_EXCHANGE_URL=url, AI_QUANT_KILL_SWITCH_FILE=str(root / "kill_switch"),
        AI_QUANT_SECRETS_PATH=str(secrets),
    )  # fmt: skip
    env.update(extra)
    return env


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


class Daemon:
    """``python -m daemon`` in paper mode against a venue."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.root = Path(env["AI_QUANT_DATA_DIR"]).parent
        self.db_path = Path(env["AI_QUANT_DATA_DIR"]) / "trading_engine.db"
        self.log = self.root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> Daemon:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon", *args], cwd=REPO, env=self.env, stdout=fh,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.db_path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def loops(self) -> int:
        rows = self.q("SELECT value FROM kv WHERE key='loops'")
        return int(rows[0][0]) if rows else 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


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
