#!/usr/bin/env python3
"""Emergency flatten: engage close_only through the kill file, then close every position.

    python tools/flat_now.py --mode paper --dry-run
    python tools/flat_now.py --mode paper
    python tools/flat_now.py --mode live --symbol BTC

1. ``close_only`` is written to the kill file (``AI_QUANT_KILL_SWITCH_FILE`` or ``--kill-file``):
   a running daemon stops opening positions at its next loop. It stays engaged; release it
   with ``echo clear > KILL_FILE`` when you are ready to trade again. ``halt_all`` is never
   weakened: under ``halt_all`` the daemon sends nothing, and this tool's reduce-only closes are
   the operator's, which ``halt_all`` lets through (engine.risk.order_allowed; the report's
   ``note`` says so). The hard kill (``AI_QUANT_HARD_KILL_SWITCH``) refuses it.
2. Paper: the positions committed in the trading DB are closed the way the daemon closes them
   (paper fill at the venue's quote, kernel ``apply_fill``, trades, decision rows, positions and
   both states in one transaction, ``kernel_state_paper.json`` rewritten). The paper daemon must
   be stopped first (the tool takes its lock; while it runs the tool exits 3 and says so):
   close_only alone would not flatten, it only blocks entries.
3. Live: every venue position is closed with reduce-only IOC orders through the OMS (the intent
   is recorded before it is sent; see docs/live-trading.md), re-sent for any remainder up to
   ``--attempts`` rounds. The live gates apply (``AI_QUANT_LIVE_ENABLE=1``, the confirmation
   phrase, hard kill off); a running live daemon may keep running (it reconciles the fills).
   A coin the operator owned (``manual_trade.py open``) is handed back to the strategy once flat.

``--dry-run`` changes nothing: it does not touch the kill file (``kill_now`` is the state in force,
``would_engage`` what a real run writes) and sends nothing; it lists the positions that would be
closed, paper ones with the venue's mid now and the PnL at that mid (before fees; the real close
fills at the touch or the mid with slippage).
Output: one JSON report on stdout. Exit status: 0 flat, 1 a position is still open (or the venue
failed), 2 bad input, closed live gates or the hard kill, 3 the paper daemon holds its lock.
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import (
    EXIT_FAILED,
    EXIT_OK,
    OpsError,
    check_kill,
    doc_parser,
    engage_kill_file,
    kill_status,
    kill_word_after,
    report_main,
)

PROG = "flat_now.py"


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(PROG, __doc__)
    p.add_argument("--mode", choices=("paper", "live"), required=True)
    p.add_argument("--kill-file", type=Path, help="kill file (default AI_QUANT_KILL_SWITCH_FILE)")
    p.add_argument("--url", help="venue URL (default AI_QUANT_EXCHANGE_URL)")
    p.add_argument("--config", type=Path, help="strategy YAML, paper (default AI_QUANT_STRATEGY_YAML)")
    p.add_argument(
        "--db", type=Path, help="live OMS DB (default oms_live.db next to the trading DB, as the daemon)"
    )
    p.add_argument("--symbol", action="append", default=[], help="live: only this symbol (repeatable)")
    p.add_argument("--attempts", type=int, default=5, help="live: IOC rounds before giving up (default 5)")
    p.add_argument(
        "--slippage", type=Decimal, default=Decimal("0.01"), help="live: IOC limit vs mid (0.01 = 1%%)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="show what would be closed; change and send nothing"
    )
    return p


def run(a: argparse.Namespace) -> tuple[dict[str, object], int]:
    from engine.env import EnvError, read_env

    try:
        env = read_env({**os.environ, "AI_QUANT_MODE": a.mode})
    except EnvError as exc:
        raise OpsError(str(exc)) from None
    url = (a.url or env.exchange_url).rstrip("/")
    kill_file = a.kill_file or env.kill_switch_file
    report: dict[str, object] = {"mode": a.mode, "dry_run": a.dry_run, "kill_file": str(kill_file)}
    kill = kill_status(env, kill_file)
    note = check_kill(kill, reduces_risk=True, what="flatten")
    if note:
        report["note"] = note
    if a.dry_run:
        report["kill_now"] = kill.label()
        held = kill_file.read_text(errors="replace").strip() if kill_file and kill_file.is_file() else ""
        report["would_engage"] = kill_word_after(held, "close_only")
    if a.mode == "live":
        from ops.live import (
            default_oms_db,
            flatten_live,
            gate_problems,
            open_session,
            release_if_flat,
            venue_positions,
        )

        problems = gate_problems(os.environ)
        if problems and not a.dry_run:
            raise OpsError("live gates closed, nothing sent: " + "; ".join(problems))
        if a.attempts < 1:
            raise OpsError("--attempts must be at least 1")
        if not a.dry_run:
            report["kill_before"] = engage_kill_file(kill_file) or "none"
        s = open_session(url, a.db or default_oms_db(env), slippage=a.slippage, retries=2, send=not a.dry_run)
        try:
            if a.dry_run:
                pos = venue_positions(s)
                report["would_close"] = {k: str(v) for k, v in pos.items() if not a.symbol or k in a.symbol}
                return report, EXIT_OK
            res = flatten_live(s, attempts=a.attempts, symbols=set(a.symbol) or None)
            report["released_to_strategy"] = release_if_flat(s, {r.symbol for r in res})
        finally:
            s.close()
        report["positions"] = [
            {"symbol": r.symbol, "side": r.side, "size_before": str(r.size_before), "closed": str(r.closed),
             "remaining": str(r.remaining), "status": r.status, "attempts": r.attempts, "intents": r.intents,
             "outcomes": r.statuses}
            for r in res
        ]  # fmt: skip
        return report, EXIT_OK if all(r.remaining == 0 for r in res) else EXIT_FAILED
    from ops.paper_flatten import flatten_paper, open_paper_positions

    if a.symbol:
        raise OpsError("--symbol is for live mode; paper flattens every position")
    if not a.dry_run:
        report["kill_before"] = engage_kill_file(kill_file) or "none"
    closed = flatten_paper(env, url, a.config or env.strategy_yaml, dry_run=a.dry_run)
    report["positions"] = [c.__dict__ for c in closed]
    left = open_paper_positions(env) if not a.dry_run else {}
    report["still_open"] = sorted(left)
    return report, EXIT_OK if not left else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    return report_main(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
