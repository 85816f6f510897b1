"""``python -m daemon`` (also ``ai-quant run``): the unified trading daemon.

The mode comes from ``AI_QUANT_MODE``; every mode runs the same loop (daemon/loop.py) and differs
only in its execution backend (engine/execution.py):

* ``paper``: PaperTrader fills, the paper account;
* ``dry_live``: the live order path up to the send: intents are recorded in the OMS as WOULD,
  nothing is sent; the venue account (wallet from engine/secrets.py) is the account;
* ``live``: the same, and orders are sent, only when every live gate is open
  (``AI_QUANT_LIVE_ENABLE=1``, ``AI_QUANT_LIVE_CONFIRM=I_UNDERSTAND_THIS_CAN_LOSE_MONEY``, hard kill
  off); otherwise the daemon refuses to start.

Every other setting comes from the ``AI_QUANT_*`` variables (engine.env, docs/configuration.md)
and the strategy YAML; the flags below override a few for tests and tools.

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

log = logging.getLogger("daemon.main")

EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_PREFLIGHT = 4  # live refused: the pre-flight check found a problem (live/preflight.py)
T_IMPORT = time.perf_counter()


class Refused(Exception):
    """Start-up refused (live gates, secrets): the message says why, never a secret."""


class VenueDown(Exception):
    """A venue request at start failed, and retrying did not help: ``problem`` says how."""

    def __init__(self, problem: Any, doing: str) -> None:
        self.problem = problem
        super().__init__(problem.line(doing))


START_429_MAX_WAIT_S = 120.0  # at start, 429s are waited out this long, then the daemon exits (rc 1)


def venue_call(
    url: str, doing: str, fn: Any, *, weight: int = 60, max_wait_s: float = START_429_MAX_WAIT_S,
    sleep: Any = time.sleep,
) -> Any:  # fmt: skip
    """``fn()``; a failed venue request becomes :class:`VenueDown` (one line, no traceback). A 429
    is waited out first (exchange/venue_limits.py ``backoff_s`` for a request of ``weight``), up to
    ``max_wait_s`` in all."""
    from exchange.venue_errors import venue_problem
    from exchange.venue_limits import backoff_s

    waited, attempt = 0.0, 0
    while True:
        try:
            return fn()
        except Exception as exc:
            problem = venue_problem(exc, url)
            if problem is None:  # not a failed venue request: a bug or a refusal, raised as it is
                raise
            if not problem.rate_limited or waited >= max_wait_s:
                raise VenueDown(problem, doing) from None
            wait = min(backoff_s(weight, attempt), max_wait_s - waited)
            log.warning("%s", problem.line(doing, retry_s=wait))
            sleep(wait)
            waited, attempt = waited + wait, attempt + 1


def process_age_s() -> float:
    """Seconds since this process was started (exec), from /proc; 0 where unknown."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m daemon", description=__doc__.split("\n")[0])
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
    p.add_argument(
        "--entries-per-min", type=float, default=0.0, help="entry orders per wall minute (default 30)"
    )
    p.add_argument(
        "--entries-per-symbol-per-min",
        type=float,
        default=0.0,
        help="entry orders per symbol per wall minute (default 6; an accelerated venue clock needs more)",
    )
    p.add_argument("--log-file", type=Path, help="also log to this file")
    live = p.add_argument_group("dry_live / live")
    live.add_argument("--oms-db", type=Path, help="OMS SQLite file (default: oms_<mode>.db next to the DB)")
    live.add_argument("--reconcile-s", type=float, default=10.0, help="full reconcile every N s")
    live.add_argument("--dead-man-s", type=float, default=60.0, help="scheduleCancel horizon (live)")
    live.add_argument("--no-user-stream", action="store_true", help="no userFills WebSocket (poll only)")
    live.add_argument("--crash-at", help=argparse.SUPPRESS)  # crash harness: POINT[:N] SIGKILLs itself
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
    from daemon.watchlist import WatchlistEmpty
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
    if env.mode == "live":
        from engine.live_gates import evaluate_gates

        gates = evaluate_gates(os.environ, want_live=True)
        if not gates.live_orders:
            print(
                "ai-quant: AI_QUANT_MODE=live refused: " + "; ".join(gates.problems)
                + ". Nothing was sent. AI_QUANT_MODE=dry_live runs the same path without sending.",
                file=sys.stderr,
            )  # fmt: skip
            return EXIT_USAGE
    try:
        return run(env, args)
    except VenueDown as exc:
        print(f"ai-quant: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.problem.config_error else 1
    except WatchlistEmpty as exc:
        print(f"ai-quant: {exc}", file=sys.stderr)
        return EXIT_USAGE


def run(env: Any, args: argparse.Namespace) -> int:
    import bt_runtime

    from daemon.loop import EngineSettings, UnifiedEngine
    from engine.alerting import Alerter
    from engine.config import ConfigError
    from engine.lock import AlreadyRunning, DaemonLock
    from engine.market_data import MarketDataHub, SidecarLink, connect_sidecar
    from engine.risk import KillState, RiskManager
    from engine.strategy_manager import StrategyManager
    from engine.systemd_watchdog import Notifier
    from engine.trading_db import TradingDB
    from exchange.hl_market_data import HyperliquidMarketData
    from exchange.venue_limits import WeightMeter

    try:
        lock = DaemonLock(env.lock_path).acquire()
    except AlreadyRunning as exc:
        print(f"ai-quant: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    db_lock = None
    if env.mode != "paper":  # dry_live and live share trading_engine_live.db: one daemon per DB file
        try:
            db_lock = DaemonLock(env.db_path.with_name(env.db_path.name + ".lock")).acquire()
        except AlreadyRunning as exc:
            lock.release()
            print(f"ai-quant: {exc} on {env.db_path}", file=sys.stderr)
            return EXIT_LOCKED
    alerter = Alerter(
        [t.reveal() for t in env.alert_targets],
        dry_run=env.alert_dry_run,
        label=f"ai-quant {env.mode}",
        # rare, and each one matters (a venue outage alerts once when it starts and once when it ends)
        per_kind_interval_s={
            "kill_switch": 1.0,
            "config_rejected": 5.0,
            "venue_unreachable": 1.0,
            "venue_recovered": 1.0,
        },
    )
    alerter.start()
    notifier = Notifier()
    db: TradingDB | None = None
    execution: Any = None
    try:
        config_path = args.config or env.strategy_yaml
        try:
            strategy = StrategyManager(
                config_path, mode=env.mode, strategy_mode=env.strategy_mode, alert=alerter
            )
        except ConfigError as exc:
            print(f"ai-quant: refusing to start on an invalid config:\n{exc}", file=sys.stderr)
            return EXIT_USAGE
        except FileNotFoundError:
            print(f"ai-quant: config file {config_path} not found (AI_QUANT_STRATEGY_YAML)", file=sys.stderr)
            return EXIT_USAGE
        url = (args.url or env.exchange_url).rstrip("/")
        meter = WeightMeter()  # what this daemon spends of the venue's weight budget
        info = venue_call(url, "start-up: meta", lambda: HyperliquidMarketData.connect(url, meter=meter))
        meta = venue_call(url, "start-up: meta", info.meta)
        interval = strategy.interval
        interval_ms = int(bt_runtime.intervals()[interval])
        link = (
            SidecarLink(None, "no (--no-sidecar)")
            if args.no_sidecar
            else connect_sidecar(env.ws_sidecar_sock, url, env.candles_dir)
        )
        for line in (link.warning, link.candles_warning):
            if line:
                log.warning(line)
        hub = MarketDataHub(
            info, interval, interval_ms, candles_dir=env.candles_dir, sidecar=link.client,
            use_venue_clock=not args.wall_clock, mids_max_age_s=env.mids_stale_s, meter=meter,
        )  # fmt: skip
        env_kill = KillState(env.kill_switch) if env.kill_switch else KillState.OFF
        risk = RiskManager(
            alert=alerter, env_kill=env_kill, kill_file=env.kill_switch_file, hard_kill=env.hard_kill_switch
        )
        db = TradingDB(env.db_path, mode=env.mode, run_fingerprint=f"{os.getpid()}-{int(time.time())}")
        execution = None
        if env.mode != "paper":
            try:
                execution = _live_execution(env, args, url, alerter, db, meter)
            except Refused as exc:
                print(f"ai-quant: {exc}", file=sys.stderr)
                return EXIT_USAGE
        symbols = (
            tuple(s.strip() for s in args.symbols.split(",") if s.strip()) if args.symbols else env.symbols
        )
        overrides = risk_overrides(env.risk_limits, args)
        settings = EngineSettings(
            mode=env.mode, symbols=symbols, top_n=env.top_n, loop_s=args.loop_s, warmup_bars=args.warmup_bars,
            paper_balance=env.paper_balance, state_file=env.data_dir / f"kernel_state_{env.mode}.json",
            version=__version__, kernel_mode=env.kernel_mode, risk_overrides=overrides, mid_exits=env.mid_exits,
        )  # fmt: skip
        engine = UnifiedEngine(
            settings, hub, strategy, risk, db, meta, alert=alerter, notifier=notifier, execution=execution,
        )  # fmt: skip
        venue_call(url, "start-up: watchlist", engine.startup)
        wanted = list(symbols or ()) or engine.watchlist
        if execution is not None and not _preflight(env, execution, strategy, wanted, db):
            return EXIT_PREFLIGHT
        _install_signals(engine, args.stop_timeout_s)
        log.info(
            "ai-quant %s %s daemon on %s: db %s, lock %s, sidecar %s",
            __version__, env.mode, url, env.db_path, env.lock_path, link.summary,
        )  # fmt: skip
        engine.run(max_loops=args.max_loops)
        notifier.stopping()
        log.info("stopped after %d loops (%d errors)", engine.loops, engine.errors)
        return 0
    finally:
        if execution is not None:
            execution.close()
            execution.trader.oms.close()
        if db is not None:
            db.close()
        alerter.close(timeout_s=3.0)
        if db_lock is not None:
            db_lock.release()
        lock.release()


def _live_execution(env: Any, args: argparse.Namespace, url: str, alert: Any, db: Any, meter: Any) -> Any:
    """The dry_live/live backend: wallet, OMS, executor, trader; reconciled before the first loop.
    ``--crash-at`` (the crash harness) installs its hook once, in the OMS: the broker adapter, the
    trader and the loop call the OMS's; the executor (exchange/, below the OMS) gets it too."""
    from engine.live_gates import evaluate_gates
    from engine.oms import CrashPoints, LiveOms, no_crash
    from engine.secrets import SecretError, load_wallet_secrets, wallet_from
    from exchange.executor import HyperliquidExecutor, MonotonicNonce
    from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
    from exchange.venue import ExecutorError
    from exchange.venue_errors import classify
    from live.execution import LiveExecution
    from live.trader import LiveTrader, TraderConfig

    t_start = time.perf_counter() - process_age_s()
    want_live = env.mode == "live"
    if want_live and not evaluate_gates(os.environ, want_live=True).live_orders:
        raise Refused("live gates closed")  # checked in main(); here for callers that skip it
    try:
        secrets = load_wallet_secrets()
        wallet = wallet_from(secrets.key)
    except SecretError as exc:
        raise Refused(f"AI_QUANT_MODE={env.mode} needs the wallet: {exc}") from None
    crash: Any = no_crash
    if args.crash_at:
        point, _, n = str(args.crash_at).partition(":")
        crash = CrashPoints(point, int(n or 1))
    oms_path = args.oms_db or env.db_path.parent / f"oms_{env.mode}.db"
    oms = LiveOms(oms_path, client_ids=HYPERLIQUID_CLIENT_IDS, alert=alert, crash=crash)
    try:
        ex = venue_call(
            url, "start-up: account",
            lambda: HyperliquidExecutor(
                wallet, url, MonotonicNonce(oms), account_address=secrets.account_address, crash_hook=crash
            ),
        )  # fmt: skip
    except VenueDown:
        oms.close()
        raise
    except ExecutorError as exc:
        oms.close()
        raise Refused(f"venue at {url} not usable: {exc}") from None
    meter.attach(ex.info)
    cfg = TraderConfig(
        base_url=url, db_path=oms_path, want_live=want_live, reconcile_every_s=args.reconcile_s,
        dead_man_ms=int(args.dead_man_s * 1000), use_ws=not args.no_user_stream, min_gap_s=0.0,
        sidecar_sock=env.ws_sidecar_sock,
    )  # fmt: skip
    trader = LiveTrader(cfg, ex, oms, alert=alert)

    def reconciled() -> Any:
        trader.shutdown()  # a start-up retried after a 429 opens its user stream afresh
        return trader.startup(t_process_start=t_start)

    try:
        rep = venue_call(url, "start-up: reconcile", reconciled)
    except (VenueDown, ExecutorError) as exc:
        trader.shutdown()
        oms.close()
        if isinstance(exc, VenueDown):
            raise
        raise VenueDown(classify(exc, url), "start-up: reconcile") from None
    ms = trader.restart_to_reconciled_ms or 0.0
    db.audit(
        "LIVE_RECONCILED",
        level="INFO" if not rep.entries_blocked else "WARNING",
        data={"mode": trader.gates.mode, "oms": str(oms_path), "account": ex.address,
              "restart_to_reconciled_ms": round(ms, 1), "fills_new": rep.fills_new,
              "intents_resolved": rep.intents_resolved, "mismatches": rep.mismatches,
              "foreign_positions": rep.foreign_positions, "entries_blocked": rep.entries_blocked},
    )  # fmt: skip
    log.info("restart_to_reconciled_ms=%.0f (since process start), oms %s", ms, oms_path)
    return LiveExecution(trader, mode=env.mode, recorded=_recorded_in(db), alert=alert)


def _preflight(env: Any, execution: Any, strategy: Any, watchlist: list[str], db: Any) -> bool:
    """Run the pre-flight check (after the start-up reconcile); False: live must not trade.

    Each problem is one line in the log and the audit trail; live prints them and refuses, dry_live
    (which sends nothing) carries on with the warnings.
    """
    from live.preflight import check, gather_venue, oms_facts, trade_sections

    trader = execution.trader
    report = check(
        gather_venue(trader.ex), oms_facts(trader.oms), watchlist,
        trade_sections(strategy, watchlist),
    )  # fmt: skip
    for line in report.symbols:
        log.info("pre-flight: %s", line)
    for p in report.problems:
        log.warning("pre-flight: %s", p.line)
    db.audit(
        "PREFLIGHT", level="INFO" if report.ok else "WARNING",
        data={"mode": env.mode, "ok": report.ok, "problems": [p.line for p in report.problems],
              "signer": trader.ex.signer, "account": trader.ex.address},
    )  # fmt: skip
    if report.ok:
        log.info("pre-flight: no problem (signer %s, account %s)", trader.ex.signer, trader.ex.address)
        return True
    if env.mode != "live":
        return True
    for p in report.problems:
        print(f"ai-quant: pre-flight: {p.line}", file=sys.stderr)
    print(
        f"ai-quant: AI_QUANT_MODE=live refused: the pre-flight check found {len(report.problems)} problem(s); "
        "no order was placed. Fix them (python tools/preflight.py checks again) and start again.",
        file=sys.stderr,
    )
    return False


def risk_overrides(from_env: dict[str, float], args: argparse.Namespace) -> dict[str, float]:
    """The risk limits the daemon runs with: the env file's (AI_QUANT_MAX_DRAWDOWN_PCT, ...), each
    replaced by its command-line flag when that is given (> 0)."""
    flags = {
        "max_drawdown_pct": args.max_drawdown_pct,
        "daily_loss_limit_usd": args.daily_loss_limit_usd,
        "max_notional_per_order_usd": args.max_notional_per_order_usd,
        "max_total_notional_usd": args.max_total_notional_usd,
        "slippage_guard_bps": args.slippage_guard_bps,
        "entries_per_min": args.entries_per_min,
        "entries_per_symbol_per_min": args.entries_per_symbol_per_min,
    }
    return dict(from_env) | {k: float(v) for k, v in flags.items() if v}


def _recorded_in(db: Any) -> Any:
    def recorded(fill_hash: str, fill_tid: int) -> bool:
        row = db.conn.execute(
            "SELECT 1 FROM trades WHERE fill_hash=? AND fill_tid=?", (fill_hash, int(fill_tid))
        ).fetchone()
        return row is not None

    return recorded


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
