"""`make run`: the main job, on loopback, with real replayed market data. It says what it runs.

1. Imports the bundled real Hyperliquid candles and hourly funding (../shared/data) into
   `run/candles_dbs` (idempotent: a second run changes nothing).
2. Replays the strategy config over them with the Rust backtester `ai-quant-bt` and prints the
   report summary (the same kernel the daemon uses).
3. Starts the bundled local exchange (`python -m exchange.sim`, 127.0.0.1:3001) replaying the same
   real candles at an accelerated clock, and the WS sidecar if it is built.
4. Starts the trading daemon in paper mode (`python -m daemon`) against that exchange, with
   its own data folder `run/paper` (trading DB, lock, kernel state, kill-switch file), and the
   read-only monitor (`python -m monitor`, http://127.0.0.1:61010/). It prints the daemon's heartbeat and
   every new paper trade from the trading DB.

Ctrl-C stops everything. Flags: `--speed`, `--interval`, `--sub-interval` (e.g. `--interval 30m
--sub-interval 3m`, the blueprint's primary mode: replayed from the 1m files, 30m and 3m candles
exactly aggregated), `--symbols`, `--config`, `--no-exchange`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def use_run_dir(run: Path) -> None:
    global RUN, CANDLES, PAPER
    RUN, CANDLES, PAPER = run, run / "candles_dbs", run / "paper"


def say(msg: str) -> None:
    print(f"[make run] {msg}", flush=True)


def base_interval(intervals: list[str]) -> str:
    """The shipped interval to replay: the coarsest with files that divides every one of
    ``intervals`` (the others are its exact aggregation, by the import and by the exchange)."""
    from engine.data.intervals import INTERVALS

    ms = [INTERVALS[i] for i in intervals]
    fits = [i for i, m in INTERVALS.items() if all(x % m == 0 for x in ms)]
    have = [i for i in fits if (HL / f"BTC_USDC_USDC-{i}-futures.feather").exists()]
    if not have:
        raise SystemExit(f"no shipped interval divides {','.join(intervals)} under {HL}")
    return max(have, key=INTERVALS.__getitem__)


def import_data(symbols: list[str], interval: str, aggregate: list[str] | None = None) -> None:
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
            *(["--aggregate", ",".join(aggregate)] if aggregate else []),
        ],
        check=True,
    )


def backtest(config: Path, symbols: list[str], interval: str, sub: str = "") -> None:
    bt = ROOT / "target" / "release" / "ai-quant-bt"
    if not bt.exists():
        say("2/4 skipped: target/release/ai-quant-bt is not built")
        return
    say(f"2/4 replaying {config.relative_to(ROOT)} over the imported candles with ai-quant-bt")
    RUN.mkdir(exist_ok=True)
    report_path = RUN / "replay_report.json"
    # The page goes where the monitor finds reports (<its data dir>/reports, see docs/monitor.md).
    html_path = PAPER / "reports" / "replay_report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(bt), "replay", "--config", str(config), "--candles-db", str(CANDLES / f"candles_{interval}.db"),
            "--interval", interval, "--funding-db", str(CANDLES / "funding_rates.db"), "--symbols", ",".join(symbols),
            "--output", str(report_path), "--export-trades", str(RUN / "replay_trades.csv"), "--quiet",
            "--html", str(html_path),
            *([x for w in ("entry", "exit") for x in (f"--{w}-interval", sub, f"--{w}-candles-db",
                                                      str(CANDLES / f"candles_{sub}.db"))] if sub else []),
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
        f"max DD {g('max_drawdown_pct')}%, PF {g('profit_factor')}; report {rel(report_path)}"
    )
    bind = os.environ.get("AI_QUANT_MONITOR_BIND", "127.0.0.1:61010")
    say(
        f"    replay report page: {html_path} (open the file in a browser, or in the monitor: "
        f"http://{bind}/api/reports/replay/{html_path.name}, linked under Reports)"
    )


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def start(
    stack: ExitStack, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = stack.enter_context(log.open("ab"))
    proc = subprocess.Popen(
        argv, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, env=env
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    stack.callback(stop)
    say(f"    started {name} (pid {proc.pid}); log {rel(log)}")
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


PAPER = RUN / "paper"

#: The sidecar within the venue's real budget (1200 weight a minute, exchange/venue_limits.py),
#: even on an accelerated clock: one candleSnapshot per pair for the whole backfill (20 weight a
#: request, plus 1 per 60 bars) and closed bars re-read at most every 20 s of our clock per pair,
#: several bars at once (a 5m bar closes every 5 s at x60). Measured with the daemon: the exchange
#: log's "REST weight in the last minute" lines (tests/run/test_run_budget.py).
SIDECAR_BUDGET_ARGS = ["--backfill-chunk", "5000", "--reconcile-delay-ms", "20000"]


def wait_for_sidecar_candles(sock: Path, symbols: list[str], interval: str, timeout_s: float = 90.0) -> None:
    """Let the sidecar finish its backfill before the daemon warms up, so the daemon reads the
    history from the sidecar's candle DB instead of asking the venue's REST API for it again."""
    from exchange.sidecar import SidecarClient

    deadline = time.monotonic() + timeout_s
    try:
        with SidecarClient(sock, timeout=5.0) as client:
            client.ensure_started(symbols, interval)
            while time.monotonic() < deadline:
                ready = client.candles_ready(symbols, interval)
                if ready.ready:
                    say(f"    WS sidecar: {interval} candles ready for {','.join(symbols)}")
                    return
                time.sleep(1.0)
    except Exception as exc:
        say(f"    WS sidecar not answering ({type(exc).__name__}); the daemon falls back to REST")
        return
    say(f"    WS sidecar still backfilling after {timeout_s:.0f} s; the daemon starts anyway (REST fallback)")


def paper_config(config: Path, interval: str, loop_s: float, sub: str = "") -> Path:
    """The chosen config with the daemon's interval (and sub-bar intervals) set to the replayed
    ones (written to run/paper)."""
    import yaml

    doc = yaml.safe_load(config.read_text()) or {}
    engine = doc.setdefault("global", {}).setdefault("engine", {})
    engine.update({"interval": interval, "loop_target_s": loop_s})
    if sub:
        engine.update({"entry_interval": sub, "exit_interval": sub})
    PAPER.mkdir(parents=True, exist_ok=True)
    out = PAPER / "strategy.yaml"
    out.write_text(
        f"# Written by tools/run_main.py from {config.name}: engine.interval={interval}, "
        f"loop_target_s={loop_s:g} for the replay.\n" + yaml.safe_dump(doc, sort_keys=False)
    )
    return out


def daemon_env(url: str, config: Path, symbols: list[str], sock: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
    env.update(
        AI_QUANT_MODE="paper",
        AI_QUANT_EXCHANGE_URL=url,
        AI_QUANT_STRATEGY_YAML=str(config),
        AI_QUANT_SYMBOLS=",".join(symbols),
        AI_QUANT_DATA_DIR=str(PAPER),
        AI_QUANT_CANDLES_DIR=str(RUN / "sidecar_candles"),
        AI_QUANT_KILL_SWITCH_FILE=str(PAPER / "kill_switch"),
        AI_QUANT_WS_SIDECAR_SOCK=str(sock or (PAPER / "no-sidecar.sock")),
        AI_QUANT_ALERT_DRY_RUN=os.environ.get("AI_QUANT_ALERT_DRY_RUN", "1"),
    )
    return env


def follow(db: Path, proc: subprocess.Popen[bytes], log: Path, report_every_s: float = 15.0) -> None:
    """Print the daemon's first heartbeat (warm-up done), then heartbeats and new trades, until Ctrl-C."""
    import sqlite3

    last_trade = 0
    last_hb = 0.0
    warmed = False
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise SystemExit(f"the daemon exited with code {proc.returncode}:\n" + "\n".join(tail))
        if db.exists():
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                hb = conn.execute("SELECT message FROM runtime_logs ORDER BY id DESC LIMIT 1").fetchone()
                trades = conn.execute(
                    "SELECT id, action, type, symbol, size, price, fee_usd, pnl, reason_code FROM trades"
                    " WHERE id > ? ORDER BY id",
                    (last_trade,),
                ).fetchall()
            except sqlite3.OperationalError:
                hb, trades = None, []
            finally:
                conn.close()
            if hb and not warmed:
                warmed = True
                say(f"    warm-up: daemon's first loop done; now following new bars. {hb[0]}")
                last_hb = time.monotonic()
            elif hb and time.monotonic() - last_hb >= report_every_s:
                say(f"    {hb[0]}")
                last_hb = time.monotonic()
            for tid, action, side, sym, size, px, fee, pnl, code in trades:
                last_trade = tid
                say(
                    f"    trade {action:<7} {side:<5} {sym:<5} qty {size:.6g} @ {px:.6g} fee {fee:.4f}"
                    f" pnl {pnl:+.4f} ({code})"
                )
        time.sleep(1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", default="BTC,ETH,SOL")
    ap.add_argument("--interval", default="5m")
    ap.add_argument(
        "--sub-interval",
        default="",
        help="sub-bar entries and exits, e.g. 3m with --interval 30m (the blueprint's primary mode)",
    )
    ap.add_argument("--speed", type=float, default=60.0, help="exchange clock speed (x real time)")
    ap.add_argument("--port", type=int, default=3001)
    ap.add_argument(
        "--config",
        type=Path,
        default=None,
        help="strategy YAML (default: config/strategy_overrides.yaml, else the example)",
    )
    ap.add_argument("--no-exchange", action="store_true", help="only import and backtest")
    ap.add_argument("--run-dir", type=Path, default=RUN, help="where the run's files go (default run/)")
    a = ap.parse_args()
    use_run_dir(a.run_dir.resolve())
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
    base = base_interval([a.interval, a.sub_interval] if a.sub_interval else [a.interval])
    import_data(symbols, base, [i for i in (a.interval, a.sub_interval) if i and i != base])
    backtest(config, symbols, a.interval, a.sub_interval)
    if a.no_exchange:
        return 0
    url = f"http://127.0.0.1:{a.port}"
    with ExitStack() as stack:
        say(f"3/4 starting the local exchange on {url} (real {base} candles replayed at x{a.speed:g})")
        exchange_log = RUN / "logs" / "exchange.log"
        exchange = start(
            stack,
            "local exchange",
            [PY, "-m", "exchange.sim", "--host", "127.0.0.1", "--port", str(a.port), "--symbols", ",".join(symbols),
             "--data-dir", str(HL), "--interval", base, "--speed", str(a.speed)],
            exchange_log,
        )  # fmt: skip
        wait_for_exchange(url, exchange, exchange_log)
        sidecar = ROOT / "target" / "release" / "ai-quant-sidecar"
        sock: Path | None = None
        if sidecar.exists():
            sock = RUN / "ai-quant-ws.sock"
            sock.unlink(missing_ok=True)  # a stale socket of an earlier run would look ready
            env_sock = str(sock)
            start(
                stack,
                "WS sidecar",
                [str(sidecar), "--sock", env_sock, "--exchange-url", url, "--candles-dir", str(RUN / "sidecar_candles"),
                 "--symbols", ",".join(symbols), "--intervals", ",".join(dict.fromkeys(x for x in (a.interval, a.sub_interval) if x)),
                 *SIDECAR_BUDGET_ARGS],
                RUN / "logs" / "sidecar.log",
            )  # fmt: skip
            deadline = time.monotonic() + 15
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not sock.exists():
                say("    the WS sidecar did not open its socket within 15 s; the daemon falls back to REST")
            else:
                wait_for_sidecar_candles(sock, symbols, a.interval)
        else:
            say("    WS sidecar not built (cargo build --release -p ai-quant-sidecar); continuing without it")
        from engine.data.intervals import interval_ms

        if PAPER.exists():  # the venue restarts its replay each run: so does the paper account
            prev = RUN / "paper.prev"
            shutil.rmtree(prev, ignore_errors=True)
            PAPER.rename(prev)
            if (prev / "reports").is_dir():  # report pages (this run's replay) are not paper state
                PAPER.mkdir(parents=True, exist_ok=True)
                (prev / "reports").rename(PAPER / "reports")
            say(f"    previous paper run kept in {rel(prev)}; this run starts a fresh paper account")

        loop_s = max(2.0, interval_ms(a.sub_interval or a.interval) / 1000.0 / a.speed / 2.0)
        cfg = paper_config(config, a.interval, loop_s, a.sub_interval)
        say(f"4/4 paper loop: the trading daemon (python -m daemon, paper mode) on {url}, loop {loop_s:g} s")
        daemon_log = RUN / "logs" / "daemon.log"
        PAPER.mkdir(parents=True, exist_ok=True)
        daemon = start(
            stack, "paper daemon", [PY, "-m", "daemon"], daemon_log,
            env=daemon_env(url, cfg, symbols, sock),
        )  # fmt: skip
        # The operator's bind and token pass through (daemon_env drops every other AI_QUANT_*).
        mon_env = daemon_env(url, cfg, symbols, sock)
        for var in ("AI_QUANT_MONITOR_BIND", "AI_QUANT_MONITOR_TOKEN"):
            if os.environ.get(var):
                mon_env[var] = os.environ[var]
        start(stack, "monitor", [PY, "-m", "monitor"], RUN / "logs" / "monitor.log", env=mon_env)
        bind = mon_env.get("AI_QUANT_MONITOR_BIND", "127.0.0.1:61010")
        say(f"    monitor (read-only web page): http://{bind}/ (AI_QUANT_MONITOR_BIND; docs/monitor.md)")
        say(f"    trading DB {rel(PAPER / 'trading_engine.db')}; daemon log {rel(daemon_log)}")
        say(f"    kill switch: echo close_only > {rel(PAPER / 'kill_switch')} (halt_all; clear to release)")
        say(f"    strategy YAML used: {rel(cfg)} (hot-reloaded on edit); exchange log {rel(exchange_log)}")
        try:
            follow(PAPER / "trading_engine.db", daemon, daemon_log)
        except KeyboardInterrupt:
            say("stopping (Ctrl-C)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
