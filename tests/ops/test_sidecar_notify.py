"""ai-quant-sidecar.service is Type=notify with WatchdogSec: the real binary, run under a
NOTIFY_SOCKET this test listens on, sends READY=1, then WATCHDOG=1 at half of WATCHDOG_USEC, and
STOPPING=1 on SIGTERM. The venue URL points at a closed port: the socket is served (READY) whether
or not the venue is up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.ops_helpers import REPO

SIDECAR = REPO / "target" / "release" / "ai-quant-sidecar"
pytestmark = pytest.mark.skipif(not SIDECAR.is_file(), reason=f"{SIDECAR} not built (make build)")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths are limited to 107 bytes: tmp_path can be too long."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="aiq-nt-", dir="/tmp") as d:
        yield Path(d)


def _listen(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.1)
    return s


def _collect(s: socket.socket, seconds: float, until: str | None = None) -> list[tuple[float, str]]:
    """Datagrams received within `seconds` (bounded), stopping early at `until`."""
    out: list[tuple[float, str]] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            msg = s.recv(4096).decode()
        except TimeoutError:
            continue
        out.append((time.monotonic() - t0, msg))
        if until is not None and until in msg.splitlines():
            break
    return out


def _start(d: Path, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_QUANT_", "WATCHDOG_"))}
    env.update(
        NOTIFY_SOCKET=str(d / "notify"),
        AI_QUANT_DATA_DIR=str(d),
        AI_QUANT_WS_SIDECAR_SOCK=str(d / "ws.sock"),
        AI_QUANT_EXCHANGE_URL="http://127.0.0.1:9",  # discard port: nothing listens
    )
    env.update(extra)
    return subprocess.Popen(
        [str(SIDECAR), "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _stop(p: subprocess.Popen[str]) -> int:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
        raise


def test_ready_then_watchdog_then_stopping(short_dir: Path) -> None:
    s = _listen(short_dir / "notify")
    p = _start(short_dir, WATCHDOG_USEC="400000")  # pings every 0.2 s
    try:
        first = _collect(s, 10.0, until="READY=1")
        assert first and first[-1][1] == "READY=1", (first, p.stderr)
        assert (short_dir / "ws.sock").exists(), "READY=1 before the socket is served"
        pings = _collect(s, 1.5)
        assert [m for _, m in pings if m != "WATCHDOG=1"] == []
        assert 4 <= len(pings) <= 12, pings  # about 7 in 1.5 s at 0.2 s
        p.send_signal(signal.SIGTERM)
        tail = _collect(s, 10.0, until="STOPPING=1")
        assert tail and tail[-1][1] == "STOPPING=1", tail
        assert _stop(p) == 0
    finally:
        if p.poll() is None:
            _stop(p)
        s.close()


def test_no_watchdog_pings_for_another_pid(short_dir: Path) -> None:
    """WATCHDOG_PID names the process systemd watches; a child with another pid must not ping."""
    s = _listen(short_dir / "notify")
    p = _start(short_dir, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    try:
        first = _collect(s, 10.0, until="READY=1")
        assert first and first[-1][1] == "READY=1"
        assert _collect(s, 0.8) == []
    finally:
        _stop(p)
        s.close()


@pytest.mark.parametrize("notify", ["", "missing"])
def test_runs_without_a_notify_listener(short_dir: Path, notify: str) -> None:
    """Started by hand (no NOTIFY_SOCKET) or with a socket nobody listens on: it still serves."""
    env_dir = short_dir / "x"
    env_dir.mkdir()
    p = _start(env_dir, NOTIFY_SOCKET=str(env_dir / notify) if notify else "")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (env_dir / "ws.sock").exists():
            time.sleep(0.05)
        assert (env_dir / "ws.sock").exists()
        assert p.poll() is None
    finally:
        assert _stop(p) == 0
