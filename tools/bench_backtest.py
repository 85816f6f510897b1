#!/usr/bin/env python3
"""Backtester throughput: the figures of the sweep-engine table (docs/backtester.md), with the
peers measured in the same run (the dev box is shared: compare ratios, not absolute figures).

On Binance BTC/USDT 5m (119,724 bars, ../shared/data):
  * ema_cross sweep over 500 EMA pairs (ema_slow 60..212 step 8 x ema_fast 5..53 step 2): ours end
    to end (process wall, data load included) against vectorbt's broadcast sweep of the same 500
    pairs (in a child process, timed after a JIT warm-up), with the peak RSS of both;
  * ema_cross replay on one thread (the binary's timer; wall with the load printed too) against
    vectorbt's `from_signals` and backtesting.py's `run` (on a slice, see --bt-bars);
on Hyperliquid 5m (10 coins, 384,766 bars):
  * Mei Alpha v1 replay on one thread;
  * Mei Alpha v1 sweeps: 256 combos over decision parameters only, and 64 combos over indicator
    windows (also run with --no-share-indicators: the bytes must be equal).
Peers that are not installed are reported as skipped.

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
# The 500-pair EMA grid.
SLOW = list(range(60, 213, 8))
FAST = list(range(5, 54, 2))
HL_COINS = ["BTC", "ETH", "SOL", "HYPE", "XRP", "DOGE", "SUI", "BNB", "ENA", "kPEPE"]
# 4^4 = 256 combos over decision parameters only (the indicator series are the same for all).
MEI_DECISION_AXES = """axes:
  - {path: trade.sl_atr_mult, values: [1.2, 1.6, 2.0, 2.6]}
  - {path: trade.trailing_distance_atr, values: [0.4, 0.6, 0.8, 1.0]}
  - {path: thresholds.entry.min_adx, values: [14, 18, 22, 26]}
  - {path: trade.tp_partial_atr_mult, values: [0, 0.8, 1.2, 1.6]}
"""
# 4^3 = 64 combos over indicator windows.
MEI_WINDOW_AXES = """axes:
  - {path: indicators.ema_fast_window, values: [8, 12, 16, 20]}
  - {path: indicators.ema_slow_window, values: [30, 40, 50, 60]}
  - {path: indicators.adx_window, values: [10, 12, 14, 18]}
"""


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


def vbt_child(feather: str) -> int:
    """vectorbt's broadcast sweep of the 500 pairs, timed after a JIT warm-up on a slice; prints
    JSON (seconds, bars, combos, its own peak RSS)."""
    import vectorbt as vbt

    btc = bars(Path(feather))
    close_all = pd.Series(btc["close"].to_numpy(), index=pd.to_datetime(btc["t"], unit="ms"))
    pairs = [(f, s) for s in SLOW for f in FAST]
    windows = sorted(set(FAST + SLOW))
    col = {w: i for i, w in enumerate(windows)}

    def sweep(close: pd.Series) -> float:
        ma = vbt.MA.run(close, window=windows, ewm=True).ma.to_numpy()
        f = ma[:, [col[a] for a, _ in pairs]]
        s = ma[:, [col[b] for _, b in pairs]]
        fp, sp = np.roll(f, 1, axis=0), np.roll(s, 1, axis=0)
        up = (f > s) & (fp <= sp)
        down = (f < s) & (fp >= sp)
        up[0] = down[0] = False
        cols = pd.RangeIndex(len(pairs))
        pf = vbt.Portfolio.from_signals(
            close,
            pd.DataFrame(up, index=close.index, columns=cols),
            pd.DataFrame(down, index=close.index, columns=cols),
            fees=FEE_BPS / 1e4,
            freq="5min",
        )
        return float(pf.total_return().sum())

    sweep(close_all.iloc[:2000])  # JIT warm-up
    t0 = time.perf_counter()
    sweep(close_all)
    secs = time.perf_counter() - t0
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
    print(json.dumps({"seconds": secs, "bars": len(close_all), "combos": len(pairs), "peak_rss_mib": peak}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--bt-bars", type=int, default=20_000, help="bars for backtesting.py (it is slow)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--vbt-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.vbt_child:
        return vbt_child(args.vbt_child)
    if not BIN.exists():
        print(f"build first: cargo build --release -p aiq-backtest ({BIN} missing)", file=sys.stderr)
        return 2
    feather = DATA / "binance" / "futures" / "BTC_USDT_USDT-5m-futures.feather"
    btc = bars(feather)
    n = len(btc)
    ncombos = len(FAST) * len(SLOW)
    load_before = os.getloadavg()
    out: dict[str, object] = {"bars": n, "combos": ncombos, "threads": args.threads}
    res: dict[str, float | None] = {}

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_db(d / "btc.db", {"BTC": btc})
        cfg = d / "ema.yaml"
        # A slow window above every fast one in the base: not needed since grids are validated
        # per combo, but it keeps the grid runnable by older binaries for comparisons.
        cfg.write_text(
            "global:\n  strategy: ema_cross\n  engine: {interval: 5m}\n"
            f"  trade: {{taker_fee_bps: {FEE_BPS}, slippage_bps: 0.0, allocation_pct: 1.0, leverage: 1.0}}\n"
        )
        common = ["--config", str(cfg), "--candles-db", str(d / "btc.db")]

        def best_replay(args: list[str], repeats: int = 5) -> tuple[float, float]:
            """Best of `repeats`: (the binary's own replay timer, process wall) in seconds."""
            runs = [run_child([str(BIN), "replay", *args]) for _ in range(repeats)]
            return min(inner_seconds(r[2]) or 1e9 for r in runs), min(r[0] for r in runs)

        # --- ema_cross sweep, 500 pairs: ours end to end vs vectorbt's broadcast ------------------
        spec = d / "spec.yaml"
        spec.write_text(
            f"axes:\n  - {{path: indicators.ema_slow_window, values: {SLOW}}}\n"
            f"  - {{path: indicators.ema_fast_window, values: {FAST}}}\n"
        )
        sw = [str(BIN), "sweep", *common, "--sweep-spec", str(spec), "--output", str(d / "s.jsonl")]
        wall, _, err = run_child([*sw, "--threads", str(args.threads), "--no-progress", "--top-k", "10"])
        res["ours_sweep_bar_combos_s"] = n * ncombos / wall
        out["ours_sweep_peak_rss_mib"] = peak_rss(err)
        m = re.search(r"indicators: .*", err)
        out["ours_sweep_indicators"] = m.group(0) if m else None
        try:
            import vectorbt  # noqa: F401

            child = subprocess.Popen(
                [sys.executable, __file__, "--vbt-child", str(feather)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            stdout, stderr = child.communicate()
            if child.returncode != 0:
                raise SystemExit(f"vectorbt sweep failed:\n{stderr}")
            v = json.loads(stdout.strip().splitlines()[-1])
            res["vbt_sweep_bar_combos_s"] = v["bars"] * v["combos"] / v["seconds"]
            out["vbt_sweep_peak_rss_mib"] = v["peak_rss_mib"]
        except ImportError:
            res["vbt_sweep_bar_combos_s"] = None
            out["vbt_sweep_peak_rss_mib"] = None

        # --- ema_cross replay, one thread ----------------------------------------------------------
        rp = [*common, "--output", str(d / "r.json"), "--single-thread"]
        inner, wall = best_replay(rp)
        res["ours_replay_bars_s_1thread"] = n / inner
        res["ours_replay_wall_bars_s"] = n / wall
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

            vbt_single()  # JIT warm-up
            t0 = time.perf_counter()
            vbt_single()
            res["vbt_single_bars_s"] = n / (time.perf_counter() - t0)
        else:
            res["vbt_single_bars_s"] = None
        try:
            import backtesting as btp
        except ImportError:
            btp = None
        if btp is not None:
            m_ = min(args.bt_bars, n)
            sub = btc.iloc[-m_:]
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
            res["btpy_single_bars_s"] = m_ / (time.perf_counter() - t0)
            out["btpy_bars"] = m_
        else:
            res["btpy_single_bars_s"] = None

        # --- Mei Alpha v1 on Hyperliquid 5m, 10 coins -------------------------------------------
        hl = DATA / "hyperliquid" / "futures"
        write_db(d / "hl.db", {c: bars(hl / f"{c}_USDC_USDC-5m-futures.feather") for c in HL_COINS})
        mei = d / "mei.yaml"
        mei.write_text("global:\n  engine: {interval: 5m}\n")
        mc = ["--config", str(mei), "--candles-db", str(d / "hl.db")]
        run_child([str(BIN), "replay", *mc, "--output", str(d / "m.json"), "--single-thread"])
        hl_bars = json.loads((d / "m.json").read_text())["bars"]
        inner, wall = best_replay([*mc, "--output", str(d / "m1.json"), "--single-thread"])
        res["mei_replay_bars_s_1thread"] = hl_bars / inner
        res["mei_replay_wall_bars_s"] = hl_bars / wall
        for name, axes, k in (("decision", MEI_DECISION_AXES, 256), ("windows", MEI_WINDOW_AXES, 64)):
            spec = d / f"mei_{name}.yaml"
            spec.write_text(axes)
            base = [str(BIN), "sweep", *mc, "--sweep-spec", str(spec), "--threads", str(args.threads)]
            base += ["--no-progress", "--top-k", "10"]
            wall, _, err = run_child([*base, "--output", str(d / f"m_{name}.jsonl")])
            res[f"mei_sweep_{name}_bar_combos_s"] = hl_bars * k / wall
            out[f"mei_sweep_{name}_peak_rss_mib"] = peak_rss(err)
            if name == "windows":
                wall, _, _ = run_child([*base, "--output", str(d / "u.jsonl"), "--no-share-indicators"])
                res["mei_sweep_windows_unshared_bar_combos_s"] = hl_bars * k / wall
                if (d / "u.jsonl").read_bytes() != (d / f"m_{name}.jsonl").read_bytes():
                    raise SystemExit("shared and unshared sweeps differ")
        out["mei_bars"] = hl_bars

    out["results"] = res

    def ratio(a: str, b: str) -> str:
        x, y = res.get(a), res.get(b)
        return f"{x / y:6.2f}x" if x and y else "   n/a"

    print(f"ema_cross on Binance BTC 5m: {n} bars, {ncombos}-pair EMA grid, {args.threads} threads")
    print(
        f"  ours sweep (end to end)   {fmt(res['ours_sweep_bar_combos_s'])} bar-combos/s, "
        f"peak RSS {out['ours_sweep_peak_rss_mib']} MiB"
    )
    print(f"    {out['ours_sweep_indicators']}")
    print(
        f"  vectorbt broadcast sweep  {fmt(res['vbt_sweep_bar_combos_s'])} bar-combos/s, "
        f"peak RSS {out['vbt_sweep_peak_rss_mib']} MiB (after warm-up, data in memory)"
    )
    print(f"  ours replay, 1 thread     {fmt(res['ours_replay_bars_s_1thread'])} bars/s "
          f"(wall incl. DB load {fmt(res['ours_replay_wall_bars_s'])})")  # fmt: skip
    print(f"  vectorbt from_signals     {fmt(res['vbt_single_bars_s'])} bars/s")
    print(f"  backtesting.py run        {fmt(res['btpy_single_bars_s'])} bars/s")
    print(f"Mei Alpha v1 on Hyperliquid 5m (10 coins, {out['mei_bars']} bars):")
    print(f"  replay, 1 thread          {fmt(res['mei_replay_bars_s_1thread'])} bars/s "
          f"(wall incl. DB load {fmt(res['mei_replay_wall_bars_s'])})")  # fmt: skip
    print(
        f"  sweep 256 decision combos {fmt(res['mei_sweep_decision_bar_combos_s'])} bar-combos/s, "
        f"peak RSS {out['mei_sweep_decision_peak_rss_mib']} MiB"
    )
    print(
        f"  sweep 64 window combos    {fmt(res['mei_sweep_windows_bar_combos_s'])} bar-combos/s, "
        f"peak RSS {out['mei_sweep_windows_peak_rss_mib']} MiB "
        f"(indicators not shared: {fmt(res['mei_sweep_windows_unshared_bar_combos_s'])})"
    )
    print("the issue's table (same run):")
    print(f"  ema_cross sweep vs vectorbt broadcast   {ratio('ours_sweep_bar_combos_s', 'vbt_sweep_bar_combos_s')}"
          " (goal >= 3x)")  # fmt: skip
    print(
        f"  Mei Alpha sweep, 256 decision combos    {fmt(res['mei_sweep_decision_bar_combos_s'])} (goal >= 20 M)"
    )
    print(
        f"  Mei Alpha sweep, 64 window combos       {fmt(res['mei_sweep_windows_bar_combos_s'])} (goal >= 6 M)"
    )
    print(f"  Mei Alpha replay, 1 thread              {fmt(res['mei_replay_bars_s_1thread'])} (goal >= 5 M)")
    print(
        f"  ema_cross replay, 1 thread              {fmt(res['ours_replay_bars_s_1thread'])} (goal >= 10 M)"
    )
    print(
        f"  replay vs vectorbt from_signals         {ratio('ours_replay_bars_s_1thread', 'vbt_single_bars_s')}"
    )
    print(
        f"  replay vs backtesting.py                {ratio('ours_replay_bars_s_1thread', 'btpy_single_bars_s')}"
    )
    print("  daemon loop at 200 symbols: tools/bench_daemon.py")
    # The box is shared: say how busy it was (the 2-thread sweeps lose their second core first).
    load_after = os.getloadavg()
    out["load_average_1m"] = [round(load_before[0], 2), round(load_after[0], 2)]
    print(
        f"load average (1 min) at start / end: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
