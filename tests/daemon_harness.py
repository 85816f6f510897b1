"""The local exchange and the paper daemon as processes on 127.0.0.1, for every test that runs them.

``LocalExchange``: ``python -m exchange.sim`` replaying real Hyperliquid 5m candles at x300 (one bar
a second) unless told another source; ready once ``allMids`` answers. ``DaemonProcess``: ``python -m
daemon`` with read-only reads of its trading DB; ``Daemon``: one in paper mode whose files all live
under one folder, looping every 0.4 s on a config that trades real data often. Every wait is
bounded; the process plumbing itself is tools/daemon_proc.py (shared with tools/crash_harness.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest

from engine.heartbeat import parse_heartbeat
from tests.shared_data import HL_FUTURES
from tools.daemon_proc import (
    ROOT,
    daemon_env,
    free_port,
    read_db,
    spawn_daemon,
    stop_process,
    trading_config,
    wait_for,
)

DATA = HL_FUTURES
SYMBOLS = "BTC,ETH,SOL"
CONFIG = trading_config(loop_target_s=0.4)
SIDECAR = ROOT / "target" / "release" / "ai-quant-sidecar"


class LocalExchange:
    """``python -m exchange.sim`` on a loopback port (a free one unless ``port`` is given, e.g. to
    bring a stopped venue back at the same URL), no rate limit. ``source``: the candle arguments
    (default: the real 5m files at x300); ``extra``: more arguments (deposits, ``--enable-admin``).
    The log is appended to, so a venue restarted on the same log keeps its history."""

    def __init__(
        self, log: Path, *extra: str, port: int | None = None, symbols: str = SYMBOLS,
        source: tuple[str, ...] = ("--data-dir", str(DATA), "--interval", "5m", "--speed", "300"),
        up_timeout: float = 90,
    ) -> None:  # fmt: skip
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(self.port),
                 "--symbols", symbols, *source, "--rate-limit", "0", *extra],
                cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for(self._up, up_timeout, "the local exchange")
        except BaseException:
            self.stop()
            raise

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-2000:]
        from hyperliquid.info import Info

        try:
            return bool(Info(self.url, skip_ws=True, timeout=2).all_mids())
        except Exception:
            return False

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (``kill``: SIGKILL, an outage), SIGCONT first in case a test left it stopped."""
        sig = signal.SIGKILL if kill else signal.SIGTERM
        stop_process(self.proc, sig, timeout=15, resume=True, raise_if_killed=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def real_data_venue(folder: Path, *extra: str) -> Iterator[str]:
    """A ``LocalExchange`` on the real 5m candles, logging to ``folder/venue.log``: its URL. The
    test skips where the data is not there."""
    if not DATA.exists():
        pytest.skip(f"real data not found under {DATA}")
    with LocalExchange(folder / "venue.log", *extra) as v:
        yield v.url


class DaemonProcess:
    """``python -m daemon`` as a child process with ``env``; its output appended to ``log``."""

    stop_timeout = 20.0

    def __init__(self, env: dict[str, str], db_path: Path, log: Path) -> None:
        self.env = env
        self.db_path = db_path
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> Self:
        self.proc = spawn_daemon(self.env, self.log, *args)
        return self

    def q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return read_db(self.db_path, sql, args)

    def n(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        rows = self.q(sql, args)
        return int(rows[0][0] or 0) if rows else 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int:
        """``sig`` and its exit code within ``timeout`` (default ``stop_timeout``) s; past that it is
        killed and ``subprocess.TimeoutExpired`` raised."""
        assert self.proc is not None
        return stop_process(self.proc, sig, self.stop_timeout if timeout is None else timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            assert self.proc is not None  # resumed first, in case a test left it stopped
            stop_process(self.proc, signal.SIGKILL, timeout=10, resume=True, raise_if_killed=False)


class Daemon(DaemonProcess):
    """The paper daemon against ``url`` with every file under ``root`` (config ``CONFIG`` unless
    ``root/strategy.yaml`` exists); ``env``: variables on top (another mode, a sidecar socket)."""

    def __init__(self, url: str, root: Path, **env: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.config = root / "strategy.yaml"
        if not self.config.exists():
            self.config.write_text(CONFIG)
        self.kill_file = root / "kill_switch"
        super().__init__(
            daemon_env(root, url, SYMBOLS, **env), root / "data" / "trading_engine.db", root / "daemon.log"
        )

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``python -m daemon ARGS`` to its end (a refusal, ``--help``), output captured."""
        return subprocess.run(
            [sys.executable, "-m", "daemon", *args], cwd=ROOT, env=self.env, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip

    def heartbeat(self) -> dict[str, str]:
        rows = self.q("SELECT message FROM runtime_logs ORDER BY id DESC LIMIT 1")
        return parse_heartbeat(rows[0][0]) if rows else {}

    def loops(self) -> int:
        """Loops as the last heartbeat counts them."""
        return int(self.heartbeat().get("loops", 0))

    def alive(self) -> None:
        assert self.running(), self.log.read_text()[-3000:]


@contextmanager
def sidecar(root: Path, url: str, *extra: str) -> Iterator[tuple[Path, Path]]:
    """The real sidecar binary streaming ``url`` for SYMBOLS' 5m candles: yields (socket, candle
    dir) once the socket exists; ``extra``: more arguments."""
    root.mkdir(parents=True, exist_ok=True)
    sock, candles = root / "ws.sock", root / "sidecar_candles"
    with (root / "sidecar.log").open("ab") as fh:
        proc = subprocess.Popen(
            [str(SIDECAR), "--sock", str(sock), "--exchange-url", url, "--candles-dir", str(candles),
             "--symbols", SYMBOLS, "--intervals", "5m", *extra],
            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(sock.exists, 30, "the sidecar socket")
        yield sock, candles
    finally:
        stop_process(proc, raise_if_killed=False)
