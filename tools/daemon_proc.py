"""The daemon (``python -m daemon``) as a child process, for the crash harness and the tests.

One place for what every driver of the real daemon repeats: the environment an env file would
give (no ``AI_QUANT_*`` inherited, every path under one folder), a config that trades real
candles often, the spawn with its log, read-only reads of its SQLite files that tolerate a DB not
created yet, bounded waits and stops. Nothing here starts a venue; the tests' venues are in
tests/daemon_harness.py (tools may not import tests).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def trading_config(loop_target_s: float) -> str:
    """Settings that trade real 5m candles often (low entry bar, fast EMAs), one loop per
    ``loop_target_s``: a test or the crash harness sees trades within a bounded time."""
    return f"""\
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
    loop_target_s: {loop_target_s}
    lookback_bars: 300
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the caller binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``cond`` until it returns something true (returned) or ``timeout`` s pass (raises)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def daemon_env(root: Path, url: str, symbols: str, **extra: str) -> dict[str, str]:
    """The environment of a daemon whose files all live under ``root``: the caller's environment
    without any ``AI_QUANT_*``, paper mode, no candle files and no sidecar (REST candles), the
    config at ``root/strategy.yaml``, the kill file ``root/kill_switch``; ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    env.update(
        AI_QUANT_MODE="paper", AI_QUANT_DATA_DIR=str(root / "data"), AI_QUANT_CANDLES_DIR=str(root / "no_candles"),
        AI_QUANT_WS_SIDECAR_SOCK=str(root / "no.sock"), AI_QUANT_STRATEGY_YAML=str(root / "strategy.yaml"),
        AI_QUANT_SYMBOLS=symbols, AI_QUANT_EXCHANGE_URL=url, AI_QUANT_KILL_SWITCH_FILE=str(root / "kill_switch"),
    )  # fmt: skip
    env.update(extra)
    return env


def spawn_daemon(env: Mapping[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m daemon ARGS`` from the repository root, stdout and stderr appended to ``log``."""
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", *args],
            cwd=ROOT,
            env=dict(env),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def read_db(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on a read-only connection; none while the file or its tables do not exist
    yet (the daemon creates them at its first start)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def committed_loops(db: Path) -> int:
    """Loops the daemon has committed to its trading DB (0 before the first)."""
    rows = read_db(db, "SELECT value FROM kv WHERE key='loops'")
    return int(rows[0][0]) if rows else 0


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 15, resume: bool = False,
    raise_if_killed: bool = True,
) -> int:  # fmt: skip
    """Send ``sig`` (if it still runs) and wait up to ``timeout`` s; past that SIGKILL it and raise
    ``subprocess.TimeoutExpired`` (or, without ``raise_if_killed``, return its code). ``resume``:
    SIGCONT first, for a process a test may have stopped (SIGSTOP) and that could not act on it."""
    if proc.poll() is None:
        if resume:
            proc.send_signal(signal.SIGCONT)
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait(10)
        if raise_if_killed:
            raise
        return code
