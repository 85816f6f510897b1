"""Candle and funding loaders: freqtrade Feather files or a SQLite candle DB."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from exchange.candle_db import CandleReader
from exchange.intervals import DAY_MS as DAY_MS
from exchange.intervals import HOUR_MS as HOUR_MS
from exchange.intervals import INTERVALS

# The candle store's interval list (the one list, ``exchange/intervals.py``).
INTERVAL_MS = INTERVALS

# Real per-asset metadata (szDecimals, maxLeverage) for the symbols shipped in shared/data.
KNOWN_META: dict[str, tuple[int, int]] = {
    "BTC": (5, 40),
    "ETH": (4, 25),
    "SOL": (2, 20),
    "XRP": (0, 20),
    "HYPE": (2, 10),
    "DOGE": (0, 10),
    "SUI": (1, 10),
    "BNB": (3, 10),
    "ENA": (0, 10),
    "kPEPE": (0, 10),
    "AAVE": (2, 10),
    "ARB": (1, 10),
    "OP": (1, 10),
    "WIF": (0, 10),
    "TRUMP": (1, 10),
    "FARTCOIN": (1, 10),
    "LINK": (1, 10),
    "AVAX": (2, 10),
    "LTC": (2, 10),
}


@dataclass
class Bars:
    """Base-interval bars of one symbol, columns as plain lists (times in data ms)."""

    symbol: str
    interval_ms: int
    t: list[int] = field(default_factory=list)
    o: list[float] = field(default_factory=list)
    h: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    c: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    n: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Funding:
    """Hourly funding rates: hour start (data ms, floored) and rate."""

    t: list[int] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)


def _estimate_trades(volume: float, price: float) -> int:
    if volume <= 0 or not math.isfinite(volume):
        return 0
    return max(1, math.ceil(volume * price / 5_000.0))


def feather_path(data_dir: Path, symbol: str, interval: str, kind: str = "futures") -> Path:
    return data_dir / f"{symbol}_USDC_USDC-{interval}-{kind}.feather"


def load_feather_bars(data_dir: Path, symbol: str, interval: str) -> Bars:
    import pandas as pd

    path = feather_path(data_dir, symbol, interval)
    df = pd.read_feather(path)
    ts = df["date"].astype("int64") // 1_000_000
    bars = Bars(symbol=symbol, interval_ms=INTERVAL_MS[interval])
    bars.t = [int(x) for x in ts]
    bars.o = [float(x) for x in df["open"]]
    bars.h = [float(x) for x in df["high"]]
    bars.low = [float(x) for x in df["low"]]
    bars.c = [float(x) for x in df["close"]]
    bars.v = [float(x) for x in df["volume"]]
    bars.n = [_estimate_trades(v, c) for v, c in zip(bars.v, bars.c, strict=True)]
    return bars


def load_feather_funding(data_dir: Path, symbol: str) -> Funding:
    import pandas as pd

    path = feather_path(data_dir, symbol, "1h", "funding_rate")
    out = Funding()
    if not path.exists():
        return out
    df = pd.read_feather(path)
    ts = df["date"].astype("int64") // 1_000_000
    last = -1
    for t, r in zip(ts, df["open"], strict=True):
        hour = int(t) // HOUR_MS * HOUR_MS
        if hour == last or not math.isfinite(float(r)):
            continue
        out.t.append(hour)
        out.rate.append(float(r))
        last = hour
    return out


def load_sqlite_bars(db_path: Path, symbol: str, interval: str) -> Bars:
    with CandleReader(db_path) as db:
        rows = db.bars(symbol, interval)
    bars = Bars(symbol=symbol, interval_ms=INTERVAL_MS[interval])
    for t, o, h, lo, c, v, n in rows:
        if o is None or h is None or lo is None or c is None:
            continue  # an incomplete row; the replay holds the previous close
        bars.t.append(int(t))
        bars.o.append(float(o))
        bars.h.append(float(h))
        bars.low.append(float(lo))
        bars.c.append(float(c))
        bars.v.append(float(v or 0.0))
        bars.n.append(int(n) if n is not None else _estimate_trades(float(v or 0.0), float(c)))
    return bars


def load_sqlite_funding(db_path: Path, symbol: str) -> Funding:
    """Funding from the engine.data layout: ``funding_rates(symbol, time, funding_rate, premium)``."""
    out = Funding()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT time, funding_rate FROM funding_rates WHERE symbol = ? ORDER BY time", (symbol,)
        ).fetchall()
    finally:
        conn.close()
    last = -1
    for t, r in rows:
        if r is None or not math.isfinite(float(r)):
            continue
        hour = int(t) // HOUR_MS * HOUR_MS
        if hour == last:
            continue
        out.t.append(hour)
        out.rate.append(float(r))
        last = hour
    return out


def default_sz_decimals(price: float) -> int:
    """A plausible szDecimals for an unknown symbol: one lot is worth about $0.01 to $1."""
    if price <= 0:
        return 0
    return max(0, min(5, 4 - math.floor(math.log10(price))))


def meta_for(symbol: str, price: float) -> tuple[int, int]:
    return KNOWN_META.get(symbol, (default_sz_decimals(price), 10))
