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

    python tools/crash_harness.py --iterations 1000 --seed 7            # scripted decisions
    python tools/crash_harness.py --daemon --iterations 100 --seed 7    # the real daemon, kernel decisions

Prints one JSON line with injections, duplicates, lost fills and the seed; exits 1 on any violation.

Two drivers:

* scripted (default): trader processes that are stand-ins for the daemon's order path; decisions
  come from a small deterministic script (open when flat, close when not). Fast (~0.2 s an
  iteration), so 1,000 injections take minutes.
* ``--daemon``: the real ``python -m engine.daemon`` in live mode, trading the Rust kernel's
  decisions on real candles replayed at x300 by the local exchange. Each life is started with
  ``--crash-at POINT:N`` (the N-th time POINT is reached the process SIGKILLs itself; the points of
  the order path plus ``before_loop_commit``/``after_loop_commit`` around the loop's commit of
  booked fills and kernel state); a life that does not reach its point within ``--life-s`` is
  SIGKILLed by the harness at that moment instead. Then a verification run of the daemon
  (``--max-loops 2`` with the kill file at ``halt_all``: it reconciles, books pending fills and
  sends nothing) leaves a quiet state, and the harness checks the invariants above plus: every
  venue fill booked exactly once in ``trades`` and the kernel's positions equal to the venue's.
  The restart-to-reconciled time of every daemon start is collected (the daemon's own measure
  from process start).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sqlite3
import subprocess
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


# ---- the real daemon --------------------------------------------------------------------------

DAEMON_POINTS = (*CRASH_POINTS, "before_loop_commit", "after_loop_commit")
DAEMON_CONFIG = """\
global:
  trade:
    entry_min_confidence: low
    max_open_positions: 3
    enable_ssf_filter: false
    enable_reef_filter: false
  indicators:
    ema_fast_window: 8
    ema_slow_window: 15
  thresholds:
    entry:
      min_adx: 15.0
  engine:
    interval: 5m
    loop_target_s: 0.2
    lookback_bars: 300
"""


class DaemonRig:
    """One live daemon setup (files, environment) against an in-process local exchange."""

    def __init__(self, root: Path, base_url: str, key: str, log: Path) -> None:
        import os

        self.root = root
        self.data = root / "data"
        self.kill_file = root / "kill_switch"
        self.db = self.data / "trading_engine_live.db"
        self.oms = self.data / "oms_live.db"
        self.log = log
        secrets = root / "secrets.json"
        secrets.write_text(json.dumps({"secret_key": key}))
        secrets.chmod(0o600)
        (root / "strategy.yaml").write_text(DAEMON_CONFIG)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AI_QUANT_")}
        self.env.update(
            AI_QUANT_MODE="live", AI_QUANT_LIVE_ENABLE="1", AI_QUANT_LIVE_CONFIRM="I_UNDERSTAND_THIS_CAN_LOSE_MONEY",
            AI_QUANT_SECRETS_PATH=str(secrets), AI_QUANT_DATA_DIR=str(self.data),
            AI_QUANT_CANDLES_DIR=str(root / "no_candles"), AI_QUANT_WS_SIDECAR_SOCK=str(root / "no.sock"),
            AI_QUANT_STRATEGY_YAML=str(root / "strategy.yaml"), AI_QUANT_SYMBOLS=",".join(SYMBOLS),
            AI_QUANT_EXCHANGE_URL=base_url, AI_QUANT_KILL_SWITCH_FILE=str(self.kill_file),
            AI_QUANT_LOG_LEVEL="WARNING",
        )  # fmt: skip

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        base = ["--no-sidecar", "--dead-man-s", "3600", "--no-user-stream", "--reconcile-s", "1"]
        with self.log.open("ab") as fh:
            return subprocess.Popen(
                [sys.executable, "-m", "engine.daemon", *base, *args], cwd=ROOT, env=self.env, stdout=fh,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def reconcile_times_ms(self) -> list[float]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT data_json FROM audit_events WHERE event='LIVE_RECONCILED'").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()
        return [float(json.loads(r[0])["restart_to_reconciled_ms"]) for r in rows]


def _check_daemon(sim: Any, addr: str, rig: DaemonRig) -> dict[str, Any]:
    """The scripted checks on the OMS, plus: venue fills booked once in trades; kernel = venue."""
    c = _check(sim, addr, rig.oms)
    venue_fills: list[dict[str, Any]] = sim.call(lambda v: [dict(f) for f in v.engine.fills.get(addr, [])])
    venue_keys = {(str(f["hash"]), int(f["tid"])) for f in venue_fills}
    conn = sqlite3.connect(f"file:{rig.db}?mode=ro", uri=True, timeout=10)
    try:
        booked = conn.execute("SELECT fill_hash, fill_tid FROM trades WHERE action != 'FUNDING'").fetchall()
        kv = dict(conn.execute("SELECT key, value FROM kv").fetchall())
    finally:
        conn.close()
    booked_keys = {(str(h), int(t)) for h, t in booked}
    c["unbooked"] = len(venue_keys - booked_keys)
    c["double_booked"] = len(booked) - len(booked_keys) + len(booked_keys - venue_keys)
    kernel: dict[str, Decimal] = {}
    for sym, p in json.loads(kv.get("kernel_state", "{}")).get("positions", {}).items():
        q = Decimal(repr(float(p["quantity"])))
        kernel[sym] = q if str(p["side"]).lower() == "long" else -q
    venue_pos: dict[str, Decimal] = sim.call(
        lambda v: {c: Decimal(str(p.szi)) for c, p in v.engine.accounts[addr].positions.items() if p.szi != 0}
    )
    c["kernel_mismatch"] = int(
        set(kernel) != set(venue_pos) or any(abs(kernel[s] - venue_pos[s]) > Decimal("1e-9") for s in kernel)
    )
    return c


def run_daemon(
    iterations: int, seed: int, deadline_s: float | None = None, verbose: bool = False, life_s: float = 20.0
) -> dict[str, Any]:
    """SIGKILL the real live daemon at random points of the order path; check after every restart."""
    from eth_account import Account

    from exchange.sim.harness import SimServer
    from exchange.sim.server import SimConfig

    rng = random.Random(seed)
    cfg = SimConfig(
        clock_mode="realtime", speed=300, data_dir=ROOT.parent / "shared" / "data" / "hyperliquid" / "futures",
        symbols=list(SYMBOLS), rate_limit=0, seed=seed,
    )  # fmt: skip
    key = "0x" + f"{(seed * 104729 + 0xDAE40) % (2**255):064x}"
    addr = Account.from_key(key).address.lower()
    stats: dict[str, Any] = {
        "driver": "daemon", "seed": seed, "iterations": 0, "injections": 0, "by_point": {p: 0 for p in DAEMON_POINTS},
        "harness_kills": 0, "duplicates": 0, "lost_fills": 0, "double_counted": 0, "unbooked_fills": 0,
        "double_booked": 0, "position_mismatches": 0, "kernel_mismatches": 0, "recovery_failures": 0,
    }  # fmt: skip
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aiq-crash-daemon-") as tmp, SimServer(cfg) as sim:
        sim.deposit(addr, 100_000)
        rig = DaemonRig(Path(tmp), sim.base_url, key, Path(tmp) / "daemon.log")
        for it in range(iterations):
            if deadline_s is not None and time.monotonic() - t0 > deadline_s:
                break
            rig.kill_file.write_text("clear\n")
            target, countdown = rng.choice(DAEMON_POINTS), rng.randint(1, 3)
            p = rig.spawn("--crash-at", f"{target}:{countdown}")
            try:
                p.wait(life_s)
            except subprocess.TimeoutExpired:
                p.kill()  # the point was not reached in time: a SIGKILL at an arbitrary moment instead
                p.wait(10)
                stats["harness_kills"] += 1
            else:
                if p.returncode == -9:
                    stats["injections"] += 1
                    stats["by_point"][target] += 1
                else:
                    stats["recovery_failures"] += 1
            # Verification restart: reconcile, book what is pending, send nothing (halt_all), stop.
            rig.kill_file.write_text("halt_all\n")
            v = rig.spawn("--max-loops", "2")
            try:
                rc = v.wait(90)
            except subprocess.TimeoutExpired:
                v.kill()
                v.wait(10)
                rc = -1
            if rc != 0:
                stats["recovery_failures"] += 1
            c = _check_daemon(sim, addr, rig)
            stats["duplicates"] = max(stats["duplicates"], c["duplicates"])
            stats["lost_fills"] = max(stats["lost_fills"], c["lost"])
            stats["double_counted"] = max(stats["double_counted"], c["double"])
            stats["unbooked_fills"] = max(stats["unbooked_fills"], c["unbooked"])
            stats["double_booked"] = max(stats["double_booked"], c["double_booked"])
            stats["position_mismatches"] += c["position_mismatch"]
            stats["kernel_mismatches"] += c["kernel_mismatch"]
            stats["iterations"] += 1
            stats.update(venue_orders=c["venue_orders"], venue_fills=c["venue_fills"], intents=c["intents"])
            if verbose:
                print(
                    json.dumps({"it": it, "target": target, "n": countdown, "rc": p.returncode, **c}),
                    flush=True,
                )
        times = sorted(rig.reconcile_times_ms())
        if times:
            stats["restart_to_reconciled_ms"] = {
                "starts": len(times), "median": round(times[len(times) // 2]), "max": round(times[-1]),
            }  # fmt: skip
    stats["seconds"] = round(time.monotonic() - t0, 1)
    stats["ok"] = not any(
        stats[k] for k in ("duplicates", "lost_fills", "double_counted", "unbooked_fills", "double_booked",
                           "position_mismatches", "kernel_mismatches", "recovery_failures")
    )  # fmt: skip
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--deadline-s", type=float, default=None, help="stop early after this many seconds")
    ap.add_argument("--daemon", action="store_true", help="drive the real live daemon (kernel decisions)")
    ap.add_argument("--life-s", type=float, default=20.0, help="--daemon: harness SIGKILL after this long")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.daemon:
        stats = run_daemon(args.iterations, args.seed, args.deadline_s, args.verbose, args.life_s)
    else:
        stats = run(args.iterations, args.seed, args.deadline_s, args.verbose)
    print(json.dumps(stats), flush=True)
    return 0 if stats["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
