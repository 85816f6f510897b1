"""Fixtures for the monitor tests: one real paper run per session.

The local exchange (``python -m exchange.sim``) replays real Hyperliquid 5m candles at x300, the
real WS sidecar streams its mids and candles, and the real paper daemon (``python -m
daemon``) trades against it until the DB holds trades and an open position; then it is
stopped. The venue and the sidecar keep running, so the monitor under test streams live mids while
it serves the DB of that run. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon_harness import DATA, SIDECAR, Daemon, LocalExchange, sidecar, wait_for
from tests.daemon_harness import free_port as free_port  # the monitor tests' ports
from tools.daemon_proc import stop_process

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".build" / "artifacts" / "monitor"
TOKEN = "test-token-0123456789abcdef"


@dataclass(frozen=True)
class PaperRun:
    root: Path
    db: Path
    config: Path
    candles_dir: Path
    sock: Path | None  # None: the sidecar binary is not built (SSE tests skip)
    venue_url: str


@pytest.fixture(scope="session")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaperRun]:
    if not DATA.exists():
        pytest.skip(f"real market data not found under {DATA}")
    root = tmp_path_factory.mktemp("paper_run")
    with contextlib.ExitStack() as running:  # the venue and the sidecar outlive the daemon
        url = running.enter_context(LocalExchange(root / "venue.log")).url
        sock: Path | None = None
        candles = root / "candles"
        extra: dict[str, str] = {}
        if SIDECAR.exists():
            sock, candles = running.enter_context(sidecar(root, url))
            extra = {"AI_QUANT_WS_SIDECAR_SOCK": str(sock), "AI_QUANT_CANDLES_DIR": str(candles)}
        d = Daemon(url, root / "daemon", **extra)
        with d.start("--max-loops", "5000"):
            wait_for(
                lambda: d.n("SELECT COUNT(*) FROM trades WHERE action != 'FUNDING'") >= 2
                and d.n("SELECT COUNT(*) FROM position_state") >= 1,
                240, "paper trades and an open position", every=0.2,
            )  # fmt: skip
            assert d.stop() == 0, d.log.read_text()[-3000:]
        if sock is None:  # no sidecar: the candle chart reads the candles the venue would give
            candles.mkdir()
        yield PaperRun(root, d.db_path, d.config, candles, sock, url)


class Monitor:
    """``python -m monitor`` in a subprocess on 127.0.0.1."""

    def __init__(self, run: PaperRun, tmp: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"monitor-{self.port}.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
        full.update(
            AI_QUANT_MODE="paper", AI_QUANT_DATA_DIR=str(run.db.parent), AI_QUANT_CANDLES_DIR=str(run.candles_dir),
            AI_QUANT_WS_SIDECAR_SOCK=str(run.sock or tmp / "no-sidecar.sock"),
            AI_QUANT_STRATEGY_YAML=str(run.config), AI_QUANT_MONITOR_BIND=f"127.0.0.1:{self.port}",
        )  # fmt: skip
        full.update(env)
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", *args],
                cwd=ROOT,
                env=full,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._up, 30, "the monitor")

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> int:
        return stop_process(self.proc, timeout=10, raise_if_killed=False)


@pytest.fixture
def monitor_factory(tmp_path: Path) -> Iterator[type[Monitor] | object]:
    started: list[Monitor] = []

    def make(run: PaperRun, *args: str, **env: str) -> Monitor:
        m = Monitor(run, tmp_path, *args, **env)
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop()


def db_copy(run: PaperRun, dest: Path) -> Path:
    """A private copy of the run's DB (tests that corrupt or lock a DB never touch the shared one)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "trading_engine.db"
    src = sqlite3.connect(f"file:{run.db}?mode=ro", uri=True)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return out


def wait_http(url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s")
