#!/usr/bin/env python3
"""Backtest/live divergence: what the daemon decided and filled against a replay of the same candles.

    python tools/reality_check.py --symbol BTC --hours 24
    python tools/reality_check.py --symbol ETH --hours 6 --candles-db ~/.local/share/ai-quant/candles_dbs \
        --output divergence.json

Works for every mode (``--mode``, default ``AI_QUANT_MODE``): paper reads ``trading_engine.db``,
live and dry_live ``trading_engine_live.db`` (``AI_QUANT_DB_PATH`` or ``--db`` name another), read-only,
so the daemon can keep running. It rebuilds the daemon's warm-up kernel from the same bars, replays
the daemon's watchlist from its first live bar with ``ai-quant-bt replay --init-state`` (with the
config merged as the daemon merges it: the ``live`` overlay in live and dry_live, ``modes.<name>``
for ``AI_QUANT_STRATEGY_MODE``) and compares one symbol's entries and exits over the last
``--hours`` of the daemon's time. Candles come from ``--candles-db`` (a file or a partition
directory) or, by default, from the venue (``AI_QUANT_EXCHANGE_URL``), which is what the daemon read.

The report (stdout, and ``--output``): the inputs (config and its ``config_id``, the daemon's
``daemon_config_id``, mode, watchlist), matched actions (time, price and size differences), actions
the replay made that the daemon did not (``missing_in_daemon``) and the other way round
(``extra_in_daemon``), each with its explanation from the daemon's records when there is one (a
blocked or rejected intent in ``decision_events``, what dry_live would have sent, a manual order:
``flat_now.py``, ``manual_trade.py``, a venue fill the live daemon adopted). The full method is in
tools/ops/reality.py.

With ``engine.entry_interval`` / ``exit_interval`` (the daemon's sub-bar mode) the replay runs the
same sub-bars (``--entry-interval`` / ``--exit-interval``, candles from the same source) and the
daemon's actions after the last replayed main-bar close are left out (the replay stops there).

Exit status: 0 no unexplained divergence, 1 unexplained divergence (or the replay failed),
2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import EXIT_FAILED, EXIT_OK, OpsError, bt_binary, doc_parser, fail, write_atomic

PROG = "reality_check.py"
HOUR_MS = 3_600_000


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(PROG, __doc__)
    p.add_argument("--symbol", required=True)
    p.add_argument("--hours", type=float, required=True, help="window ending at the daemon's last bar")
    p.add_argument(
        "--mode", choices=("paper", "dry_live", "live"), help="the daemon's mode (default AI_QUANT_MODE)"
    )
    p.add_argument("--db", type=Path, help="the daemon's trading DB (default AI_QUANT_DB_PATH, by mode)")
    p.add_argument(
        "--config", type=Path, help="strategy YAML the daemon ran (default AI_QUANT_STRATEGY_YAML)"
    )
    p.add_argument(
        "--candles-db", type=Path, help="candle DB file or partition dir (default: fetch from the venue)"
    )
    p.add_argument("--funding-db", type=Path, help="funding DB for the replay (default: no funding)")
    p.add_argument("--url", help="venue URL (default AI_QUANT_EXCHANGE_URL)")
    p.add_argument(
        "--warmup-bars", type=int, help="the daemon's warm-up (default the config's engine.lookback_bars)"
    )
    p.add_argument(
        "--initial-balance",
        type=float,
        help="start balance (paper: AI_QUANT_PAPER_BALANCE; live: the equity of the daemon's first heartbeat)",
    )
    p.add_argument(
        "--tolerance-bars", type=int, default=2, help="time tolerance for a match (default 2 bars)"
    )
    p.add_argument("--bt", type=Path, help="ai-quant-bt binary (default AI_QUANT_BT, else target/release)")
    p.add_argument("--output", type=Path, help="also write the full JSON report here")
    return p


def run(a: argparse.Namespace) -> tuple[dict[str, object], int]:
    from ops.reality import Report, compare, fetch_candles, read_bars, read_daemon, replay_actions, warm_state

    from engine.config import ConfigError
    from engine.env import EnvError, read_env
    from engine.strategy_manager import StrategyManager
    from strategy.kernel_orchestrator import bt_runtime

    try:
        env = read_env({**os.environ, **({"AI_QUANT_MODE": a.mode} if a.mode else {})})
    except EnvError as exc:
        raise OpsError(str(exc)) from None
    if a.hours <= 0:
        raise OpsError("--hours must be positive")
    bt = bt_binary(a.bt)
    run_ = read_daemon(a.db or env.db_path)
    if a.symbol not in run_.symbols:
        raise OpsError(f"{a.symbol} is not in the daemon's watchlist ({', '.join(run_.symbols)})")
    config = a.config or env.strategy_yaml
    try:
        strategy = StrategyManager(config, mode=env.mode, strategy_mode=env.strategy_mode)
    except (ConfigError, FileNotFoundError) as exc:
        raise OpsError(f"config {config}: {exc}") from None
    interval = strategy.interval
    step = int(bt_runtime.intervals()[interval])
    eng = strategy.model().engine
    subs = {"entry": eng.entry_interval, "exit": eng.exit_interval}
    sub_ivs = sorted({iv for iv in subs.values() if iv})
    warmup = a.warmup_bars or eng.lookback_bars
    first = {s: run_.last_bar_t[s] - (run_.bars_fed[s] - 1) * step for s in run_.symbols}
    start, end = min(first.values()), max(run_.last_bar_t.values())
    live_from = start + warmup * step
    balance = a.initial_balance or (env.paper_balance if env.mode == "paper" else run_.first_equity)
    if not balance:
        raise OpsError("no start equity in the daemon's heartbeats (pruned?): pass --initial-balance")
    report = Report(
        symbol=a.symbol,
        window={"from_ms": max(live_from, end + step - int(a.hours * HOUR_MS)), "to_ms": end + step,
                "hours": a.hours, "first_bar_ms": start, "first_live_bar_ms": live_from, "last_bar_ms": end},
        inputs={"mode": env.mode, "db": str(run_.db), "config": str(config), "config_id": strategy.config_id,
                "daemon_config_id": run_.config_id, "watchlist": run_.symbols, "interval": interval,
                "warmup_bars": warmup, "initial_balance": balance,
                **({"entry_interval": subs["entry"], "exit_interval": subs["exit"]} if sub_ivs else {})},
    )  # fmt: skip
    if run_.config_id and run_.config_id != strategy.config_id:
        report.notes.append(
            f"the config ({strategy.config_id[:12]}) differs from the one the daemon ran last "
            f"({run_.config_id[:12]}): check --config and AI_QUANT_STRATEGY_MODE"
        )
    if run_.restarts:
        report.notes.append(f"the daemon restarted {run_.restarts} time(s): bars that were stale on arrival were "
                            "traded for exits only (see decision_events stale_bar)")  # fmt: skip
    if env.mode == "dry_live":
        report.notes.append("dry_live sends no orders: the replay's actions are compared with what the daemon "
                            "would have sent (decision_events status would)")  # fmt: skip
    if a.funding_db is None:
        report.notes.append("funding is not replayed: sizes can differ slightly with equity")
    if live_from > end:
        raise OpsError(f"the daemon has not traded yet (warm-up of {warmup} bars still covers its last bar)")
    with tempfile.TemporaryDirectory(prefix="reality_check.") as tmp:
        work = Path(tmp)
        candles = a.candles_db or fetch_candles(
            (a.url or env.exchange_url).rstrip("/"),
            run_.symbols,
            interval,
            step,
            start,
            end,
            work / f"candles_{interval}.db",
        )
        sub_args: list[str] = []
        for iv in sub_ivs:
            iv_ms = int(bt_runtime.intervals()[iv])
            db = a.candles_db or fetch_candles(
                (a.url or env.exchange_url).rstrip("/"), run_.symbols, iv, iv_ms, live_from, end + step - iv_ms,
                work / f"candles_{iv}.db",
            )  # fmt: skip
            for k, v in subs.items():
                if v == iv:
                    sub_args += [f"--{k}-interval", iv, f"--{k}-candles-db", str(db)]
        bars = read_bars(candles, run_.symbols, interval, start, live_from - step)
        have = {b.symbol for b in bars}
        if have != set(run_.symbols):
            raise OpsError(
                f"{candles}: no warm-up candles for {sorted(set(run_.symbols) - have)} from {start}"
            )
        state = work / "warm_state.json"
        state.write_text(warm_state(strategy, run_.symbols, bars, step, balance))
        overlay = (
            (["--live"] if env.mode != "paper" else [])
            + (["--strategy-mode", env.strategy_mode] if env.strategy_mode else [])
            + sub_args
        )
        replay = replay_actions(bt, config, candles, interval, run_.symbols, live_from, end, state, balance, work,
                                a.funding_db, overlay)  # fmt: skip
    lo, hi = report.window["from_ms"], report.window["to_ms"]
    tol = a.tolerance_bars * step
    # Sub-bar mode: the daemon's ticks after the last main close are not in the replay.
    upper = hi if sub_ivs else hi + tol
    daemon = [t for t in run_.trades if t.symbol == a.symbol and lo <= t.ts_ms <= upper]
    if sub_ivs:
        report.notes.append(f"sub-bars {subs}: the replay runs them too; daemon actions after {hi} "
                            "(the last replayed main-bar close) are not compared")  # fmt: skip
    mine = [r for r in replay if lo <= r.ts_ms <= hi and r.symbol == a.symbol]
    report.matched, report.missing_in_daemon, report.extra_in_daemon = compare(
        daemon, mine, run_.decisions, a.symbol, tol
    )
    if a.output:
        write_atomic(a.output, report.to_json())
    return json.loads(report.to_json()), EXIT_OK if report.unexplained == 0 else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        out, code = run(a)
    except OpsError as exc:
        return fail(PROG, exc)
    print(json.dumps(out, indent=2, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
