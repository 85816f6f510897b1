"""Helpers for the sidecar integration tests: the real local exchange and the real sidecar binary,
each in a subprocess on 127.0.0.1. Every wait is bounded by a deadline."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from exchange.sidecar import SidecarClient, SidecarUnavailable
from tests.shared_data import HL_FUTURES

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "release" / "ai-quant-sidecar"
DATA_DIR = HL_FUTURES
REPLAY_START = "2025-04-01T12:00:00Z"  # inside the shipped 5m data
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(fn: Callable[[], T], timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll ``fn`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except (SidecarUnavailable, ConnectionError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def ensure_binary() -> Path | None:
    """The release binary, built if missing (None when it cannot be built here)."""
    if BINARY.exists():
        return BINARY
    cargo = shutil.which("cargo")
    if cargo is None:
        return None
    subprocess.run(
        [cargo, "build", "--release", "-p", "ai-quant-sidecar"], cwd=ROOT, check=False, timeout=1200
    )
    return BINARY if BINARY.exists() else None


class Venue:
    """``python -m exchange.sim`` in a subprocess: stepped clock, admin API, no rate limit."""

    def __init__(self, tmp: Path, symbols: str = "BTC,ETH", deposits: list[str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            "-m",
            "exchange.sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--symbols",
            symbols,
            "--stepped",
            "--enable-admin",
            "--rate-limit",
            "0",
            "--seed",
            "7",
            "--data-dir",
            str(DATA_DIR),
            "--start",
            REPLAY_START,
            "--log-level",
            "WARNING",
        ]
        for d in deposits or []:
            args += ["--deposit", d]
        self.log = open(tmp / f"venue-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=90, interval=0.2, what="local exchange to start")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"local exchange exited with {self.proc.returncode}")
        try:
            self.admin("time")
        except OSError:
            return False
        return True

    def post(self, path: str, body: Any, timeout: float = 30.0) -> Any:
        req = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def admin(self, op: str, body: dict[str, Any] | None = None) -> Any:
        return self.post(f"/admin/{op}", body or {})

    def now(self) -> int:
        return int(self.admin("time")["time"])

    def advance(self, ms: int, step_ms: int = 20_000) -> None:
        left = ms
        while left > 0:
            self.admin("advance", {"ms": min(step_ms, left)})
            left -= step_ms

    def faults(self, **kw: Any) -> None:
        self.admin("faults", kw)

    def candles(self, coin: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        req = {"coin": coin, "interval": interval, "startTime": start, "endTime": end}
        return list(self.post("/info", {"type": "candleSnapshot", "req": req}))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


class Sidecar:
    """The release binary in a subprocess with its own socket and candle directory."""

    def __init__(
        self, binary: Path, tmp: Path, venue: Venue, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.binary = binary
        self.tmp = tmp
        self.sock = tmp / "sidecar.sock"
        self.candles_dir = tmp / "candles"
        self.venue = venue
        self.args = list(args)
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AI_QUANT_WS_SIDECAR_SOCK": str(self.sock),
            "AI_QUANT_EXCHANGE_URL": self.venue.base_url,
            "AI_QUANT_CANDLES_DIR": str(self.candles_dir),
            **self.extra_env,
        }
        args = [
            str(self.binary),
            "--flush-ms",
            "100",
            "--reconcile-delay-ms",
            "200",
            "--backfill-spacing-ms",
            "20",
            "--reconnect-min-ms",
            "200",
            "--reconnect-max-ms",
            "2000",
            "--stale-secs",
            "30",
            *self.args,
        ]
        self.starts += 1
        self.log = open(self.tmp / f"sidecar-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=20, what="sidecar socket")

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"sidecar exited with {self.proc.returncode}: {self.read_log()}")
        if not self.sock.exists():
            return False
        with SidecarClient(self.sock, timeout=2) as c:
            return c.health().version != ""

    def read_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("sidecar-*.log")))

    def client(self, timeout: float = 5.0) -> SidecarClient:
        return SidecarClient(self.sock, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        return int(self.proc.returncode)

    # ---- candle checks -----------------------------------------------------------------------
    def db_rows(self, symbol: str, interval: str) -> list[tuple[Any, ...]]:
        path = self.candles_dir / f"candles_{interval}.db"
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(
                "SELECT t, t_close, o, h, l, c, v, n FROM candles WHERE symbol = ? AND interval = ? ORDER BY t",
                (symbol, interval),
            ).fetchall()
        finally:
            conn.close()

    def candle_diff(self, symbol: str, interval: str, iv_ms: int) -> list[str]:
        """Differences between the DB and the exchange's candleSnapshot (empty when they agree)."""
        rows = self.db_rows(symbol, interval)
        if not rows:
            return ["no rows"]
        now = self.venue.now()
        first = rows[0][0]
        venue_rows = self.venue.candles(symbol, interval, first, now)
        want = {
            int(c["t"]): (
                int(c["t"]),
                int(c["T"]),
                float(c["o"]),
                float(c["h"]),
                float(c["l"]),
                float(c["c"]),
                float(c["v"]),
                int(c["n"]),
            )
            for c in venue_rows
        }
        have = {int(r[0]): tuple(r) for r in rows if int(r[0]) >= min(want, default=first)}
        diffs = []
        for t in sorted(set(want) | set(have)):
            if want.get(t) != have.get(t):
                diffs.append(f"t={t}: venue {want.get(t)} db {have.get(t)}")
        ts = [int(r[0]) for r in rows]
        gaps = [(a, b) for a, b in itertools.pairwise(ts) if b - a != iv_ms]
        if gaps:
            diffs.append(f"gaps {gaps[:5]}")
        return diffs[:10]

    def wait_candles_match(
        self, symbols: list[str], interval: str, iv_ms: int, timeout: float = 30.0
    ) -> None:
        def ok() -> bool:
            return all(not self.candle_diff(s, interval, iv_ms) for s in symbols)

        try:
            wait_for(ok, timeout=timeout, interval=0.25, what="DB candles to equal the exchange's")
        except AssertionError:
            details: dict[str, Any] = {s: self.candle_diff(s, interval, iv_ms) for s in symbols}
            try:
                with self.client(timeout=2) as c:
                    details["ws_stats"] = c.ws_stats()
                    details["candles_health"] = c.call(
                        "candles_health", {"symbols": symbols, "interval": interval}
                    )
            except (OSError, RuntimeError) as exc:
                details["ws_stats"] = repr(exc)
            raise AssertionError(
                f"candles differ: {details}\n--- sidecar log ---\n{self.read_log()[-3000:]}"
            ) from None
