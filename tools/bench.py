"""Decision-kernel benchmarks on real candles (`make bench`). Prints numbers; asserts nothing.

1. Native step, full Mei Alpha v1, one symbol: bars per second, single thread.
2. Through PyO3, typed path: microseconds per `step_candle` + `evaluate`, p50 and p99.
3. Through PyO3, JSON envelope path: microseconds per `step_json`, p50 and p99.
4. State save/restore size and time for 100 symbols.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import bt_runtime
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
ACTIVE = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
    "trade": {"entry_min_confidence": "low"},
}


def load(coin: str = "BTC", interval: str = "5m") -> pd.DataFrame:
    path = DATA / "hyperliquid" / "futures" / f"{coin}_USDC_USDC-{interval}-futures.feather"
    df = pd.read_feather(path)
    df["t"] = df["date"].astype("int64") // 1_000_000
    return df


def columns(df: pd.DataFrame) -> list[list[float]]:
    return [df[c].astype(float).tolist() for c in ("open", "high", "low", "close", "volume")]


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def bench_native(df: pd.DataFrame, repeats: int) -> None:
    for name, cfg in (("defaults", None), ("active config", json.dumps(ACTIVE))):
        o, h, lo, c, v = columns(df)
        bars, secs, fills = bt_runtime.bench_native(df["t"].tolist(), o, h, lo, c, v, cfg, repeats)
        print(
            f"native step+evaluate, Mei Alpha v1 ({name}): {bars:,} bars in {secs:.3f} s = "
            f"{bars / secs / 1e6:.2f} M bars/s single-threaded ({fills} fills)"
        )


def bench_typed(df: pd.DataFrame) -> None:
    k = bt_runtime.Kernel(json.dumps(ACTIVE))
    t = df["t"].tolist()
    o, h, lo, c, v = columns(df)
    samples = []
    clock = time.perf_counter_ns
    for i in range(len(t)):
        start = clock()
        k.step_candle("BTC", t[i], o[i], h[i], lo[i], c[i], v[i])
        k.evaluate(t[i])
        samples.append((clock() - start) / 1000.0)
    warm = samples[500:]
    print(
        f"PyO3 typed step_candle+evaluate: p50 {pct(warm, 50):.2f} us, p99 {pct(warm, 99):.2f} us "
        f"({len(warm):,} samples)"
    )


def bench_json(df: pd.DataFrame, n: int) -> None:
    params = json.dumps({"schema_version": 1, "config": ACTIVE})
    state = json.dumps(json.loads(bt_runtime.initial_state_json(params))["result"]["state"])
    samples = []
    for i in range(n):
        row = df.iloc[i]
        event = json.dumps(
            {
                "schema_version": 1,
                "type": "candle",
                "symbol": "BTC",
                "t": int(row["t"]),
                "o": float(row["open"]),
                "h": float(row["high"]),
                "l": float(row["low"]),
                "c": float(row["close"]),
                "v": float(row["volume"]),
            }
        )
        start = time.perf_counter_ns()
        out = bt_runtime.step_json(state, event, params)
        samples.append((time.perf_counter_ns() - start) / 1000.0)
        state = json.dumps(json.loads(out)["result"]["state"])
    warm = samples[100:]
    print(
        f"PyO3 JSON envelope step_json (candle event, one symbol): p50 {pct(warm, 50):.1f} us, "
        f"p99 {pct(warm, 99):.1f} us"
    )


def bench_state(df: pd.DataFrame, symbols: int) -> None:
    k = bt_runtime.Kernel(json.dumps(ACTIVE))
    t = df["t"].tolist()
    o, h, lo, c, v = columns(df)
    for s in range(symbols):
        for i in range(300):
            k.step_candle(f"S{s:03d}", t[i], o[i], h[i], lo[i], c[i], v[i])
    start = time.perf_counter()
    text = k.save_state()
    save_s = time.perf_counter() - start
    k2 = bt_runtime.Kernel(json.dumps(ACTIVE))
    start = time.perf_counter()
    k2.load_state(text)
    load_s = time.perf_counter() - start
    print(
        f"state for {symbols} symbols: {len(text) / 1024:.0f} KiB JSON, save {save_s * 1000:.1f} ms, "
        f"restore {load_s * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20, help="passes over the data for the native bench")
    args = parser.parse_args()
    try:
        df = load()
    except FileNotFoundError as e:
        print(f"bench: real data not found ({e}); set AI_QUANT_SHARED_DATA", file=sys.stderr)
        return 2
    print(f"data: Hyperliquid BTC 5m, {len(df):,} real bars")
    bench_native(df, args.repeats)
    bench_typed(df)
    bench_json(df, 3000)
    bench_state(df, 100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
