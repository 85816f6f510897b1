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
* ``--daemon``: the real ``python -m daemon`` in live mode, trading the Rust kernel's
  decisions on real candles replayed at x2000 by one local exchange that serves every life. Each
  life is one fresh daemon process started with ``--crash-at POINT:N`` (the N-th time POINT is
  reached the process SIGKILLs itself; the points of the order path plus
  ``before_loop_commit``/``after_loop_commit`` around the loop's commit of booked fills and kernel
  state) and the kill file at ``halt_all``: it recovers (reconciles, books pending fills, sends
  nothing), the harness checks the quiet state after two committed loops (the invariants above
  plus: every venue fill booked exactly once in ``trades`` and the kernel's positions equal to the
  venue's), then clears the kill file and the daemon trades until its point, or the harness
  SIGKILLs it after ``--life-s``. A final start is checked and stopped with SIGTERM. The
  restart-to-reconciled time of every daemon start is collected (the daemon's own measure from
  process start), with the seconds each life took.
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
for _path in (ROOT, ROOT / "tools"):  # the repository's packages; tools/daemon_proc.py
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from daemon_proc import (  # noqa: E402 (after the sys.path lines)
    committed_loops,
    daemon_env,
    read_db,
    spawn_daemon,
    trading_config,
)

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
    from exchange.hl_cloid import HYPERLIQUID_CLIENT_IDS
    from exchange.model import Order
    from strategy.broker_adapter import BrokerAdapter

    # As in the daemon: the OMS holds the crash hook and the adapter calls the OMS's; the executor
    # (exchange/, below the OMS) is handed the OMS's hook.
    oms = LiveOms(
        Path(db),
        client_ids=HYPERLIQUID_CLIENT_IDS,
        crash=CrashPoints(target, countdown),
        alert=lambda k, m: None,
    )
    ex = HyperliquidExecutor(Account.from_key(key), base_url, MonotonicNonce(oms), crash_hook=oms.crash)
    ad = BrokerAdapter(oms, ex, live=True, min_gap_s=0, retry_delay_s=0.01, alert=lambda k, m: None)
    rec = OmsReconciler(oms, ex, ad, dry_run=False, alert=lambda k, m: None)
    rec.reconcile()
    for ts in decisions:
        sym = SYMBOLS[ts % len(SYMBOLS)]
        pos = oms.positions().get(sym, Decimal(0))
        if pos == 0:
            oi = Order(sym, "open", "long", QTY[sym], ts)
        else:
            oi = Order(sym, "close", "short" if pos > 0 else "long", abs(pos), ts)
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
    from engine.oms_store import OmsStore

    store = OmsStore.open_read_only(db)  # read-only, through the OMS's own read methods
    if store is None:
        raise RuntimeError(f"{db} is not an OMS file: the first trader life creates it")
    try:
        ours = store.fill_keys()
        n_rows = store.fill_count()
        # an intent's filled size must equal the sum of its own fills (else one is counted twice)
        per_intent = [
            (i.filled_size, sum((f.size for _, f, _ in store.fills_of_intent(i.intent_id)), Decimal(0)))
            for i in store.intents()
        ]
        ours_pos = store.positions()
    finally:
        store.close()
    intents = len(per_intent)
    venue_keys = {(str(f["hash"]), int(f["tid"])) for f in venue_fills}
    lost = len(venue_keys - ours)
    double = n_rows - len(ours) + sum(1 for filled, total in per_intent if total != filled)
    venue_pos: dict[str, Decimal] = sim.call(
        lambda v: {c: Decimal(str(p.szi)) for c, p in v.engine.accounts[addr].positions.items() if p.szi != 0}
    )
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

    from exchange.sim.config import SimConfig
    from exchange.sim.data import DAY_MS
    from exchange.sim.harness import SimServer

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
DAEMON_CONFIG = trading_config(loop_target_s=0.05)
#: Replay speed of the venue for --daemon: a 5m bar every 0.15 s, so the kernel trades about once
#: a second and a life reaches its crash point in a few seconds. The daemon's loop (10-150 ms on a
#: loaded 2-core box) keeps up; the 38,000 bars after DAEMON_HISTORY_BARS last about 95 minutes.
DAEMON_SPEED = 2000.0
DAEMON_HISTORY_BARS = 500  # lookback_bars above plus a margin


class DaemonRig:
    """One live daemon setup (files, environment) against an in-process local exchange."""

    def __init__(self, root: Path, base_url: str, key: str, log: Path) -> None:
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
        self.env = daemon_env(
            root, base_url, ",".join(SYMBOLS), AI_QUANT_MODE="live", AI_QUANT_LIVE_ENABLE="1",
            AI_QUANT_LIVE_CONFIRM="I_UNDERSTAND_THIS_CAN_LOSE_MONEY", AI_QUANT_SECRETS_PATH=str(secrets),
            AI_QUANT_LOG_LEVEL="WARNING",
        )  # fmt: skip

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        base = ["--no-sidecar", "--dead-man-s", "3600", "--no-user-stream", "--reconcile-s", "1"]
        return spawn_daemon(self.env, self.log, *base, *args)

    def set_kill(self, word: str) -> None:
        """Write the kill file whole (a reader never sees it half-written)."""
        tmp = self.kill_file.with_suffix(".tmp")
        tmp.write_text(word + "\n")
        tmp.replace(self.kill_file)

    def loops(self) -> int:
        """Loops committed to the trading DB so far (0 before the first)."""
        return committed_loops(self.db)

    @staticmethod
    def replay_left_s(sim: Any) -> float:
        """Wall seconds until the venue's replay runs out of candles."""
        left_ms: int = sim.call(lambda v: min(a.bars.t[-1] for a in v.market.assets) - v.clock.now_ms())
        return left_ms / 1000 / float(sim.cfg.speed)

    def snapshot(self, name: str) -> Path:
        """Consistent copies of the daemon's DBs (SQLite backup, the daemon may be running)."""
        out = self.root / name
        out.mkdir(exist_ok=True)
        for db in (self.db, self.oms):
            src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            dst = sqlite3.connect(out / db.name)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        return out

    def reconcile_times_ms(self) -> list[float]:
        rows = read_db(self.db, "SELECT data_json FROM audit_events WHERE event='LIVE_RECONCILED'")
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
    if c["kernel_mismatch"] or c["position_mismatch"]:  # what differs, for the report
        c["kernel_positions"] = {s: str(q) for s, q in kernel.items()}
        c["venue_positions"] = {s: str(q) for s, q in venue_pos.items()}
    return c


#: What a check counts as a violation (each one fails the run).
VIOLATIONS = (
    "duplicates",
    "lost",
    "double",
    "position_mismatch",
    "unbooked",
    "double_booked",
    "kernel_mismatch",
)


def _percentile(xs: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of sorted ``xs``."""
    return xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))]


def run_daemon(
    iterations: int, seed: int, deadline_s: float | None = None, verbose: bool = False, life_s: float = 20.0,
    speed: float = DAEMON_SPEED, quiet_timeout_s: float = 90.0, workdir: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """SIGKILL the real live daemon at random points of the order path; check after every restart.

    One venue serves every life. Life ``i`` is one fresh daemon process, started on the files the
    previous life's SIGKILL left, with ``--crash-at POINT:N`` and the kill file at ``halt_all``:

    1. recovery: it reconciles and books what is pending, sending nothing; the harness waits for two
       committed loops of this process (what ``--max-loops 2`` used to wait for) and checks the
       invariants on that quiet state. A crash point of the loop commit may fire here, in the
       middle of recovery: that is this life's injection, and the next life's start is checked;
    2. trading: the kill file goes to ``clear``; the daemon trades until it reaches POINT for the
       N-th time and SIGKILLs itself, or the harness SIGKILLs it after ``life_s``.

    After the last life a final start (no crash point) recovers, is checked, and stops on SIGTERM.
    The checks compare the whole history (every venue order and fill), so a check skipped after a
    crash during recovery is covered by the next one. ``workdir`` (empty or new) keeps the daemon's
    files and log for a post-mortem; by default they go to a temporary directory.
    """
    import contextlib
    import os
    import signal

    from eth_account import Account

    from exchange.sim.config import SimConfig
    from exchange.sim.data import load_feather_bars
    from exchange.sim.harness import SimServer

    rng = random.Random(seed)
    data_dir = ROOT.parent / "shared" / "data" / "hyperliquid" / "futures"
    # Replay from DAEMON_HISTORY_BARS into the data (the daemon's look-back plus a margin) rather than
    # the venue's default 5,000: a long soak gets the most replay time before the candles run out.
    first = max(load_feather_bars(data_dir, s, "5m").t[0] for s in SYMBOLS)
    cfg = SimConfig(
        clock_mode="realtime", speed=speed, data_dir=data_dir, symbols=list(SYMBOLS), rate_limit=0, seed=seed,
        start=first + DAEMON_HISTORY_BARS * 300_000,
    )  # fmt: skip
    key = "0x" + f"{(seed * 104729 + 0xDAE40) % (2**255):064x}"
    addr = Account.from_key(key).address.lower()
    stats: dict[str, Any] = {
        "driver": "daemon", "seed": seed, "speed": speed, "iterations": 0, "injections": 0,
        "by_point": {p: 0 for p in DAEMON_POINTS}, "in_recovery": 0, "harness_kills": 0, "checks": 0,
        "duplicates": 0, "lost_fills": 0, "double_counted": 0, "unbooked_fills": 0, "double_booked": 0,
        "position_mismatches": 0, "kernel_mismatches": 0, "recovery_failures": 0,
    }  # fmt: skip
    life_secs: list[float] = []
    t0 = time.monotonic()

    def check(tag: str) -> dict[str, Any]:
        c = _check_daemon(sim, addr, rig)
        stats["checks"] += 1
        stats["duplicates"] = max(stats["duplicates"], c["duplicates"])
        stats["lost_fills"] = max(stats["lost_fills"], c["lost"])
        stats["double_counted"] = max(stats["double_counted"], c["double"])
        stats["unbooked_fills"] = max(stats["unbooked_fills"], c["unbooked"])
        stats["double_booked"] = max(stats["double_booked"], c["double_booked"])
        stats["position_mismatches"] += c["position_mismatch"]
        stats["kernel_mismatches"] += c["kernel_mismatch"]
        stats.update(venue_orders=c["venue_orders"], venue_fills=c["venue_fills"], intents=c["intents"])
        if any(c[k] for k in VIOLATIONS):
            snap = rig.snapshot(f"violation-{tag}")
            print(json.dumps({"violation": tag, "snapshot": str(snap), **c}), flush=True)
        return c

    def recover(p: subprocess.Popen[bytes], loops0: int) -> str:
        """Wait (bounded) for two committed loops of ``p``: "quiet", "crashed" (-9) or "failed"."""
        end = time.monotonic() + quiet_timeout_s
        while time.monotonic() < end:
            if p.poll() is not None:
                return "crashed" if p.returncode == -signal.SIGKILL else "failed"
            if rig.loops() >= loops0 + 2:
                return "quiet"
            time.sleep(0.02)
        p.kill()
        p.wait(10)
        return "failed"

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise SystemExit(f"crash_harness: --workdir {workdir} is not empty")
    keep = contextlib.nullcontext(str(workdir)) if workdir is not None else None
    with keep or tempfile.TemporaryDirectory(prefix="aiq-crash-daemon-") as tmp, SimServer(cfg) as sim:
        sim.deposit(addr, 100_000)
        rig = DaemonRig(Path(tmp), sim.base_url, key, Path(tmp) / "daemon.log")
        for it in range(iterations):
            if deadline_s is not None and time.monotonic() - t0 > deadline_s:
                break
            if rig.replay_left_s(sim) < 2 * life_s + quiet_timeout_s:
                stats["stopped"] = "the venue's replay data is used up: run the rest as another part"
                break
            t_life = time.monotonic()
            target, countdown = rng.choice(DAEMON_POINTS), rng.randint(1, 3)
            rig.set_kill("halt_all")
            loops0 = rig.loops()
            p = rig.spawn("--crash-at", f"{target}:{countdown}")
            phase = recover(p, loops0)
            c: dict[str, Any] = {}
            if phase == "quiet":
                c = check(f"life{it}")
                rig.set_kill("clear")
                try:
                    p.wait(life_s)
                except subprocess.TimeoutExpired:
                    p.kill()  # the point was not reached in time: a SIGKILL at an arbitrary moment instead
                    p.wait(10)
                    stats["harness_kills"] += 1
                else:
                    if p.returncode == -signal.SIGKILL:
                        stats["injections"] += 1
                        stats["by_point"][target] += 1
                    else:
                        stats["recovery_failures"] += 1
            elif phase == "crashed":  # the point fired while recovering (a loop commit booking fills)
                stats["injections"] += 1
                stats["in_recovery"] += 1
                stats["by_point"][target] += 1
            else:
                stats["recovery_failures"] += 1
            stats["iterations"] += 1
            life_secs.append(time.monotonic() - t_life)
            if verbose:
                line = {"it": it, "target": target, "n": countdown, "phase": phase, "rc": p.returncode,
                        "s": round(life_secs[-1], 2), **c}  # fmt: skip
                print(json.dumps(line), flush=True)
                if (it + 1) % 50 == 0:
                    progress = {k: v for k, v in stats.items() if k != "by_point"}
                    print(json.dumps({"progress": progress | _summary(rig, life_secs, t0)}), flush=True)
        # The final recovery: no crash point; checked on the quiet state, then a clean stop.
        rig.set_kill("halt_all")
        loops0 = rig.loops()
        p = rig.spawn()
        if recover(p, loops0) == "quiet":
            c = check("final")
            if verbose:
                print(json.dumps({"final": True, **c}), flush=True)
            os.kill(p.pid, signal.SIGTERM)
            try:
                if p.wait(60) != 0:
                    stats["recovery_failures"] += 1
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                stats["recovery_failures"] += 1
        else:
            stats["recovery_failures"] += 1
        stats.update(_summary(rig, life_secs, t0))
    stats["ok"] = not any(
        stats[k] for k in ("duplicates", "lost_fills", "double_counted", "unbooked_fills", "double_booked",
                           "position_mismatches", "kernel_mismatches", "recovery_failures")
    ) and stats["checks"] > 0  # fmt: skip
    return stats


def _summary(rig: DaemonRig, life_secs: list[float], t0: float) -> dict[str, Any]:
    """Wall time, seconds a life (median, max) and restart-to-reconciled over every daemon start."""
    out: dict[str, Any] = {"seconds": round(time.monotonic() - t0, 1)}
    if life_secs:
        ls = sorted(life_secs)
        out["life_s"] = {"median": round(ls[len(ls) // 2], 2), "max": round(ls[-1], 2)}
    times = sorted(rig.reconcile_times_ms())
    if times:
        out["restart_to_reconciled_ms"] = {
            "starts": len(times), "median": round(times[len(times) // 2]), "p99": round(_percentile(times, 0.99)),
            "max": round(times[-1]),
        }  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--deadline-s", type=float, default=None, help="stop early after this many seconds")
    ap.add_argument("--daemon", action="store_true", help="drive the real live daemon (kernel decisions)")
    ap.add_argument("--life-s", type=float, default=20.0, help="--daemon: harness SIGKILL after this long")
    ap.add_argument("--speed", type=float, default=DAEMON_SPEED, help="--daemon: the venue's replay speed")
    ap.add_argument(
        "--workdir", type=Path, help="--daemon: keep the daemon's files and log here (empty or new)"
    )
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.daemon:
        stats = run_daemon(
            args.iterations,
            args.seed,
            args.deadline_s,
            args.verbose,
            args.life_s,
            args.speed,
            workdir=args.workdir,
        )
    else:
        stats = run(args.iterations, args.seed, args.deadline_s, args.verbose)
    print(json.dumps(stats), flush=True)
    return 0 if stats["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
