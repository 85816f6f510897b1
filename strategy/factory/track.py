"""A config's track record read from a daemon's trading DB (engine/trading_db.py schema, opened
read-only): the inputs of the paper gates and of the ramp / rotation decisions.

Only fills at or after ``since_ms`` (the deployment) count. A round trip closes on a ``CLOSE``
row; PF uses the realised PnL minus fees of the closing and reducing fills; drawdown is taken on
the ``balance`` column (cash after each fill); the stress re-pricing charges ``bps`` on every
fill's notional. Kill events are ``RISK_KILL_SWITCH`` audit rows that move to a state other than
``off``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .lifecycle import LiveStats, PaperStats
from .thresholds import THRESHOLDS, Thresholds


@dataclass(frozen=True)
class Record:
    closed_trades: int
    first_ms: int | None
    last_ms: int | None
    net_pnl: float
    net_pnl_stressed: float
    profit_factor: float | None  # None: no losing close
    max_drawdown_pct: float
    kill_events: int
    closes_net: tuple[float, ...]  # net PnL of each CLOSE/REDUCE fill, in order
    balances: tuple[float, ...]


def _connect(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise FileNotFoundError(f"trading DB {db} not found")
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)


def _pf(xs: list[float] | tuple[float, ...]) -> float | None:
    gain = sum(x for x in xs if x > 0)
    loss = -sum(x for x in xs if x < 0)
    return None if loss == 0 else gain / loss


def kill_events(db: Path, since_ms: int = 0) -> int:
    with _connect(db) as c:
        rows = c.execute(
            "SELECT data_json FROM audit_events WHERE event='RISK_KILL_SWITCH' AND ts_ms>=? ORDER BY id",
            (since_ms,),
        ).fetchall()
    n = 0
    for (d,) in rows:
        try:
            to = json.loads(d or "{}").get("to")
        except ValueError:
            to = None
        n += to not in (None, "off")
    return n


def read_record(db: Path, since_ms: int = 0, stress_bps: float = THRESHOLDS.paper_net_positive_bps) -> Record:
    with _connect(db) as c:
        rows = c.execute(
            "SELECT ts_ms, action, notional, pnl, fee_usd, balance FROM trades WHERE ts_ms>=? ORDER BY ts_ms, id",
            (since_ms,),
        ).fetchall()
    net = stressed = 0.0
    closes: list[float] = []
    balances: list[float] = []
    n_closed = 0
    for _ts, action, notional, pnl, fee, bal in rows:
        x = float(pnl or 0.0) - float(fee or 0.0)
        net += x
        stressed += x
        if action != "FUNDING":
            stressed -= abs(float(notional or 0.0)) * stress_bps / 10_000.0
            balances.append(float(bal or 0.0))
        if action in ("CLOSE", "REDUCE"):
            closes.append(x)
        n_closed += action == "CLOSE"
    dd = 0.0
    peak = 0.0
    for b in balances:
        peak = max(peak, b)
        if peak > 0:
            dd = max(dd, (peak - b) / peak * 100.0)
    return Record(
        n_closed,
        int(rows[0][0]) if rows else None,
        int(rows[-1][0]) if rows else None,
        net,
        stressed,
        _pf(closes),
        dd,
        kill_events(db, since_ms),
        tuple(closes),
        tuple(balances),
    )


def paper_stats(db: Path, since_ms: int, now_ms: int, th: Thresholds = THRESHOLDS) -> PaperStats:
    r = read_record(db, since_ms, th.paper_net_positive_bps)
    return PaperStats(
        closed_trades=r.closed_trades,
        hours=max(0.0, (now_ms - since_ms) / 3_600_000),
        profit_factor=r.profit_factor,
        max_drawdown_pct=r.max_drawdown_pct,
        net_pnl_at_stress_bps=r.net_pnl_stressed,
        kill_events=r.kill_events,
    )


def live_stats(db: Path, since_ms: int, now_ms: int, th: Thresholds = THRESHOLDS) -> LiveStats:
    r = read_record(db, since_ms)
    window = r.closes_net[-th.rotation_pf_window_trades :]
    return LiveStats(
        rolling_pf=_pf(window),
        rolling_trades=len(window),
        dd_from_start_hwm_pct=r.max_drawdown_pct,
        revalidation_passed=None,
        age_days=max(0.0, (now_ms - since_ms) / 86_400_000),
    )
