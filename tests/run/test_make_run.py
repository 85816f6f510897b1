"""`make run`'s job (tools/run_main.py) works end to end and stops cleanly.

Runs the real job on a free loopback port: import, backtest, local exchange, sidecar, kernel paper loop.
Stops it with SIGTERM once the paper loop has warmed up, then checks no child process is left.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon_harness import ROOT, free_port
from tests.run.run_main_proc import read_until, run_main
from tests.shared_data import HL_FUTURES
from tools.daemon_proc import read_db


def _children_alive(port: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"--port {port}" in line or f"127.0.0.1:{port}" in line]


@pytest.mark.slow
def test_main_job_runs_and_stops_cleanly() -> None:
    if not HL_FUTURES.exists():
        pytest.skip(f"real data not found under {HL_FUTURES}")
    port = free_port()
    with run_main("--port", str(port), "--speed", "120") as proc:
        text = read_until(proc, 240, line_done=lambda line: "warm-up:" in line)
        assert "warm-up:" in text, text[-3000:]
    assert proc.returncode == 0, text[-2000:]
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

    if not HL_FUTURES.exists():
        pytest.skip(f"real data not found under {HL_FUTURES}")
    port = free_port()
    env = {**os.environ, "AI_QUANT_MONITOR_BIND": f"127.0.0.1:{free_port()}"}
    db = tmp_path / "paper" / "trading_engine.db"

    def sub_state() -> dict[str, object]:
        rows = read_db(db, "SELECT value FROM kv WHERE key='sub_bars'")
        return dict(json.loads(rows[0][0])) if rows else {}

    args = ("--port", str(port), "--speed", "600", "--interval", "30m", "--sub-interval", "3m")
    with run_main(*args, "--run-dir", str(tmp_path), env=env) as proc:
        # a live 30m decision, then its 3m ticks
        text = read_until(proc, 240, quiet_done=lambda: bool(sub_state().get("last_eval")))
        assert sub_state().get("last_eval"), text[-3000:]
    assert proc.returncode == 0, text[-2000:]
    assert "importing real Hyperliquid 1m candles" in text and "1m -> 3m" in text and "1m -> 30m" in text
    report = json.loads((tmp_path / "replay_report.json").read_text())
    assert report["sub_ticks"] > 1000 and report["inputs"]["exit_sub_bars"]["interval"] == "3m"
    st = sub_state()
    assert int(str(st["done"])) >= int(str(st["last_eval"]))
    time.sleep(1)
    assert _children_alive(port) == [], "make run left processes behind"
