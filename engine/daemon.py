"""``python -m engine.daemon`` (also ``ai-quant run``): the unified trading daemon.

The mode comes from ``AI_QUANT_MODE``: ``paper`` runs here. ``dry_live`` and ``live`` refuse to
start until the live trading issue wires them into this daemon. Every other setting comes from the
``AI_QUANT_*`` variables (engine.env, docs/configuration.md) and the strategy YAML; the flags below
override a few for tests and tools.

Start-up: lock file (one daemon per mode), config (a bad file refuses to start), venue meta,
watchlist, state restored from the trading DB. SIGTERM/SIGINT: the current loop finishes, the DB is
flushed, the lock released; a second signal, or a shutdown taking longer than ``--stop-timeout-s``,
exits at once (state is committed per loop, so nothing is lost).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.version import __version__

log = logging.getLogger("engine.daemon")

EXIT_USAGE = 2
EXIT_LOCKED = 3
NOT_YET = (
    "AI_QUANT_MODE={mode}: the daemon runs paper mode only for now; dry_live and live join it with the "
    "live trading issue (until then `python -m live.trader` runs them). Refusing to start."
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.daemon", description=__doc__.split("\n")[0])
    p.add_argument("--url", help="venue URL (default AI_QUANT_EXCHANGE_URL)")
    p.add_argument("--config", type=Path, help="strategy YAML (default AI_QUANT_STRATEGY_YAML)")
    p.add_argument("--symbols", help="comma list (default AI_QUANT_SYMBOLS, else top-N by volume)")
    p.add_argument("--loop-s", type=float, help="loop period (default: the config's engine.loop_target_s)")
    p.add_argument(
        "--warmup-bars", type=int, help="bars fed at the first start (default engine.lookback_bars)"
    )
    p.add_argument("--max-loops", type=int, default=0, help="stop after N loops (0: until SIGTERM)")
    p.add_argument("--no-sidecar", action="store_true", help="do not use the WS sidecar")
    p.add_argument("--wall-clock", action="store_true", help="use our clock, not the venue's exchangeStatus")
    p.add_argument("--stop-timeout-s", type=float, default=30.0)
    p.add_argument("--max-drawdown-pct", type=float, default=0.0)
    p.add_argument("--daily-loss-limit-usd", type=float, default=0.0)
    p.add_argument("--max-notional-per-order-usd", type=float, default=0.0)
    p.add_argument("--max-total-notional-usd", type=float, default=0.0)
    p.add_argument("--slippage-guard-bps", type=float, default=0.0)
    p.add_argument("--log-file", type=Path, help="also log to this file")
    return p


def _setup_logging(level: str, log_file: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    from engine.env import EnvError, read_env

    args = build_parser().parse_args(argv)
    try:
        env = read_env()
    except EnvError as exc:
        print(f"ai-quant: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(env.log_level, args.log_file)
    for name in env.unknown_vars:
        from engine.env import describe_unknown

        log.warning(describe_unknown(name))
    if env.mode != "paper":
        print(f"ai-quant: {NOT_YET.format(mode=env.mode)}", file=sys.stderr)
        return EXIT_USAGE
    return run_paper(env, args)


def run_paper(env: Any, args: argparse.Namespace) -> int:
    from hyperliquid.info import Info

    from engine.alerting import Alerter
    from engine.config import ConfigError
    from engine.core import EngineSettings, UnifiedEngine
    from engine.lock import AlreadyRunning, DaemonLock
    from engine.market_data import MarketDataHub, connect_sidecar
    from engine.risk import KillState, RiskManager
    from engine.strategy_manager import StrategyManager
    from engine.systemd_watchdog import Notifier
    from engine.trading_db import TradingDB
    from exchange.meta import Meta
    from strategy.kernel_orchestrator import bt_runtime

    try:
        lock = DaemonLock(env.lock_path).acquire()
    except AlreadyRunning as exc:
        print(f"ai-quant: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    alerter = Alerter(
        [t.reveal() for t in env.alert_targets],
        dry_run=env.alert_dry_run,
        label="ai-quant paper",
        per_kind_interval_s={"kill_switch": 1.0, "config_rejected": 5.0},  # rare, and each one matters
    )
    alerter.start()
    notifier = Notifier()
    db: TradingDB | None = None
    try:
        config_path = args.config or env.strategy_yaml
        try:
            strategy = StrategyManager(
                config_path, mode="paper", strategy_mode=env.strategy_mode, alert=alerter
            )
        except ConfigError as exc:
            print(f"ai-quant: refusing to start on an invalid config:\n{exc}", file=sys.stderr)
            return EXIT_USAGE
        except FileNotFoundError:
            print(f"ai-quant: config file {config_path} not found (AI_QUANT_STRATEGY_YAML)", file=sys.stderr)
            return EXIT_USAGE
        url = (args.url or env.exchange_url).rstrip("/")
        info = Info(url, skip_ws=True, timeout=10)
        meta = Meta.fetch(info)
        interval = strategy.interval
        interval_ms = int(bt_runtime.intervals()[interval])
        sidecar = None if args.no_sidecar else connect_sidecar(env.ws_sidecar_sock)
        hub = MarketDataHub(
            info, interval, interval_ms, candles_dir=env.candles_dir, sidecar=sidecar,
            use_venue_clock=not args.wall_clock,
        )  # fmt: skip
        env_kill = KillState(env.kill_switch) if env.kill_switch else KillState.OFF
        risk = RiskManager(
            alert=alerter, env_kill=env_kill, kill_file=env.kill_switch_file, hard_kill=env.hard_kill_switch
        )
        db = TradingDB(env.db_path, mode="paper", run_fingerprint=f"{os.getpid()}-{int(time.time())}")
        symbols = (
            tuple(s.strip() for s in args.symbols.split(",") if s.strip()) if args.symbols else env.symbols
        )
        overrides = {
            k: v
            for k, v in {
                "max_drawdown_pct": args.max_drawdown_pct,
                "daily_loss_limit_usd": args.daily_loss_limit_usd,
                "max_notional_per_order_usd": args.max_notional_per_order_usd,
                "max_total_notional_usd": args.max_total_notional_usd,
                "slippage_guard_bps": args.slippage_guard_bps,
            }.items()
            if v
        }
        settings = EngineSettings(
            mode="paper", symbols=symbols, top_n=env.top_n, loop_s=args.loop_s, warmup_bars=args.warmup_bars,
            paper_balance=env.paper_balance, state_file=env.data_dir / "kernel_state_paper.json",
            version=__version__, kernel_mode=env.kernel_mode, risk_overrides=overrides,
        )  # fmt: skip
        engine = UnifiedEngine(settings, hub, strategy, risk, db, meta, alert=alerter, notifier=notifier)
        engine.startup()
        _install_signals(engine, args.stop_timeout_s)
        log.info(
            "ai-quant %s paper daemon on %s: db %s, lock %s, sidecar %s",
            __version__, url, env.db_path, env.lock_path, "yes" if sidecar else "no",
        )  # fmt: skip
        engine.run(max_loops=args.max_loops)
        notifier.stopping()
        log.info("stopped after %d loops (%d errors)", engine.loops, engine.errors)
        return 0
    finally:
        if db is not None:
            db.close()
        alerter.close(timeout_s=3.0)
        lock.release()


def _install_signals(engine: Any, stop_timeout_s: float) -> None:
    state = {"signals": 0}

    def on_signal(signum: int, _frame: object) -> None:
        state["signals"] += 1
        if state["signals"] > 1:
            log.warning("second signal: exiting now (state is committed per loop)")
            os._exit(1)
        log.info("signal %d: stopping after the current loop", signum)
        engine.stop()

        def deadline() -> None:
            time.sleep(stop_timeout_s)
            log.error("shutdown took longer than %.0f s; exiting now", stop_timeout_s)
            os._exit(1)

        threading.Thread(target=deadline, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


if __name__ == "__main__":
    sys.exit(main())
