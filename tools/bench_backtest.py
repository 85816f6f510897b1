#!/usr/bin/env python3
"""Backtester throughput: ai-quant-bt against vectorbt and backtesting.py on the same real bars.

Runs, in one process run, on Binance BTC/USDT 5m (119,724 bars, ../shared/data):
  * ours: `ema_cross` replay (one config) and sweep (the same EMA grid as the peers);
  * vectorbt: `Portfolio.from_signals` single run and a broadcast sweep over the grid;
  * backtesting.py: `Backtest.run` and `Backtest.optimize` over the grid (on a slice; see --bt-bars);
then Mei Alpha v1 replay throughput on Hyperliquid 5m (10 coins) and sweep peak RSS against the
number of combos. Prints bars/s and bar-combos/s and the ratios. Peers that are not installed
are reported as skipped.

Usage: .venv/bin/python tools/bench_backtest.py [--threads N] [--bt-bars 20000] [--json out.json]
Build first: cargo build --release -p aiq-backtest
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
BIN = Path(os.environ.get("AI_QUANT_BT", ROOT / "target" / "release" / "ai-quant-bt"))
FEE_BPS = 3.5
FAST = [5, 10, 15, 20, 25]
SLOW = [30, 40, 50, 60, 80]


def bars(path: Path) -> pd.DataFrame:
    df = pd.read_feather(path)
    df["t"] = df["date"].astype("int64") // 1_000_000
    return df


def write_db(db: Path, frames: dict[str, pd.DataFrame]) -> None:
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE candles (symbol TEXT, interval TEXT, t INTEGER, t_close INTEGER, o REAL, h REAL, l REAL,"
        " c REAL, v REAL, n INTEGER, updated_at TEXT, PRIMARY KEY(symbol, interval, t))"
    )
    for sym, df in frames.items():
        con.executemany(
            "INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?,0,'')",
            [
                (sym, "5m", int(t), int(t) + 300_000, float(o), float(h), float(lo), float(c), float(v))
                for t, o, h, lo, c, v in zip(
                    df["t"], df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True
                )
            ],
        )
    con.commit()
    con.close()


def run_child(args: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MiB, stderr) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{err}")
    return wall, ru.ru_maxrss // 1024, err


def peak_rss(stderr: str) -> int:
    """The binary's own peak RSS (VmHWM) in MiB; wait4's ru_maxrss would include the parent's
    pre-exec memory."""
    m = re.search(r"peak RSS ([0-9]+) MiB", stderr)
    return int(m.group(1)) if m else -1


def inner_seconds(stderr: str) -> float | None:
    m = re.search(r"in ([0-9.]+) s", stderr)
    return float(m.group(1)) if m else None


def _ema(x: np.ndarray, w: int) -> np.ndarray:
    return pd.Series(x).ewm(span=w, adjust=False).mean().to_numpy()


def _cross_strategy() -> type:
    """The backtesting.py ema_cross strategy (module level so optimize can pickle it)."""
    import backtesting as btp

    class Cross(btp.Strategy):
        fast = 20
        slow = 50

        def init(self) -> None:
            self.f = self.I(_ema, self.data.Close, self.fast)
            self.s = self.I(_ema, self.data.Close, self.slow)

        def next(self) -> None:
            up = self.f[-2] <= self.s[-2] and self.f[-1] > self.s[-1]
            down = self.f[-2] >= self.s[-2] and self.f[-1] < self.s[-1]
            if up and not self.position:
                self.buy(size=0.999)
            elif down and self.position:
                self.position.close()

    globals()["Cross"] = Cross
    Cross.__qualname__ = "Cross"
    return Cross


def fmt(x: float | None) -> str:
    if x is None:
        return "skipped"
    return f"{x / 1e6:8.2f} M" if x >= 1e5 else f"{x / 1e3:8.1f} k"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--bt-bars", type=int, default=20_000, help="bars for backtesting.py (it is slow)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not BIN.exists():
        print(f"build first: cargo build --release -p aiq-backtest ({BIN} missing)", file=sys.stderr)
        return 2
    btc = bars(DATA / "binance" / "futures" / "BTC_USDT_USDT-5m-futures.feather")
    n = len(btc)
    grid = [(f, s) for f in FAST for s in SLOW]
    out: dict[str, object] = {"bars": n, "combos": len(grid), "threads": args.threads}
    res: dict[str, float | None] = {}

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_db(d / "btc.db", {"BTC": btc})
        cfg = d / "ema.yaml"
        cfg.write_text(
            "global:\n  strategy: ema_cross\n  engine: {interval: 5m}\n"
            f"  trade: {{taker_fee_bps: {FEE_BPS}, slippage_bps: 0.0, allocation_pct: 1.0, leverage: 1.0}}\n"
        )
        common = ["--config", str(cfg), "--candles-db", str(d / "btc.db")]

        # --- ours: single replay (best of 3; the binary's own timer excludes DB load) ----------
        def best_replay(args: list[str], repeats: int = 5) -> float:
            """Best of `repeats` of the binary's own replay timer (the box is shared; noise)."""
            return min(
                inner_seconds(run_child([str(BIN), "replay", *args])[2]) or 1e9 for _ in range(repeats)
            )

        rp = [*common, "--output", str(d / "r.json")]
        best = best_replay(rp)
        res["ours_replay_bars_s_1thread"] = n / best_replay([*rp, "--single-thread"])
        wall, _, _ = run_child([str(BIN), "replay", *rp])
        res["ours_replay_bars_s"] = n / best
        res["ours_replay_wall_bars_s"] = n / wall
        # --- ours: sweep over the grid --------------------------------------------------------
        spec = d / "spec.yaml"
        spec.write_text(
            "axes:\n"
            f"  - {{path: indicators.ema_fast_window, values: {FAST}}}\n"
            f"  - {{path: indicators.ema_slow_window, values: {SLOW}}}\n"
        )
        sw = [str(BIN), "sweep", *common, "--sweep-spec", str(spec), "--output", str(d / "s.jsonl")]
        wall, _, _ = run_child([*sw, "--threads", str(args.threads), "--no-progress"])
        res["ours_sweep_bar_combos_s"] = n * len(grid) / wall
        wall1, _, _ = run_child([*sw, "--threads", "1", "--no-progress"])
        res["ours_sweep_bar_combos_s_1thread"] = n * len(grid) / wall1

        # --- vectorbt -------------------------------------------------------------------------
        try:
            import vectorbt as vbt
        except ImportError:
            vbt = None
        close = pd.Series(btc["close"].to_numpy(), index=pd.to_datetime(btc["t"], unit="ms"))
        if vbt is not None:

            def vbt_single() -> None:
                fast = vbt.MA.run(close, 20, ewm=True)
                slow = vbt.MA.run(close, 50, ewm=True)
                pf = vbt.Portfolio.from_signals(
                    close,
                    fast.ma_crossed_above(slow),
                    fast.ma_crossed_below(slow),
                    fees=FEE_BPS / 1e4,
                    freq="5min",
                )
                pf.total_return()

            def vbt_sweep() -> None:
                fast, slow = vbt.MA.run_combs(
                    close, window=FAST + SLOW, r=2, short_names=["fast", "slow"], ewm=True
                )
                pf = vbt.Portfolio.from_signals(
                    close,
                    fast.ma_crossed_above(slow),
                    fast.ma_crossed_below(slow),
                    fees=FEE_BPS / 1e4,
                    freq="5min",
                )
                pf.total_return()

            vbt_single()  # JIT warm-up
            t0 = time.perf_counter()
            vbt_single()
            res["vbt_single_bars_s"] = n / (time.perf_counter() - t0)
            vbt_sweep()
            t0 = time.perf_counter()
            vbt_sweep()
            # run_combs over the 10 windows gives C(10, 2) = 45 pairs (a superset of the 25-pair grid).
            res["vbt_sweep_bar_combos_s"] = n * 45 / (time.perf_counter() - t0)
        else:
            res["vbt_single_bars_s"] = res["vbt_sweep_bar_combos_s"] = None

        # --- backtesting.py -------------------------------------------------------------------
        try:
            import backtesting as btp
        except ImportError:
            btp = None
        if btp is not None:
            m = min(args.bt_bars, n)
            sub = btc.iloc[-m:]
            df = pd.DataFrame(
                {
                    "Open": sub["open"].to_numpy(),
                    "High": sub["high"].to_numpy(),
                    "Low": sub["low"].to_numpy(),
                    "Close": sub["close"].to_numpy(),
                    "Volume": sub["volume"].to_numpy(),
                },
                index=pd.to_datetime(sub["t"], unit="ms"),
            )

            import warnings

            warnings.filterwarnings("ignore")
            bt = btp.Backtest(df, _cross_strategy(), cash=1e10, commission=FEE_BPS / 1e4, trade_on_close=True)
            t0 = time.perf_counter()
            bt.run()
            res["btpy_single_bars_s"] = m / (time.perf_counter() - t0)
            # A 2 x 3 corner of the grid (optimize is slow); it uses every core, like ours.
            t0 = time.perf_counter()
            bt.optimize(fast=FAST[:2], slow=SLOW[:3], maximize="Equity Final [$]")
            res["btpy_optimize_bar_combos_s"] = m * 6 / (time.perf_counter() - t0)
            out["btpy_bars"] = m
        else:
            res["btpy_single_bars_s"] = res["btpy_optimize_bar_combos_s"] = None

        # --- Mei Alpha v1 on Hyperliquid 5m, 10 coins ----------------------------------------
        hl = DATA / "hyperliquid" / "futures"
        coins = ["BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "BNB", "ENA", "kPEPE"]
        write_db(d / "hl.db", {c: bars(hl / f"{c}_USDC_USDC-5m-futures.feather") for c in coins})
        mei = d / "mei.yaml"
        mei.write_text("global:\n  engine: {interval: 5m}\n")
        mc = ["--config", str(mei), "--candles-db", str(d / "hl.db")]
        runs = [run_child([str(BIN), "replay", *mc, "--output", str(d / "m.json")]) for _ in range(5)]
        secs = min(inner_seconds(r[2]) or 1e9 for r in runs)
        hl_bars = json.loads((d / "m.json").read_text())["bars"]
        res["mei_replay_bars_s"] = hl_bars / secs
        res["mei_replay_bars_s_1thread"] = hl_bars / best_replay(
            [*mc, "--output", str(d / "m1.json"), "--single-thread"]
        )
        out["mei_replay_peak_rss_mib"] = max(peak_rss(r[2]) for r in runs)
        rss_by_combos = {}
        for k in (4, 16, 64):
            spec = d / f"mei{k}.yaml"
            vals = [round(1.0 + 0.05 * i, 2) for i in range(k)]
            spec.write_text(f"axes:\n  - {{path: trade.sl_atr_mult, values: {vals}}}\n")
            wall, _, err = run_child(
                [str(BIN), "sweep", *mc, "--sweep-spec", str(spec), "--output", str(d / f"m{k}.jsonl"),
                 "--threads", str(args.threads), "--no-progress", "--top-k", "10"]
            )  # fmt: skip
            rss_by_combos[k] = peak_rss(err)
            res[f"mei_sweep_bar_combos_s_{k}"] = hl_bars * k / wall
            if k == 16:
                # The same sweep with every combo computing its own indicators (before sharing).
                wall, _, err = run_child(
                    [str(BIN), "sweep", *mc, "--sweep-spec", str(spec), "--output", str(d / f"u{k}.jsonl"),
                     "--threads", str(args.threads), "--no-progress", "--top-k", "10", "--no-share-indicators"]
                )  # fmt: skip
                res["mei_sweep_bar_combos_s_16_unshared"] = hl_bars * k / wall
                if (d / f"u{k}.jsonl").read_bytes() != (d / f"m{k}.jsonl").read_bytes():
                    raise SystemExit("shared and unshared sweeps differ")
        out["mei_sweep_peak_rss_mib_by_combos"] = rss_by_combos
        out["mei_bars"] = hl_bars

    out["results"] = res

    def ratio(a: str, b: str) -> str:
        x, y = res.get(a), res.get(b)
        return f"{x / y:7.2f}x" if x and y else "   n/a"

    print(f"ema_cross on Binance BTC 5m: {n} bars, grid {len(grid)} combos, {args.threads} threads")
    print(f"  ours replay          {fmt(res['ours_replay_bars_s'])} bars/s  (indicators on a 2nd thread; "
          f"1 thread {fmt(res['ours_replay_bars_s_1thread'])}; wall incl. DB load: "
          f"{fmt(res['ours_replay_wall_bars_s'])})")  # fmt: skip
    print(f"  vectorbt from_signals{fmt(res['vbt_single_bars_s'])} bars/s")
    print(f"  backtesting.py run   {fmt(res['btpy_single_bars_s'])} bars/s")
    print(f"  ours sweep           {fmt(res['ours_sweep_bar_combos_s'])} bar-combos/s "
          f"(1 thread {fmt(res['ours_sweep_bar_combos_s_1thread'])})")  # fmt: skip
    print(f"  vectorbt broadcast   {fmt(res['vbt_sweep_bar_combos_s'])} bar-combos/s")
    print(f"  backtesting optimize {fmt(res['btpy_optimize_bar_combos_s'])} bar-combos/s")
    print("ratios:")
    print(f"  replay vs backtesting.py {ratio('ours_replay_bars_s', 'btpy_single_bars_s')} (goal >= 10x)")
    print(f"  replay vs vectorbt       {ratio('ours_replay_bars_s', 'vbt_single_bars_s')} (goal >= 1x; "
          f"1 thread {ratio('ours_replay_bars_s_1thread', 'vbt_single_bars_s')})")  # fmt: skip
    print(
        f"  sweep vs vectorbt        {ratio('ours_sweep_bar_combos_s', 'vbt_sweep_bar_combos_s')} (goal >= 1x)"
    )
    print(f"  sweep vs bt.optimize     {ratio('ours_sweep_bar_combos_s', 'btpy_optimize_bar_combos_s')}")
    print(f"Mei Alpha v1 on Hyperliquid 5m (10 coins, {out['mei_bars']} bars):")
    print(f"  replay               {fmt(res['mei_replay_bars_s'])} bars/s (indicators on a 2nd thread), "
          f"1 thread {fmt(res['mei_replay_bars_s_1thread'])} (goal >= 5 M per thread)"
          f", peak RSS {out['mei_replay_peak_rss_mib']} MiB")  # fmt: skip
    for k, rss in rss_by_combos.items():
        print(
            f"  sweep {k:3d} combos     {fmt(res[f'mei_sweep_bar_combos_s_{k}'])} bar-combos/s, peak RSS {rss} MiB"
        )
    print(
        f"  sweep  16 combos, indicators not shared {fmt(res['mei_sweep_bar_combos_s_16_unshared'])} bar-combos/s"
        f" (sharing: {ratio('mei_sweep_bar_combos_s_16', 'mei_sweep_bar_combos_s_16_unshared')})"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
