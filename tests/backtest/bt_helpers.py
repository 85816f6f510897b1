"""Shared helpers for the backtester tests: real-data SQLite inputs and the binary."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd

from exchange.intervals import INTERVALS

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HL = DATA / "hyperliquid" / "futures"
BINANCE = DATA / "binance" / "futures"
BIN = Path(os.environ.get("AI_QUANT_BT", ROOT / "target" / "release" / "ai-quant-bt"))

INTERVAL_MS = INTERVALS


def feather_bars(path: Path) -> pd.DataFrame:
    df = pd.read_feather(path)
    df["t"] = df["date"].astype("int64") // 1_000_000
    return df


def write_candles_db(db: Path, frames: dict[str, pd.DataFrame], interval: str) -> Path:
    """The `candles` table of engine/data, filled from real feather bars."""
    step = INTERVAL_MS[interval]
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE IF NOT EXISTS candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL,"
        " h REAL, l REAL, c REAL, v REAL, n INTEGER, updated_at TEXT, PRIMARY KEY(symbol, interval, t))"
    )
    for sym, df in frames.items():
        rows = [
            (sym, interval, int(t), int(t) + step, float(o), float(h), float(lo), float(c), float(v), 0, "")
            for t, o, h, lo, c, v in zip(
                df["t"], df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True
            )
        ]
        con.executemany("INSERT OR REPLACE INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return db


def write_funding_db(db: Path, frames: dict[str, pd.DataFrame]) -> Path:
    """`funding_rates(symbol, time, funding_rate, premium)`; times floored to the hour (ms)."""
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE IF NOT EXISTS funding_rates (symbol TEXT, time INTEGER, funding_rate REAL, premium REAL,"
        " PRIMARY KEY(symbol, time))"
    )
    for sym, df in frames.items():
        t = (df["t"] // 3_600_000) * 3_600_000
        rows = [(sym, int(a), float(r), 0.0) for a, r in zip(t, df["open"], strict=True)]
        con.executemany("INSERT OR REPLACE INTO funding_rates VALUES (?,?,?,?)", rows)
    con.commit()
    con.close()
    return db


def hl_frames(coins: list[str], interval: str = "5m", n: int | None = None) -> dict[str, pd.DataFrame]:
    out = {}
    for c in coins:
        df = feather_bars(HL / f"{c}_USDC_USDC-{interval}-futures.feather")
        out[c] = df.iloc[:n] if n else df
    return out


def hl_funding(coins: list[str]) -> dict[str, pd.DataFrame]:
    return {c: feather_bars(HL / f"{c}_USDC_USDC-1h-funding_rate.feather") for c in coins}


def run_bt(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, check=check)
