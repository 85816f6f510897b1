"""`make run`: the main job, on loopback, with real replayed market data. It says what it runs.

1. Imports the bundled real Hyperliquid candles and hourly funding (../shared/data) into
   `run/candles_dbs` (idempotent: a second run changes nothing).
2. Replays the strategy config over them with the Rust backtester `ai-quant-bt` and prints the
   report summary (the same kernel the daemon uses).
3. Starts the bundled local exchange (`python -m exchange.sim`, 127.0.0.1:3001) replaying the same
   real candles at an accelerated clock, and the WS sidecar if it is built.
4. Runs a paper-trading loop against that exchange: the official Hyperliquid SDK fetches closed
   candles, the Rust kernel (through `strategy.kernel_orchestrator`) decides, simulated fills are
   printed as they happen. This interim loop stands in for the full daemon (`engine/daemon.py`,
   issue 8) until it lands; the monitor will join when it exists.

Ctrl-C stops everything. Flags: `--speed`, `--interval`, `--symbols`, `--config`, `--no-exchange`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN = ROOT / "run"
CANDLES = RUN / "candles_dbs"
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HL = DATA / "hyperliquid" / "futures"
PY = sys.executable


def say(msg: str) -> None:
    print(f"[make run] {msg}", flush=True)


def import_data(symbols: list[str], interval: str) -> None:
    files = [HL / f"{s}_USDC_USDC-{interval}-futures.feather" for s in symbols]
    files += [HL / f"{s}_USDC_USDC-1h-funding_rate.feather" for s in symbols]
    missing = [f for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"real data not found: {missing[0]} (set AI_QUANT_SHARED_DATA)")
    say(
        f"1/4 importing real Hyperliquid {interval} candles and hourly funding for {','.join(symbols)} into {CANDLES}"
    )
    subprocess.run(
        [
            PY,
            str(ROOT / "tools" / "import_candles.py"),
            "--db-dir",
            str(CANDLES),
            "--quiet",
            *map(str, files),
        ],
        check=True,
    )


def backtest(config: Path, symbols: list[str], interval: str) -> None:
    bt = ROOT / "target" / "release" / "ai-quant-bt"
    if not bt.exists():
        say("2/4 skipped: target/release/ai-quant-bt is not built")
        return
    say(f"2/4 replaying {config.relative_to(ROOT)} over the imported candles with ai-quant-bt")
    RUN.mkdir(exist_ok=True)
    report_path = RUN / "replay_report.json"
    subprocess.run(
        [
            str(bt), "replay", "--config", str(config), "--candles-db", str(CANDLES / f"candles_{interval}.db"),
            "--interval", interval, "--funding-db", str(CANDLES / "funding_rates.db"), "--symbols", ",".join(symbols),
            "--output", str(report_path), "--export-trades", str(RUN / "replay_trades.csv"), "--quiet",
        ],
        check=True,
    )  # fmt: skip
    r = json.loads(report_path.read_text())

    def g(*keys: str) -> Any:
        for k in keys:
            if k in r:
                return r[k]
        return "?"

    say(
        f"    replay: {g('total_trades', 'trades')} trades, PnL {g('total_pnl', 'total_pnl_usd')}, "
        f"max DD {g('max_drawdown_pct')}%, PF {g('profit_factor')}; report {report_path.relative_to(ROOT)}"
    )


def start(stack: ExitStack, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = stack.enter_context(log.open("ab"))
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    stack.callback(stop)
    say(f"    started {name} (pid {proc.pid}); log {log.relative_to(ROOT)}")
    return proc


def wait_for_exchange(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    from hyperliquid.info import Info

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise SystemExit(
                f"the local exchange exited with code {proc.returncode}: {' '.join(tail)} (see {log})"
            )
        try:
            Info(url, skip_ws=True).all_mids()
            return
        except Exception:
            time.sleep(0.5)
    raise SystemExit(f"the local exchange did not answer at {url} within {timeout_s:.0f} s")


def paper_loop(url: str, config: Path, symbols: list[str], interval: str, speed: float) -> None:
    from hyperliquid.info import Info

    from engine.config import load_config
    from strategy.kernel_orchestrator import KernelOrchestrator

    loaded = {s: load_config(config, s, "paper") for s in symbols}
    base = load_config(config, None, "paper")
    orch = KernelOrchestrator(base.merged, {s: c.merged for s, c in loaded.items()}, initial_cash=10_000.0)
    info = Info(url, skip_ws=True)
    say(f"4/4 paper loop on {url}: kernel config_id {base.config_id[:12]}, {interval} bars at x{speed:g}")
    last: dict[str, int] = {}
    from hyperliquid.utils.error import ClientError, ServerError

    from engine.data.intervals import interval_ms

    # Poll about twice per bar of sim time, never faster than every 10 s (the venue limits request weight).
    poll_s = max(10.0, interval_ms(interval) / 1000.0 / speed / 2.0)
    backoff = poll_s
    while True:
        try:
            polled = _poll_once(info, orch, symbols, interval, last)
        except (ClientError, ServerError) as e:
            backoff = min(backoff * 2, 60.0)
            say(f"    venue answered {getattr(e, 'status_code', '?')}; backing off {backoff:.0f} s")
            time.sleep(backoff)
            continue
        backoff = poll_s
        if polled:
            pos = json.loads(orch.kernel.positions_json())
            say(
                f"    equity {orch.kernel.equity():.2f} cash {orch.kernel.cash:.2f} open {sorted(pos) or '-'}"
            )
        time.sleep(poll_s)


def _poll_once(info: Any, orch: Any, symbols: list[str], interval: str, last: dict[str, int]) -> bool:
    """Feed every newly closed bar to the kernel (one `evaluate` per bar time, as the backtester
    does), print fills. The first call replays the venue's history as a warm-up. True if bars arrived."""
    from engine.data.intervals import interval_ms
    from strategy.kernel_orchestrator import Bar

    step = interval_ms(interval)
    warmup = not last
    horizon = int(time.time() * 1000) + 400 * 86_400_000  # the venue caps at its own clock
    bars: list[Bar] = []
    for s in symbols:
        # Warm up on the last 4,000 bars (under the venue's 5,000-candle cap), then only new ones.
        since = last[s] + 1 if s in last else int(time.time() * 1000) - 4000 * step
        candles = info.candles_snapshot(s, interval, since, horizon)
        for c in candles[:-1]:  # the newest bar may still be forming
            if int(c["t"]) > last.get(s, 0):
                bars.append(
                    Bar(
                        s,
                        int(c["t"]),
                        float(c["o"]),
                        float(c["h"]),
                        float(c["l"]),
                        float(c["c"]),
                        float(c["v"]),
                    )
                )
    bars.sort(key=lambda b: (b.t, b.symbol))
    fills = 0
    i = 0
    while i < len(bars):
        t = bars[i].t
        while i < len(bars) and bars[i].t == t:
            res = orch.on_candle(bars[i])
            last[bars[i].symbol] = t
            fills += len(res.fills)
            i += 1
        res = orch.evaluate(t + step)
        fills += len(res.fills)
        if not warmup:
            for f in res.fills:
                say(
                    f"    fill {f.kind:<7} {f.side:<5} {f.symbol:<5} qty {f.quantity:.6g} @ {f.price:.6g} "
                    f"fee {f.fee_usd:.4f} pnl {f.pnl_usd:+.4f} ({f.reason_code})"
                )
    if warmup and bars:
        say(f"    warm-up: {len(bars)} historical bars from the venue, {fills} fills; now following new bars")
    return bool(bars)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", default="BTC,ETH,SOL")
    ap.add_argument("--interval", default="5m")
    ap.add_argument("--speed", type=float, default=60.0, help="exchange clock speed (x real time)")
    ap.add_argument("--port", type=int, default=3001)
    ap.add_argument(
        "--config",
        type=Path,
        default=None,
        help="strategy YAML (default: config/strategy_overrides.yaml, else the example)",
    )
    ap.add_argument("--no-exchange", action="store_true", help="only import and backtest")
    a = ap.parse_args()
    symbols = [s.strip() for s in a.symbols.split(",") if s.strip()]

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # run the cleanup that stops every child process

    signal.signal(signal.SIGTERM, on_term)
    config = a.config or ROOT / "config" / "strategy_overrides.yaml"
    if not config.exists():
        config = ROOT / "config" / "strategy_overrides.example.yaml"
    say(
        f"config {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}; symbols {','.join(symbols)}"
    )
    import_data(symbols, a.interval)
    backtest(config, symbols, a.interval)
    if a.no_exchange:
        return 0
    url = f"http://127.0.0.1:{a.port}"
    with ExitStack() as stack:
        say(f"3/4 starting the local exchange on {url} (real {a.interval} candles replayed at x{a.speed:g})")
        exchange_log = RUN / "logs" / "exchange.log"
        exchange = start(
            stack,
            "local exchange",
            [PY, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(a.port), "--symbols", ",".join(symbols),
             "--data-dir", str(HL), "--interval", a.interval, "--speed", str(a.speed)],
            exchange_log,
        )  # fmt: skip
        wait_for_exchange(url, exchange, exchange_log)
        sidecar = ROOT / "target" / "release" / "ai-quant-sidecar"
        if sidecar.exists():
            env_sock = str(RUN / "ai-quant-ws.sock")
            start(
                stack,
                "WS sidecar",
                [str(sidecar), "--sock", env_sock, "--exchange-url", url, "--candles-dir", str(RUN / "sidecar_candles"),
                 "--symbols", ",".join(symbols), "--intervals", a.interval],
                RUN / "logs" / "sidecar.log",
            )  # fmt: skip
        else:
            say("    WS sidecar not built (cargo build --release -p ai-quant-sidecar); continuing without it")
        say(
            "    monitor: not part of the build yet (issue 10); the daemon: interim paper loop below (issue 8)"
        )
        try:
            paper_loop(url, config, symbols, a.interval, a.speed)
        except KeyboardInterrupt:
            say("stopping (Ctrl-C)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
