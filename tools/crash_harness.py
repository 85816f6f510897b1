"""Crash-injection harness for the live order path.

The local exchange runs in this process. Each iteration forks a trader process (from a clean
forkserver) that runs the real order path (LiveOms -> BrokerAdapter -> HyperliquidExecutor over the
official SDK -> venue, fills back through userFillsByTime) and SIGKILLs itself at a randomly chosen
point: before/after the intent commit, before send, after send (answer not yet recorded), after the
ack, before/after a fill commit. A second process then restarts on the same OMS file, reconciles,
and re-emits the same decisions (as a restarted kernel would). After every restart the harness
checks, against the venue's own records:

* **duplicates**: no intent has more than one order at the venue (orders grouped by cloid);
* **lost fills**: every venue fill of the account is in ``oms_fills``; no fill is counted twice
  (per intent, ``filled_size`` equals the sum of its fills);
* **positions**: OMS positions (sum of fills) equal the venue's positions.

Usage::

    python tools/crash_harness.py --iterations 1000 --seed 7

Prints one JSON line with injections, duplicates, lost fills and the seed; exits 1 on any violation.
The trader processes are stand-ins for the daemon's order path: decisions come from a small
deterministic script (open when flat, close when not), not from the kernel's candles.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CRASH_POINTS = (
    "before_intent_commit",
    "after_intent_commit",
    "before_send",
    "after_send",
    "after_ack",
    "before_fill_commit",
    "after_fill_commit",
)
SYMBOLS = ("ETH", "SOL", "BTC")
QTY = {"ETH": Decimal("0.01"), "SOL": Decimal("0.2"), "BTC": Decimal("0.0002")}
DECISIONS_PER_LIFE = 3
REPLAY_START = 1_743_508_800_000


def _trader_life(
    base_url: str, key: str, db: str, decisions: list[int], target: str | None, countdown: int
) -> None:
    """One trader process: start, reconcile, act on the decisions, reconcile. May SIGKILL itself."""
    from eth_account import Account

    from engine.oms import CrashPoints, LiveOms
    from engine.oms_reconciler import OmsReconciler
    from exchange.executor import HyperliquidExecutor, MonotonicNonce
    from strategy.broker_adapter import BrokerAdapter, OrderIntent

    crash = CrashPoints(target, countdown)
    oms = LiveOms(Path(db), crash=crash, alert=lambda k, m: None)
    ex = HyperliquidExecutor(Account.from_key(key), base_url, MonotonicNonce(oms), crash_hook=crash)
    ad = BrokerAdapter(
        oms, ex, live=True, min_gap_s=0, retry_delay_s=0.01, crash=crash, alert=lambda k, m: None
    )
    rec = OmsReconciler(oms, ex, ad, dry_run=False, alert=lambda k, m: None)
    rec.reconcile()
    for ts in decisions:
        sym = SYMBOLS[ts % len(SYMBOLS)]
        pos = oms.positions().get(sym, Decimal(0))
        if pos == 0:
            oi = OrderIntent(sym, "open", "long", QTY[sym], ts)
        else:
            oi = OrderIntent(sym, "close", "short" if pos > 0 else "long", abs(pos), ts)
        ad.submit(oi)
        rec.sync_fills()
    rec.reconcile()
    oms.close()


def _check(sim: Any, addr: str, db: Path) -> dict[str, Any]:
    venue_orders: list[tuple[str | None, int]] = sim.call(
        lambda v: [(o.cloid, o.oid) for o in v.engine.orders.values() if o.user == addr]
    )
    venue_fills: list[dict[str, Any]] = sim.call(lambda v: [dict(f) for f in v.engine.fills.get(addr, [])])
    by_cloid: dict[str, int] = {}
    for cloid, _oid in venue_orders:
        if cloid:
            by_cloid[cloid] = by_cloid.get(cloid, 0) + 1
    dup_orders = sum(n - 1 for n in by_cloid.values() if n > 1)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ours = {(h, int(t)) for h, t in conn.execute("SELECT fill_hash, fill_tid FROM oms_fills")}
        n_rows = conn.execute("SELECT COUNT(*) FROM oms_fills").fetchone()[0]
        per_intent = conn.execute(
            "SELECT i.intent_id, i.filled_size, COALESCE((SELECT GROUP_CONCAT(size, ' ') FROM oms_fills f "
            "WHERE f.intent_id=i.intent_id), '') FROM oms_intents i"
        ).fetchall()
        pos: dict[str, Decimal] = {}
        for sym, side, size in conn.execute("SELECT symbol, side, size FROM oms_fills"):
            pos[sym] = pos.get(sym, Decimal(0)) + (Decimal(size) if side == "BUY" else -Decimal(size))
        intents = conn.execute("SELECT COUNT(*) FROM oms_intents").fetchone()[0]
    finally:
        conn.close()
    venue_keys = {(str(f["hash"]), int(f["tid"])) for f in venue_fills}
    lost = len(venue_keys - ours)
    double = n_rows - len(ours)
    for _iid, filled, sizes in per_intent:
        total = sum((Decimal(s) for s in sizes.split()), Decimal(0))
        if total != Decimal(filled):
            double += 1
    venue_pos: dict[str, Decimal] = sim.call(
        lambda v: {c: Decimal(str(p.szi)) for c, p in v.engine.accounts[addr].positions.items() if p.szi != 0}
    )
    ours_pos = {s: v for s, v in pos.items() if v != 0}
    return {
        "duplicates": dup_orders,
        "lost": lost,
        "double": double,
        "position_mismatch": int(ours_pos != venue_pos),
        "venue_orders": len(venue_orders),
        "venue_fills": len(venue_fills),
        "intents": intents,
    }


def run(iterations: int, seed: int, deadline_s: float | None = None, verbose: bool = False) -> dict[str, Any]:
    from eth_account import Account

    from exchange.sim.data import DAY_MS
    from exchange.sim.harness import SimServer
    from exchange.sim.server import SimConfig

    rng = random.Random(seed)
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    cfg = SimConfig(
        clock_mode="stepped",
        data_dir=ROOT.parent / "shared" / "data" / "hyperliquid" / "futures",
        start=REPLAY_START,
        sim_start=today + REPLAY_START % DAY_MS,
        rate_limit=0,
        seed=seed,
    )
    key = "0x" + f"{(seed * 7919 + 0xC0FFEE) % (2**255):064x}"
    addr = Account.from_key(key).address.lower()
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "engine.oms",
            "engine.oms_reconciler",
            "exchange.executor",
            "strategy.broker_adapter",
            "hyperliquid.exchange",
        ]
    )
    stats: dict[str, Any] = {
        "seed": seed,
        "iterations": 0,
        "injections": 0,
        "not_hit": 0,
        "duplicates": 0,
        "lost_fills": 0,
        "double_counted": 0,
        "position_mismatches": 0,
        "recovery_failures": 0,
        "by_point": {p: 0 for p in CRASH_POINTS},
    }
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aiq-crash-") as tmp, SimServer(cfg) as sim:
        db = Path(tmp) / "live.db"
        sim.deposit(addr, 1_000_000)
        for it in range(iterations):
            if deadline_s is not None and time.monotonic() - t0 > deadline_s:
                break
            target = rng.choice(CRASH_POINTS)
            countdown = rng.randint(1, 3)
            decisions = [it * 10 + j for j in range(DECISIONS_PER_LIFE)]
            p = ctx.Process(
                target=_trader_life, args=(sim.base_url, key, str(db), decisions, target, countdown)
            )
            p.start()
            p.join(60)
            if p.is_alive():
                p.kill()
                p.join()
            killed = p.exitcode == -9
            stats["injections"] += int(killed)
            stats["not_hit"] += int(not killed)
            if killed:
                stats["by_point"][target] += 1
            elif p.exitcode != 0:
                stats["recovery_failures"] += 1
            # Restart: reconcile and re-emit the same decisions (as a restarted kernel would).
            r = ctx.Process(target=_trader_life, args=(sim.base_url, key, str(db), decisions, None, 0))
            r.start()
            r.join(60)
            if r.exitcode != 0:
                stats["recovery_failures"] += 1
            c = _check(sim, addr, db)
            stats["duplicates"] += c["duplicates"] - stats.get("_dup_seen", 0)
            stats["_dup_seen"] = c["duplicates"]
            stats["lost_fills"] = max(stats["lost_fills"], c["lost"])
            stats["double_counted"] = max(stats["double_counted"], c["double"])
            stats["position_mismatches"] += c["position_mismatch"]
            stats["iterations"] += 1
            stats["venue_orders"] = c["venue_orders"]
            stats["venue_fills"] = c["venue_fills"]
            stats["intents"] = c["intents"]
            if verbose:
                print(json.dumps({"it": it, "target": target, "killed": killed, **c}), flush=True)
            sim.advance(1000)
    stats.pop("_dup_seen", None)
    stats["seconds"] = round(time.monotonic() - t0, 1)
    stats["ok"] = not (
        stats["duplicates"]
        or stats["lost_fills"]
        or stats["double_counted"]
        or stats["position_mismatches"]
        or stats["recovery_failures"]
    )
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--deadline-s", type=float, default=None, help="stop early after this many seconds")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    stats = run(args.iterations, args.seed, args.deadline_s, args.verbose)
    print(json.dumps(stats), flush=True)
    return 0 if stats["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
