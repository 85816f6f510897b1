"""``python -m exchange.sim`` as a subprocess, and the SQLite candle-DB source."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import requests
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from sim_helpers import DATA_DIR, REPLAY_START, make_config

from exchange.sim.harness import SimServer, free_port

REPO = Path(__file__).resolve().parents[2]


def test_cli_subprocess_deposit_and_admin() -> None:
    port = free_port()
    w = Account.from_key("0x" + "42" * 32)
    cmd = [
        sys.executable, "-m", "exchange.sim", "--port", str(port), "--symbols", "BTC,ETH", "--seed", "3",
        "--deposit", f"{w.address}=2500", "--enable-admin", "--stepped", "--rate-limit", "0",
        "--data-dir", str(DATA_DIR), "--log-level", "WARNING",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.post(base + "/info", json={"type": "meta"}, timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        info = Info(base, skip_ws=True)
        assert [a["name"] for a in info.meta()["universe"]] == ["BTC", "ETH"]
        assert info.user_state(w.address)["marginSummary"]["accountValue"] == "2500.0"
        ex = Exchange(w, base)
        assert "filled" in ex.market_open("ETH", True, 0.01)["response"]["data"]["statuses"][0]
        t0 = requests.post(base + "/admin/time", json={}, timeout=5).json()["time"]
        assert (
            requests.post(base + "/admin/advance", json={"ms": 1000}, timeout=5).json()["time"] == t0 + 1000
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_sqlite_candle_source(tmp_path: Path) -> None:
    db = tmp_path / "candles.db"
    df = pd.read_feather(DATA_DIR / "BTC_USDC_USDC-5m-futures.feather")
    df = df.iloc[-8000:]
    ts = df["date"].astype("int64") // 1_000_000
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL, h REAL, l REAL,"
        " c REAL, v REAL, n INTEGER, updated_at INTEGER, PRIMARY KEY (symbol, interval, t))"
    )
    rows = [
        ("BTC", "5m", int(t), int(t) + 299_999, o, h, lo, c, v, 77, 0)
        for t, o, h, lo, c, v in zip(
            ts, df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True
        )
    ]
    conn.executemany("INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    start = int(ts.iloc[6000])
    cfg = make_config(
        candles_db=db, symbols=["BTC"], start=start, time_shift=False, sim_start=None, funding_dir=DATA_DIR
    )
    with SimServer(cfg) as sim:
        info = Info(sim.base_url, skip_ws=True)
        assert sim.now() == start
        candles = info.candles_snapshot("BTC", "5m", start - 3_000_000, start)
        assert len(candles) == 11
        row = df[ts == candles[0]["t"]].iloc[0]
        assert float(candles[0]["o"]) == row["open"] and float(candles[0]["c"]) == row["close"]
        assert candles[0]["n"] == 77  # trade counts come from the DB
        hist = info.funding_history("BTC", start - 86_400_000)
        assert 23 <= len(hist) <= 25 and hist[-1]["time"] <= start
    assert start > REPLAY_START
