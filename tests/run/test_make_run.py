"""`make run`'s job (tools/run_main.py) works end to end and stops cleanly.

Runs the real job on a free loopback port: import, backtest, local exchange, sidecar, kernel paper loop.
Stops it with SIGTERM once the paper loop has warmed up, then checks no child process is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children_alive(port: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"--port {port}" in line or f"127.0.0.1:{port}" in line]


@pytest.mark.slow
def test_main_job_runs_and_stops_cleanly() -> None:
    if not (DATA / "hyperliquid" / "futures").exists():
        pytest.skip(f"real data not found under {DATA}")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "tools/run_main.py", "--port", str(port), "--speed", "120"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        while time.monotonic() < deadline and proc.poll() is None:
            chunk = proc.stdout.readline()
            if chunk:
                lines.append(chunk)
                if "warm-up:" in chunk:
                    break
            else:
                time.sleep(0.2)
        text = "".join(lines)
        assert "warm-up:" in text, text[-3000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, "".join(lines)[-2000:]
    text = "".join(lines)
    for step in ("1/4 importing", "2/4 replaying", "3/4 starting the local exchange", "4/4 paper loop"):
        assert step in text, text[-3000:]
    # the replay's report page: its path is printed, it is where the monitor lists reports
    page = ROOT / "run" / "paper" / "reports" / "replay_report.html"
    assert f"replay report page: {page}" in text, text[-3000:]
    assert '<meta name="generator" content="ai-quant-bt replay report">' in page.read_text()[:4096]
    time.sleep(1)
    assert _children_alive(port) == [], "make run left processes behind"


@pytest.mark.slow
def test_main_job_runs_the_primary_sub_bar_mode(tmp_path: Path) -> None:
    """``--interval 30m --sub-interval 3m``: the job replays the 1m files (Hyperliquid ships no 30m or
    3m), the import and the exchange aggregate both intervals exactly, the replay and the paper
    daemon run 3m entries and exits between the 30m bars."""
    import json
    import sqlite3

    if not (DATA / "hyperliquid" / "futures").exists():
        pytest.skip(f"real data not found under {DATA}")
    port = _free_port()
    env = {**os.environ, "AI_QUANT_MONITOR_BIND": f"127.0.0.1:{_free_port()}"}
    proc = subprocess.Popen(
        [sys.executable, "tools/run_main.py", "--port", str(port), "--speed", "600", "--interval", "30m",
         "--sub-interval", "3m", "--run-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env,
    )  # fmt: skip
    db = tmp_path / "paper" / "trading_engine.db"

    def sub_state() -> dict[str, object]:
        if not db.exists():
            return {}
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT value FROM kv WHERE key='sub_bars'").fetchone()
        except sqlite3.OperationalError:
            return {}
        finally:
            conn.close()
        return dict(json.loads(row[0])) if row else {}

    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        while time.monotonic() < deadline and proc.poll() is None:
            chunk = proc.stdout.readline()
            if chunk:
                lines.append(chunk)
            elif sub_state().get("last_eval"):  # a live 30m decision, then its 3m ticks
                break
            else:
                time.sleep(0.2)
        text = "".join(lines)
        assert sub_state().get("last_eval"), text[-3000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, text[-2000:]
    assert "importing real Hyperliquid 1m candles" in text and "1m -> 3m" in text and "1m -> 30m" in text
    report = json.loads((tmp_path / "replay_report.json").read_text())
    assert report["sub_ticks"] > 1000 and report["inputs"]["exit_sub_bars"]["interval"] == "3m"
    st = sub_state()
    assert int(str(st["done"])) >= int(str(st["last_eval"]))
    time.sleep(1)
    assert _children_alive(port) == [], "make run left processes behind"
