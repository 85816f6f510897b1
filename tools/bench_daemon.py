"""Benchmark the paper daemon's loop: 10, 50 and 200 symbols, one new closed candle each per loop.

Network is excluded: the market-data hub is an in-process stand-in serving real Hyperliquid 5m bars
(../shared/data; the 10 real series are reused under extra names with different offsets for more
symbols). Everything else is the real daemon code: kernel (bt_runtime), RiskManager, PaperTrader,
decision rows and the one-transaction-per-loop SQLite commit (kernel state included).

Prints, per symbol count: loop time p50 / p95 / max, the time of the commit alone, and the bench
process RSS after the run (it holds pandas and the bar data too). ``--sub-bars`` adds the
blueprint's primary mode in the same run: 30m bars with 3m entries and exits (engine.entry_interval
/ exit_interval, real HL 1m bars aggregated), one 3m tick per loop and a 30m bar every tenth loop. ``--daemon-rss S`` also runs the
real daemon process for S seconds against the local exchange (all bundled symbols, x300 clock) and
prints its own RSS (current and peak).
Usage: ``python tools/bench_daemon.py [--loops 60] [--symbols 10,50,200] [--sub-bars] [--daemon-rss 30]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from daemon.loop import EngineSettings, UnifiedEngine  # noqa: E402
from engine.market_data import MarketDataHub  # noqa: E402
from engine.risk import RiskManager  # noqa: E402
from engine.strategy_manager import StrategyManager  # noqa: E402
from engine.trading_db import TradingDB  # noqa: E402
from exchange.meta import AssetMeta, Meta  # noqa: E402
from exchange.model import Bar  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "hyperliquid" / "futures"
STEP = 300_000
CONFIG = """\
global:
  trade:
    entry_min_confidence: low
    max_open_positions: 20
    enable_ssf_filter: false
  indicators: {ema_fast_window: 8, ema_slow_window: 15}
  thresholds: {entry: {min_adx: 15.0}}
  engine: {interval: 5m, loop_target_s: 1, lookback_bars: 300}
"""


def coin_files(interval: str) -> list[tuple[str, Path]]:
    """``(coin, feather file)`` of every coin with ``interval`` data; exits when there is none."""
    files = sorted(DATA.glob(f"*_USDC_USDC-{interval}-futures.feather"))
    if not files:
        raise SystemExit(f"no {interval} data under {DATA}")
    return [(f.name.split("_")[0], f) for f in files]


def load_series(n_bars: int) -> list[tuple[str, pd.DataFrame]]:
    return [
        (coin, pd.read_feather(f).tail(n_bars + 5000).reset_index(drop=True)) for coin, f in coin_files("5m")
    ]


class BenchHub(MarketDataHub):
    """Serves bar i of each symbol at loop i; no network."""

    def __init__(
        self, series: dict[str, Any], t0: int, interval: str = "5m", interval_ms: int = STEP
    ) -> None:
        super().__init__(info=None, interval=interval, interval_ms=interval_ms)
        self.series = series
        self.t0 = t0
        self.now = t0

    def now_ms(self) -> int:
        return self.now

    def _bar(self, sym: str, t: int) -> Bar:
        cols, off = self.series[sym]
        i = off + (t - self.t0) // STEP + 400
        return Bar(sym, t, cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i])

    def closed_bars(
        self, symbol: str, last_t: int | None, now_ms: int, warmup_bars: int, interval: str | None = None
    ) -> list[Bar]:
        newest = self.last_closed_open_time(now_ms)
        first = newest - (warmup_bars - 1) * STEP if last_t is None else last_t + STEP
        self.stats.last = "bench"
        return [self._bar(symbol, t) for t in range(first, newest + 1, STEP)]

    def mids(self, symbols: Any) -> dict[str, float]:
        t = self.last_closed_open_time(self.now)
        return {s: self._bar(s, t).c for s in symbols}

    def bbo(self, symbol: str) -> tuple[float | None, float | None]:
        return None, None

    def funding_history(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        return []


M3, M30 = 180_000, 1_800_000
SUB_CONFIG = CONFIG.replace(
    "engine: {interval: 5m, loop_target_s: 1, lookback_bars: 300}",
    "engine: {interval: 30m, entry_interval: 3m, exit_interval: 3m, loop_target_s: 1, lookback_bars: 60}\n"
    "  filters: {require_btc_alignment: false}",
).replace(
    "indicators: {ema_fast_window: 8, ema_slow_window: 15}",
    "indicators: {ema_fast_window: 8, ema_slow_window: 15, ema_macro_window: 50}",
)


def load_sub_series() -> list[tuple[str, dict[int, list[list[float]]]]]:
    """Real HL 1m bars of each coin as 3m and 30m columns (exact aggregation, aligned to 30m)."""
    import numpy as np

    out = []
    for coin, f in coin_files("1m"):
        df = pd.read_feather(f)
        t = (df["date"].astype("int64") // 1_000_000).to_numpy()
        start = int(np.argmax(t % M30 == 0))
        n = (len(t) - start) // 30 * 30
        cols = {}
        for iv, k in ((M3, 3), (M30, 30)):
            o, h, lo, c, v = (df[x].to_numpy(float)[start : start + n].reshape(-1, k)
                              for x in ("open", "high", "low", "close", "volume"))  # fmt: skip
            cols[iv] = [
                o[:, 0].tolist(),
                h.max(1).tolist(),
                lo.min(1).tolist(),
                c[:, -1].tolist(),
                v.sum(1).tolist(),
            ]
        out.append((coin, cols))
    return out


class SubBenchHub(BenchHub):
    """30m bars and 3m sub-bars: bar ``k`` of a symbol's series at loop ``k`` (3m per loop)."""

    def __init__(self, series: dict[str, Any], t0: int) -> None:
        super().__init__(series, t0, interval="30m", interval_ms=M30)

    def _sub(self, sym: str, t: int, iv: int) -> Bar:
        cols, off = self.series[sym]
        i = off * (M30 // iv) + (t - self.t0) // iv + 70 * (M30 // iv)
        c = cols[iv]
        return Bar(sym, t, c[0][i], c[1][i], c[2][i], c[3][i], c[4][i])

    def _bar(self, sym: str, t: int) -> Bar:
        return self._sub(sym, t, M30)

    def closed_bars(
        self, symbol: str, last_t: int | None, now_ms: int, warmup_bars: int, interval: str | None = None
    ) -> list[Bar]:
        iv = M3 if interval == "3m" else M30
        newest = self.last_closed_open_time(now_ms, iv)
        first = newest - (warmup_bars - 1) * iv if last_t is None else last_t + iv
        self.stats.last = "bench"
        return [self._sub(symbol, t, iv) for t in range(first, newest + 1, iv)]


def bench_sub(
    n_symbols: int, loops: int, raw: list[tuple[str, dict[int, list[list[float]]]]]
) -> dict[str, float]:
    names = [f"{raw[i % len(raw)][0]}{'' if i < len(raw) else i}" for i in range(n_symbols)]
    series = {name: (raw[i % len(raw)][1], (i // len(raw)) * 3) for i, name in enumerate(names)}
    t0 = 1_700_000_000_000 // M30 * M30
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "strategy.yaml"
        cfg.write_text(SUB_CONFIG)
        hub = SubBenchHub(series, t0)
        db = TradingDB(Path(tmp) / "trading_engine.db")
        eng = UnifiedEngine(
            EngineSettings(symbols=tuple(names), loop_s=0.0), hub, StrategyManager(cfg), RiskManager(), db,
            Meta(AssetMeta(n, 2, 20) for n in names), alert=lambda k, m: None,
        )  # fmt: skip
        eng.startup()
        hub.now = t0 + M30
        eng.run_once()  # warm-up: 60 30m bars per symbol
        for _ in range(M30 // M3):  # sub-bar ticks start after the first live 30m decision
            hub.now += M3
            eng.run_once()
        tick_times: list[float] = []
        bar_times: list[float] = []
        fills = 0
        for _ in range(loops):
            hub.now += M3
            t = time.perf_counter()
            rep = eng.run_once()
            (bar_times if rep.bars else tick_times).append(time.perf_counter() - t)
            fills += rep.fills
            assert rep.ticks == 1 or rep.bars == n_symbols, rep
        db.close()
    tick_times.sort()
    both = sorted(tick_times + bar_times)
    return {
        "symbols": n_symbols,
        "p50_ms": statistics.median(tick_times) * 1000,
        "p95_ms": both[int(0.95 * (len(both) - 1))] * 1000,
        "max_ms": both[-1] * 1000,
        "bar_loop_p50_ms": statistics.median(bar_times) * 1000 if bar_times else 0.0,
        "fills": fills,
    }


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(n_symbols: int, loops: int, raw: list[tuple[str, pd.DataFrame]]) -> dict[str, float]:
    names = [f"{raw[i % len(raw)][0]}{'' if i < len(raw) else i}" for i in range(n_symbols)]
    cols = [
        [df[c].astype(float).tolist() for c in ("open", "high", "low", "close", "volume")] for _, df in raw
    ]
    series = {name: (cols[i % len(raw)], (i // len(raw)) * 37) for i, name in enumerate(names)}
    t0 = 1_700_000_000_000 // STEP * STEP
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "strategy.yaml"
        cfg.write_text(CONFIG)
        hub = BenchHub(series, t0)
        meta = Meta(AssetMeta(n, 2, 20) for n in names)
        db = TradingDB(Path(tmp) / "trading_engine.db")
        eng = UnifiedEngine(
            EngineSettings(symbols=tuple(names), loop_s=0.0), hub, StrategyManager(cfg), RiskManager(), db, meta,
            alert=lambda k, m: None,
        )  # fmt: skip
        eng.startup()
        hub.now = t0 + STEP
        eng.run_once()  # warm-up: 300 bars per symbol
        times, commits = [], []
        fills = 0
        orig_persist = eng._persist

        def timed_persist(now: int) -> None:
            c0 = time.perf_counter()
            orig_persist(now)
            commits.append(time.perf_counter() - c0)

        eng._persist = timed_persist  # type: ignore[method-assign]
        for _ in range(loops):
            hub.now += STEP
            t = time.perf_counter()
            rep = eng.run_once()
            times.append(time.perf_counter() - t)
            fills += rep.fills
            assert rep.bars == n_symbols, rep
        db.close()
    times.sort()
    return {
        "symbols": n_symbols,
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000,
        "max_ms": times[-1] * 1000,
        "persist_p50_ms": statistics.median(commits) * 1000,
        "fills": fills,
        "rss_mb": rss_mb(),
    }


def daemon_rss(seconds: float) -> tuple[int, float, float, str]:
    """(symbols, RSS MB, peak RSS MB, last heartbeat) of a real paper daemon against the local exchange."""
    import os
    import signal
    import socket
    import subprocess

    from hyperliquid.info import Info

    symbols = [f.name.split("_")[0] for f in sorted(DATA.glob("*_USDC_USDC-5m-futures.feather"))]
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "strategy.yaml"
        cfg.write_text(CONFIG)
        venue = subprocess.Popen(
            [sys.executable, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(port), "--symbols",
             ",".join(symbols), "--data-dir", str(DATA), "--interval", "5m", "--speed", "300", "--rate-limit", "0"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        daemon = None
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    Info(url, skip_ws=True, timeout=2).all_mids()
                    break
                except Exception:
                    if time.monotonic() > deadline or venue.poll() is not None:
                        raise SystemExit("the local exchange did not start") from None
                    time.sleep(0.5)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
            env.update(
                AI_QUANT_DATA_DIR=tmp, AI_QUANT_STRATEGY_YAML=str(cfg), AI_QUANT_SYMBOLS=",".join(symbols),
                AI_QUANT_EXCHANGE_URL=url, AI_QUANT_WS_SIDECAR_SOCK=f"{tmp}/none.sock",
                AI_QUANT_CANDLES_DIR=f"{tmp}/none", AI_QUANT_LOG_LEVEL="WARNING",
            )  # fmt: skip
            daemon = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--loop-s", "1"], cwd=ROOT, env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(seconds)
            status = Path(f"/proc/{daemon.pid}/status").read_text().splitlines()
            kb = {ln.split(":")[0]: int(ln.split()[1]) for ln in status if ln.startswith(("VmRSS", "VmHWM"))}
            import sqlite3

            conn = sqlite3.connect(f"file:{tmp}/trading_engine.db?mode=ro", uri=True)
            hb = conn.execute("SELECT message FROM runtime_logs ORDER BY id DESC LIMIT 1").fetchone()
            conn.close()
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
        finally:
            for proc in (daemon, venue):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    proc.wait(15)
    return len(symbols), kb["VmRSS"] / 1024, kb["VmHWM"] / 1024, hb[0] if hb else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", type=int, default=60)
    ap.add_argument("--symbols", default="10,50,200")
    ap.add_argument("--daemon-rss", type=float, default=0.0, metavar="S", help="also measure the real daemon")
    ap.add_argument("--sub-bars", action="store_true", help="also the 30m/3m sub-bar mode (HL 1m data)")
    a = ap.parse_args()
    counts = [int(x) for x in a.symbols.split(",")]
    raw = load_series(a.loops + 800)
    print(f"paper daemon loop, one new closed 5m candle per symbol per loop, {a.loops} loops, no network")
    print(
        f"{'symbols':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'commit p50':>11} {'fills':>6} {'RSS MB':>7}"
    )
    for n in counts:
        r = bench(n, a.loops, raw)
        print(
            f"{r['symbols']:>7} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['max_ms']:>8.2f}"
            f" {r['persist_p50_ms']:>10.2f}  {r['fills']:>6} {r['rss_mb']:>7.1f}"
        )
    if a.sub_bars:
        sub_raw = load_sub_series()
        print(
            f"\nsub-bar mode 30m/3m (entries and exits), one 3m tick per loop, a 30m bar every 10th, {a.loops} loops"
        )
        print(f"{'symbols':>7} {'tick p50':>9} {'p95 ms':>8} {'max ms':>8} {'bar loop p50':>13} {'fills':>6}")
        for n in counts:
            r = bench_sub(n, a.loops, sub_raw)
            print(
                f"{r['symbols']:>7} {r['p50_ms']:>9.2f} {r['p95_ms']:>8.2f} {r['max_ms']:>8.2f}"
                f" {r['bar_loop_p50_ms']:>12.2f}  {r['fills']:>6}"
            )
    if a.daemon_rss > 0:
        n, rss, peak, hb = daemon_rss(a.daemon_rss)
        print(
            f"daemon process, {n} symbols, {a.daemon_rss:g} s against the local exchange: RSS {rss:.1f} MB, peak {peak:.1f} MB"
        )
        print(f"  last heartbeat: {hb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
