#!/usr/bin/env python3
"""Open, close or cancel by hand through the live OMS (recorded as manual intents, idempotent).

    python tools/manual_trade.py open --id fix-eth-1 --symbol ETH --side long --size 0.5
    python tools/manual_trade.py close --id fix-eth-2 --symbol ETH            # whole position
    python tools/manual_trade.py cancel --symbol ETH                          # every resting ETH order
    python tools/manual_trade.py release --symbol ETH                         # hand ETH to the strategy
    python tools/manual_trade.py list

A position you open is yours: ``open`` marks the coin as the operator's in the OMS before the
order is sent, and the daemon then sends nothing for that coin (no entries, adds or exits) while
still counting the position in its risk limits; the monitor shows it as ``operator``. ``close``
hands the coin back once it is flat; ``release`` hands it back as it is (the strategy then manages
whatever is open). The venue holds one net position per coin: the whole coin is marked.

Orders are IOC at the mid moved by ``--slippage`` against you, sent through the OMS exactly like
the daemon's (``strategy.broker_adapter``): the intent row and its cloid are committed before the
send. ``--id`` names the operator's decision: running the same command with the same ``--id``
again finds the recorded intent (and resolves it against the venue if its outcome was unknown)
and sends nothing. Manual intents have ``kernel_intent_id = 0`` and reason ``manual:<id>``.

The kill switch applies as to every sender (engine.risk.order_allowed): with ``close_only`` or
``halt_all`` in the kill file (or AI_QUANT_KILL_SWITCH) ``open`` is refused; ``close`` and
``cancel`` reduce risk and are sent (the report says so); the hard kill refuses everything.
The live gates apply (``AI_QUANT_LIVE_ENABLE=1``, ``AI_QUANT_LIVE_CONFIRM``, hard kill off);
``--dry-run`` records nothing and sends nothing (it prints the order). The wallet comes from the
secrets file (``AI_QUANT_SECRETS_PATH``), the OMS DB is the live daemon's (``oms_live.db`` next to
the trading DB; ``--db`` for another). Exit status: 0 done (or already done), 1 the venue
rejected it or it did not fill, 2 bad input, closed gates or a kill switch that refuses it.
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.common import EXIT_FAILED, EXIT_OK, OpsError, check_kill, doc_parser, kill_status, report_main

PROG = "manual_trade.py"


def _decimal(text: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not d.is_finite() or d <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return d


def build_parser() -> argparse.ArgumentParser:
    p = doc_parser(PROG, __doc__)
    p.add_argument("--url", help="venue URL (default AI_QUANT_EXCHANGE_URL)")
    p.add_argument(
        "--db", type=Path, help="live OMS DB (default oms_live.db next to the trading DB, as the daemon)"
    )
    p.add_argument("--kill-file", type=Path, help="kill file (default AI_QUANT_KILL_SWITCH_FILE)")
    p.add_argument("--slippage", type=_decimal, default=Decimal("0.01"), help="IOC limit vs mid (0.01 = 1%%)")
    p.add_argument("--dry-run", action="store_true", help="print the order; record and send nothing")
    sub = p.add_subparsers(dest="action", required=True)
    o = sub.add_parser("open", help="open or add to a position (IOC)")
    o.add_argument("--id", required=True, help="your name for this order (idempotency key)")
    o.add_argument("--symbol", required=True)
    o.add_argument("--side", choices=("long", "short"), required=True)
    o.add_argument("--size", type=_decimal, required=True, help="size in coins (rounded down to the lot)")
    c = sub.add_parser("close", help="reduce-only close (the whole position unless --size)")
    c.add_argument("--id", required=True)
    c.add_argument("--symbol", required=True)
    c.add_argument("--size", type=_decimal)
    x = sub.add_parser("cancel", help="cancel resting orders (all, of --symbol, or one --oid/--cloid)")
    x.add_argument("--symbol")
    x.add_argument("--oid", type=int)
    x.add_argument("--cloid")
    r = sub.add_parser("release", help="hand the operator's coin back to the strategy (sends nothing)")
    r.add_argument("--symbol", required=True)
    sub.add_parser("list", help="manual intents, the operator's coins and the venue's positions")
    return p


#: what each action does to risk (engine.risk.order_allowed asks this)
REDUCES_RISK = {"open": False, "close": True, "cancel": True}


def run(a: argparse.Namespace) -> tuple[dict[str, object], int]:
    from ops.live import (
        cancel_orders,
        default_oms_db,
        gate_problems,
        manual_order,
        manual_ts,
        open_session,
        release_if_flat,
        sync_fills,
        venue_positions,
    )

    from engine.env import EnvError, read_env
    from engine.operator_positions import operator_symbols, release

    try:
        env = read_env({**os.environ, "AI_QUANT_MODE": "live"})
    except EnvError as exc:
        raise OpsError(str(exc)) from None
    url = (a.url or env.exchange_url).rstrip("/")
    db = a.db or default_oms_db(env)
    if a.action in ("open", "close"):
        manual_ts(a.id)  # validates --id before anything else
    kill = kill_status(env, a.kill_file or env.kill_switch_file)
    what = {"open": "open", "close": "reduce-only close", "cancel": "cancel"}.get(a.action, "")
    note = check_kill(kill, reduces_risk=REDUCES_RISK[a.action], what=what) if what else ""
    if a.dry_run:
        order = {k: str(v) for k, v in vars(a).items() if v is not None and k != "dry_run"}
        return {
            **order,
            "dry_run": True,
            "kill": kill.label(),
            "would": "record and send nothing (dry run)",
        }, EXIT_OK
    if a.action not in ("list", "release"):
        problems = gate_problems(os.environ)
        if problems:
            raise OpsError("live gates closed, nothing sent: " + "; ".join(problems))
    s = open_session(url, db, slippage=a.slippage, retries=2, send=True)
    try:
        if a.action == "list":
            manual = [i for i in s.oms.intents() if i.kernel_intent_id == 0]
            return {
                "intents": [{"intent_id": i.intent_id, "symbol": i.symbol, "action": i.action, "side": i.side,
                             "size": str(i.size), "filled": str(i.filled_size), "status": str(i.status)}
                            for i in manual],
                "operator_positions": operator_symbols(s.oms),
                "positions": {k: str(v) for k, v in venue_positions(s).items()},
            }, EXIT_OK  # fmt: skip
        if a.action == "release":
            held = venue_positions(s).get(a.symbol, Decimal(0))
            if not release(s.oms, a.symbol):
                raise OpsError(f"{a.symbol} is not marked as the operator's: nothing to release")
            s.oms.event(
                "OPERATOR_RELEASE", symbol=a.symbol, detail={"tool": "manual_trade", "position": str(held)}
            )
            return {"released": a.symbol, "position": str(held),
                    "owner": "strategy: the daemon now manages this coin (its exits and entries)"}, EXIT_OK  # fmt: skip
        if a.action == "cancel":
            if a.symbol:
                s.ex.asset(a.symbol)
            done = cancel_orders(s, a.symbol, a.oid, a.cloid)
            return {"cancelled": done, "kill": kill.label(), **({"note": note} if note else {})}, EXIT_OK
        from exchange.executor import ExecutorError

        try:
            out, marked = manual_order(s, a.action, a.symbol, getattr(a, "side", None), a.size, a.id)
        except ExecutorError as exc:
            raise OpsError(str(exc)) from None
        if not out.deduped:
            sync_fills(s)
        intent = s.oms.intent(out.intent_id) if out.intent_id else None
        status = str(intent.status if intent else out.status)
        after = venue_positions(s).get(a.symbol, Decimal(0))
        if a.action == "open" and marked and after == 0 and status in ("REJECTED", "CANCELLED", "None"):
            release(s.oms, a.symbol)  # nothing opened: the coin stays the strategy's
            marked = False
        released = release_if_flat(s, {a.symbol}) if a.action == "close" else []
        owned = a.symbol in operator_symbols(s.oms)
        report = {
            "action": a.action, "id": a.id, "symbol": a.symbol, "intent_id": out.intent_id,
            "status": status, "deduped": out.deduped, "detail": out.detail,
            "filled": str(intent.filled_size) if intent else "0",
            "avg_px": str(out.venue.avg_px) if out.venue and out.venue.avg_px is not None else None,
            "position_after": str(after),
            "kill": kill.label(),
            "owner": "operator" if owned else "strategy",
            "owner_note": (
                f"{a.symbol} is the operator's: the daemon sends nothing for it until `manual_trade.py close` "
                f"flattens it or `manual_trade.py release --symbol {a.symbol}`" if owned
                else (f"{a.symbol} is flat and handed back to the strategy" if released
                      else f"{a.symbol} is the strategy's: the daemon manages it")
            ),
        }  # fmt: skip
        if note:
            report["note"] = note
        ok = status in ("FILLED", "PARTIAL", "SENT")
        return report, EXIT_OK if ok else EXIT_FAILED
    finally:
        s.close()


def main(argv: list[str] | None = None) -> int:
    return report_main(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
