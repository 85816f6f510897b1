"""Turn trading-DB rows into the JSON the monitor serves.

Each row is converted on its own: a malformed row (a number that is not a number, broken JSON) is
skipped and named in ``warnings`` instead of failing the whole answer. Nothing here writes.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.heartbeat import parse_heartbeat
from monitor.db import ReadOnlyDB

Row = dict[str, Any]


class Malformed(ValueError):
    """A row that cannot be shown; the message names the column."""


def num(row: Mapping[str, Any], col: str, *, optional: bool = False) -> float | None:
    v = row.get(col)
    if v is None or v == "":
        if optional:
            return None
        raise Malformed(f"{col} is empty")
    if isinstance(v, bool):
        raise Malformed(f"{col} is a boolean")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise Malformed(f"{col}={str(v)[:40]!r} is not a number") from None
    if not math.isfinite(x):
        raise Malformed(f"{col} is not finite")
    return x


def req(row: Mapping[str, Any], col: str) -> float:
    x = num(row, col)
    assert x is not None
    return x


def integer(row: Mapping[str, Any], col: str, *, optional: bool = False) -> int | None:
    x = num(row, col, optional=optional)
    return None if x is None else int(x)


def text(row: Mapping[str, Any], col: str) -> str:
    v = row.get(col)
    return "" if v is None else str(v)


def js(row: Mapping[str, Any], col: str) -> Any:
    v = row.get(col)
    if v in (None, ""):
        return {}
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        raise Malformed(f"{col} is not valid JSON") from None


@dataclass
class Warnings:
    items: list[str] = field(default_factory=list)

    def add(self, msg: str) -> None:
        if msg not in self.items:
            self.items.append(msg)


def convert(
    rows: list[Row], fn: Callable[[Row], Row], table: str, warnings: Warnings, key: str = "id"
) -> list[Row]:
    out = []
    for r in rows:
        try:
            out.append(fn(r))
        except (Malformed, TypeError, ValueError, KeyError) as exc:
            warnings.add(f"{table} row {key}={r.get(key)!r} skipped: malformed ({exc})")
    return out


# ---- heartbeat ---------------------------------------------------------------------------------


def heartbeat(db: ReadOnlyDB, now_ms: int, stale_s: float) -> Row:
    rows = db.query(
        "SELECT id, ts_ms, message FROM runtime_logs WHERE stream = 'heartbeat' ORDER BY id DESC LIMIT 1"
    )
    if not rows:
        return {"present": False, "age_s": None, "stale": True, "fields": {}}
    r = rows[0]
    try:
        ts = integer(r, "ts_ms")
    except Malformed:
        ts = None
    fields = parse_heartbeat(text(r, "message"))
    age = None if ts is None else max(0.0, (now_ms - ts) / 1000)
    return {
        "present": True,
        "ts_ms": ts,
        "age_s": age,
        "stale": age is None or age > stale_s,
        "fields": fields,
        "parsed": bool(fields.get("loops")),
    }


def hb_float(hb: Mapping[str, Any], key: str) -> float | None:
    raw = str(hb.get("fields", {}).get(key, "")).rstrip("s%")
    try:
        x = float(raw)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


# ---- positions and trades ----------------------------------------------------------------------


def _position(r: Row, mids: Mapping[str, float]) -> Row:
    side = text(r, "side").lower()
    if side not in ("long", "short"):
        raise Malformed(f"side={side!r}")
    size, entry = req(r, "size"), req(r, "entry_price")
    mid = mids.get(text(r, "symbol"))
    sign = 1 if side == "long" else -1
    upnl = None if mid is None else sign * (mid - entry) * size
    return {
        "symbol": text(r, "symbol"),
        "side": side,
        "size": size,
        "entry_price": entry,
        "leverage": num(r, "leverage", optional=True),
        "margin_used": num(r, "margin_used", optional=True),
        "trailing_sl": num(r, "trailing_sl", optional=True),
        "adds_count": integer(r, "adds_count", optional=True) or 0,
        "tp1_taken": bool(integer(r, "tp1_taken", optional=True)),
        "open_trade_id": integer(r, "open_trade_id", optional=True),
        "updated_at": text(r, "updated_at"),
        "mid": mid,
        "notional": size * (mid if mid is not None else entry),
        "unrealized_pnl": upnl,
    }


def positions(db: ReadOnlyDB, mids: Mapping[str, float], w: Warnings) -> list[Row]:
    rows = db.query("SELECT * FROM position_state ORDER BY symbol")
    return convert(rows, lambda r: _position(r, mids), "position_state", w, key="symbol")


def _trade(r: Row) -> Row:
    action = text(r, "action")
    if not action:
        raise Malformed("action is empty")
    return {
        "id": integer(r, "id"),
        "ts_ms": integer(r, "ts_ms"),
        "timestamp": text(r, "timestamp"),
        "symbol": text(r, "symbol"),
        "type": text(r, "type"),
        "action": action,
        "price": req(r, "price"),
        "size": req(r, "size"),
        "notional": num(r, "notional", optional=True),
        "pnl": num(r, "pnl", optional=True) or 0.0,
        "fee_usd": num(r, "fee_usd", optional=True) or 0.0,
        "balance": num(r, "balance", optional=True),
        "reason": text(r, "reason"),
        "reason_code": text(r, "reason_code"),
        "confidence": text(r, "confidence"),
        "leverage": num(r, "leverage", optional=True),
    }


def trades(db: ReadOnlyDB, w: Warnings, *, limit: int = 50, symbol: str | None = None) -> list[Row]:
    where, args = ("WHERE symbol = ?", [symbol]) if symbol else ("", [])
    rows = db.query(f"SELECT * FROM trades {where} ORDER BY id DESC LIMIT ?", [*args, limit])
    return convert(rows, _trade, "trades", w)


def daily(db: ReadOnlyDB, w: Warnings) -> Row:
    """Realised PnL and fees of the UTC day of the newest trade (the venue's day: a replay runs in
    the past, the real venue today)."""
    last = db.query("SELECT MAX(ts_ms) AS t FROM trades")
    t = last[0]["t"] if last else None
    if not isinstance(t, int | float):
        return {"date": None, "realized_pnl": 0.0, "fees": 0.0, "trades": 0, "net": 0.0}
    day = datetime.fromtimestamp(t / 1000, UTC).date()
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    # Aggregated in SQL (a busy day has thousands of rows); non-numeric cells are counted, not summed.
    numeric = "typeof({c}) IN ('integer', 'real')"
    rows = db.query(
        "SELECT TOTAL(CASE WHEN {p} THEN pnl END) AS pnl, TOTAL(CASE WHEN {f} THEN fee_usd END) AS fees,"
        " SUM(action != 'FUNDING') AS n, SUM(NOT ({p}) OR NOT ({f})) AS bad"
        " FROM trades WHERE ts_ms >= ? AND ts_ms < ?".format(
            p=numeric.format(c="pnl"), f=numeric.format(c="fee_usd")
        ),
        [start, start + 86_400_000],
    )
    r = rows[0] if rows else {}
    pnl, fees = float(r.get("pnl") or 0.0), float(r.get("fees") or 0.0)
    if r.get("bad"):
        w.add(f"{r['bad']} trades rows of {day} left out of the daily PnL: pnl or fee_usd is not a number")
    n = int(r.get("n") or 0)
    return {"date": day.isoformat(), "realized_pnl": pnl, "fees": fees, "trades": n, "net": pnl - fees}


def cash_balance(db: ReadOnlyDB, w: Warnings) -> float | None:
    """Paper: the committed paper account; otherwise the balance after the newest trade."""
    rows = db.query("SELECT value FROM kv WHERE key = 'paper_account'")
    if rows:  # the live daemon's account is read by live_account()
        try:
            return float(json.loads(rows[0]["value"])["balance"])
        except (TypeError, ValueError, KeyError):
            w.add("kv paper_account is malformed; balance taken from the newest trade")
    rows = db.query("SELECT id, balance FROM trades WHERE balance IS NOT NULL ORDER BY id DESC LIMIT 1")
    for r in rows:
        try:
            return num(r, "balance")
        except Malformed as exc:
            w.add(f"trades row id={r.get('id')!r}: {exc}")
    return None


def live_account(db: ReadOnlyDB, w: Warnings) -> Row | None:
    """The live daemon's committed account (kv ``live_account``): the venue's account value (which
    includes unrealised PnL), the path of its OMS DB and the coins the operator owns
    (``manual_trade.py open``; the daemon sends nothing for them)."""
    rows = db.query("SELECT value FROM kv WHERE key = 'live_account'")
    if not rows:
        return None
    try:
        d = json.loads(rows[0]["value"])
        return {
            "account_value": float(d["account_value"]),
            "oms": str(d.get("oms") or ""),
            "operator": [str(x) for x in d.get("operator") or []],
        }
    except (TypeError, ValueError, KeyError):
        w.add("kv live_account is malformed")
        return None


def watchlist(db: ReadOnlyDB) -> list[str]:
    rows = db.query(
        "SELECT data_json FROM audit_events WHERE event = 'ENGINE_START' ORDER BY id DESC LIMIT 1"
    )
    try:
        syms = json.loads(rows[0]["data_json"]).get("symbols", []) if rows else []
        return [str(s) for s in syms]
    except (TypeError, ValueError, AttributeError):
        return []


def kill_events(db: ReadOnlyDB, w: Warnings, limit: int = 5) -> list[Row]:
    rows = db.query(
        "SELECT id, ts_ms, data_json FROM audit_events WHERE event LIKE 'RISK_KILL%' ORDER BY id DESC LIMIT ?",
        [limit],
    )

    def conv(r: Row) -> Row:
        d = js(r, "data_json")
        return {
            "ts_ms": integer(r, "ts_ms"),
            "to": d.get("to"),
            "from": d.get("from"),
            "reason": d.get("reason"),
        }

    return convert(rows, conv, "audit_events", w)


def audit(db: ReadOnlyDB, w: Warnings, limit: int = 30) -> list[Row]:
    rows = db.query("SELECT * FROM audit_events ORDER BY id DESC LIMIT ?", [limit])

    def conv(r: Row) -> Row:
        return {
            "id": integer(r, "id"),
            "ts_ms": integer(r, "ts_ms"),
            "symbol": text(r, "symbol"),
            "event": text(r, "event"),
            "level": text(r, "level"),
            "data": js(r, "data_json"),
        }

    return convert(rows, conv, "audit_events", w)


# ---- panels ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One key of ``/api/snapshot`` read straight from the trading DB (a panel of the page)."""

    key: str
    read: Callable[[ReadOnlyDB, Warnings], Any]
    #: What the snapshot holds when the DB cannot be read.
    empty: Callable[[], Any]


#: The snapshot's panels, read in this order. A new panel is its reader and a row here, its markup
#: in static/index.html and its rendering in static/app.js (the snapshot picks it up).
PANELS: tuple[Panel, ...] = (
    Panel("daily", daily, dict),
    Panel("recent_trades", lambda db, w: trades(db, w, limit=25), list),
    Panel("recent_audit", lambda db, w: audit(db, w, limit=20), list),
)


# ---- decisions ---------------------------------------------------------------------------------


def _decision(r: Row) -> Row:
    return {
        "id": text(r, "id"),
        "ts_ms": integer(r, "timestamp_ms"),
        "symbol": text(r, "symbol"),
        "event_type": text(r, "event_type"),
        "status": text(r, "status"),
        "phase": text(r, "decision_phase"),
        "trade_id": integer(r, "trade_id", optional=True),
        "action": text(r, "action_taken"),
        "rejection_reason": text(r, "rejection_reason"),
        "reason_code": text(r, "reason_code"),
        "config_id": text(r, "config_fingerprint"),
        "gates": gate_table(js(r, "gates_json")),
        "context": js(r, "context_json"),
    }


def gate_table(gates: Any) -> list[Row]:
    """The recorded gate values as rows {name, value, threshold, op, passed, detail}."""
    if not isinstance(gates, dict):
        raise Malformed("gates_json is not an object")
    out = []
    for name in sorted(gates):
        g = gates[name]
        row: Row = {
            "name": name,
            "value": None,
            "threshold": None,
            "op": None,
            "passed": None,
            "detail": None,
        }
        if isinstance(g, dict):
            row["value"] = g.get("value")
            row["threshold"] = g.get("threshold")
            row["op"] = g.get("op")
            row["passed"] = _passed(g)
            rest = {k: v for k, v in g.items() if k not in ("value", "threshold", "op")}
            row["detail"] = rest or None
            if row["value"] is None and "allowed" in g:
                row["value"] = g["allowed"]
        else:
            row["value"] = g
        out.append(row)
    return out


def _passed(g: Mapping[str, Any]) -> bool | None:
    if "allowed" in g and isinstance(g["allowed"], bool):
        return bool(g["allowed"])
    v, t, op = g.get("value"), g.get("threshold"), g.get("op")
    if not isinstance(v, int | float) or not isinstance(t, int | float):
        return None
    if op == ">=":
        return v >= t
    if op == "<=":
        return v <= t
    return None  # "floor" (min_atr_pct) clamps the ATR used for sizing; it blocks nothing


def decisions(
    db: ReadOnlyDB,
    w: Warnings,
    *,
    limit: int = 100,
    symbol: str | None = None,
    status: str | None = None,
    event_type: str | None = None,
) -> list[Row]:
    clauses, args = [], []
    for col, val in (("symbol", symbol), ("status", status), ("event_type", event_type)):
        if val:
            clauses.append(f"{col} = ?")
            args.append(val)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = db.query(
        f"SELECT * FROM decision_events {where} ORDER BY timestamp_ms DESC, rowid DESC LIMIT ?",
        [*args, limit],
    )
    return convert(rows, _decision, "decision_events", w)


# ---- OMS (live) --------------------------------------------------------------------------------

OMS_TABLES = {
    "intents": ("oms_intents", "created_ts_ms"),
    "orders": ("oms_orders", "created_ts_ms"),
    "fills": ("oms_fills", "ts_ms"),
    "open_orders": ("oms_open_orders", "last_seen_ms"),
    "reconcile_events": ("oms_reconcile_events", "ts_ms"),
}


def oms(db: ReadOnlyDB, w: Warnings, limit: int = 50) -> Row:
    out: Row = {}
    for key, (table, ts_col) in OMS_TABLES.items():
        rows = db.query(f"SELECT * FROM {table} ORDER BY {ts_col} DESC LIMIT ?", [limit])

        def conv(r: Row, ts_col: str = ts_col) -> Row:
            integer(r, ts_col)  # a row without a time is malformed
            d = {k: v for k, v in r.items() if not k.endswith("_json") and k != "raw"}
            for k in ("raw_json", "detail_json", "meta_json"):
                if k in r:
                    d[k.removesuffix("_json")] = js(r, k)
            return d

        out[key] = convert(rows, conv, table, w, key=next(iter(rows[0])) if rows else "id")
    return out


# ---- equity curve ------------------------------------------------------------------------------

_EQUITY = re.compile(r"\bequity=(-?[0-9.]+(?:e[-+]?\d+)?)")


@dataclass
class EquityCurve:
    """Equity from the heartbeat lines, read incrementally (only rows newer than the last read).

    Keeps at most ``max_points`` points by halving the resolution when full, and the running peak
    and the deepest drawdown over every point seen."""

    max_points: int = 600
    last_id: int = 0
    points: list[tuple[int, float]] = field(default_factory=list)
    peak: float | None = None
    max_drawdown_pct: float = 0.0
    _stride: int = 1
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, db: ReadOnlyDB) -> None:
        with self._lock:
            top = db.query("SELECT MAX(id) AS m FROM runtime_logs")
            m = top[0]["m"] if top else None
            if not isinstance(m, int) or m < self.last_id:  # a new or replaced DB
                self._reset()
            rows = db.query(
                "SELECT id, ts_ms, message FROM runtime_logs WHERE id > ? AND stream = 'heartbeat' ORDER BY id",
                [self.last_id],
            )
            for r in rows:
                self.last_id = max(self.last_id, int(r["id"]))
                hit = _EQUITY.search(str(r.get("message") or ""))
                ts = r.get("ts_ms")
                if not hit or not isinstance(ts, int):
                    continue
                eq = float(hit.group(1))
                if not math.isfinite(eq) or eq <= 0:
                    continue
                self._add(ts, eq)

    def _reset(self) -> None:
        self.last_id = 0
        self.points = []
        self.peak = None
        self.max_drawdown_pct = 0.0
        self._stride = 1
        self._seen = 0

    def _add(self, ts: int, eq: float) -> None:
        self.peak = eq if self.peak is None else max(self.peak, eq)
        self.max_drawdown_pct = min(self.max_drawdown_pct, 100.0 * (eq / self.peak - 1.0))
        self._seen += 1
        if self._seen % self._stride == 0 or not self.points:
            self.points.append((ts, eq))
        else:
            self.points[-1] = (ts, eq)  # keep the newest value at the current resolution
        if len(self.points) > self.max_points:
            self.points = self.points[::2]
            self._stride *= 2

    def series(self) -> list[Row]:
        with self._lock:
            out, peak = [], None
            for ts, eq in self.points:
                peak = eq if peak is None else max(peak, eq)
                out.append({"ts_ms": ts, "equity": eq, "drawdown_pct": 100.0 * (eq / peak - 1.0)})
            return out

    def drawdown_pct(self, equity: float | None) -> float | None:
        if equity is None or self.peak is None:
            return None
        return 100.0 * (equity / max(self.peak, equity) - 1.0)


__all__ = [
    "EquityCurve",
    "Malformed",
    "Warnings",
    "audit",
    "cash_balance",
    "daily",
    "decisions",
    "gate_table",
    "heartbeat",
    "kill_events",
    "oms",
    "positions",
    "trades",
    "watchlist",
]
