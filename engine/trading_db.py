"""The trading DB (SQLite, WAL): trades, positions, signals, audit and decision events, runtime logs.

``trading_engine.db`` in paper mode. Every loop commits in **one transaction** the new trades, the
position rows, the decision events and the state blobs (kernel state, paper account, last candle
per symbol) in the ``kv`` table: a crash (even SIGKILL) leaves either the whole loop or none of it,
so a restart continues from a consistent state. ``trades`` has ``UNIQUE(fill_hash, fill_tid)``:
the same fill can never be stored twice.

Schema changes are numbered migrations recorded in ``schema_migrations``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "initial schema",
        """
        CREATE TABLE trades (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            type TEXT NOT NULL,            -- LONG | SHORT (position side)
            action TEXT NOT NULL,          -- OPEN | ADD | REDUCE | CLOSE | FUNDING
            price REAL NOT NULL,
            size REAL NOT NULL,
            notional REAL NOT NULL,
            reason TEXT,
            reason_code TEXT,
            confidence TEXT,
            pnl REAL NOT NULL DEFAULT 0,
            fee_usd REAL NOT NULL DEFAULT 0,
            fee_token TEXT,
            fee_rate REAL,
            balance REAL,
            entry_atr REAL,
            leverage REAL,
            margin_used REAL,
            meta_json TEXT,
            run_fingerprint TEXT,
            config_id TEXT,
            fill_hash TEXT NOT NULL,
            fill_tid INTEGER NOT NULL,
            UNIQUE (fill_hash, fill_tid)
        );
        CREATE INDEX idx_trades_symbol_action ON trades (symbol, action, id);
        CREATE INDEX idx_trades_reason_code ON trades (reason_code);
        CREATE TABLE position_state (
            symbol TEXT PRIMARY KEY,
            side TEXT NOT NULL,
            size REAL NOT NULL,
            entry_price REAL NOT NULL,
            leverage REAL NOT NULL,
            margin_used REAL NOT NULL,
            open_trade_id INTEGER,
            trailing_sl REAL,
            last_funding_time INTEGER,
            adds_count INTEGER NOT NULL DEFAULT 0,
            tp1_taken INTEGER NOT NULL DEFAULT 0,
            last_add_time INTEGER,
            entry_adx_threshold REAL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE signals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            signal TEXT NOT NULL,
            confidence TEXT,
            price REAL,
            rsi REAL,
            ema_fast REAL,
            ema_slow REAL,
            meta_json TEXT,
            run_fingerprint TEXT
        );
        CREATE INDEX idx_signals_symbol_ts ON signals (symbol, ts_ms);
        CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            symbol TEXT,
            event TEXT NOT NULL,
            level TEXT NOT NULL,
            data_json TEXT,
            run_fingerprint TEXT
        );
        CREATE INDEX idx_audit_event ON audit_events (event, ts_ms);
        CREATE TABLE runtime_logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms INTEGER NOT NULL,
            ts TEXT NOT NULL,
            pid INTEGER NOT NULL,
            mode TEXT NOT NULL,
            stream TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX idx_runtime_logs_ts ON runtime_logs (ts_ms);
        CREATE TABLE decision_events (
            id TEXT PRIMARY KEY,
            timestamp_ms INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            event_type TEXT NOT NULL,      -- entry_signal | exit_check | gate_block | fill | funding
            status TEXT NOT NULL,          -- executed | blocked | rejected | hold
            decision_phase TEXT,
            intent_id INTEGER,
            trade_id INTEGER,
            action_taken TEXT,
            rejection_reason TEXT,
            reason_code TEXT,
            config_fingerprint TEXT,
            run_fingerprint TEXT,
            gates_json TEXT,
            context_json TEXT
        );
        CREATE INDEX idx_decisions_symbol_ts ON decision_events (symbol, timestamp_ms);
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL);
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class TradeRow:
    ts_ms: int
    symbol: str
    type: str  # LONG | SHORT
    action: str  # OPEN | ADD | REDUCE | CLOSE | FUNDING
    price: float
    size: float
    notional: float
    fill_hash: str
    fill_tid: int
    reason: str = ""
    reason_code: str = ""
    confidence: str = ""
    pnl: float = 0.0
    fee_usd: float = 0.0
    fee_rate: float = 0.0
    balance: float = 0.0
    entry_atr: float = 0.0
    leverage: float = 1.0
    margin_used: float = 0.0
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PositionRow:
    symbol: str
    side: str
    size: float
    entry_price: float
    leverage: float
    margin_used: float
    open_trade_id: int | None = None
    trailing_sl: float | None = None
    last_funding_time: int | None = None
    adds_count: int = 0
    tp1_taken: bool = False
    last_add_time: int | None = None
    entry_adx_threshold: float | None = None


@dataclass(frozen=True)
class DecisionRow:
    id: str
    timestamp_ms: int
    symbol: str
    event_type: str
    status: str
    decision_phase: str = ""
    intent_id: int | None = None
    trade_id: int | None = None
    action_taken: str = ""
    rejection_reason: str = ""
    reason_code: str = ""
    gates: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None


class TradingDB:
    """One connection, used from the daemon's loop thread."""

    def __init__(self, path: Path | str, *, mode: str = "paper", run_fingerprint: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.run_fingerprint = run_fingerprint
        self.config_id = ""
        fresh = not self.path.exists()
        self.conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        if fresh:
            os.chmod(self.path, 0o600)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        self._in_tx = False
        self.migrate()

    # ---- schema ------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        c = self.conn
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {r[0] for r in c.execute("SELECT id FROM schema_migrations")}
        applied = []
        for mid, name, sql in MIGRATIONS:
            if mid in done:
                continue
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in (s.strip() for s in sql.split(";")):
                    if stmt:
                        c.execute(stmt)
                c.execute(
                    "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
                    (mid, name, iso(int(time.time() * 1000))),
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            applied.append(mid)
        return applied

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT MAX(id) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # ---- transactions ------------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work (nested calls join the outer one)."""
        if self._in_tx:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield self.conn
        except BaseException:
            self._in_tx = False
            self.conn.execute("ROLLBACK")
            raise
        self._in_tx = False
        self.conn.execute("COMMIT")

    # ---- writes ------------------------------------------------------------------------------
    def insert_trade(self, t: TradeRow) -> int | None:
        """The new row id, or None when this (fill_hash, fill_tid) is already stored."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO trades (timestamp, ts_ms, symbol, type, action, price, size, notional,"
                " reason, reason_code, confidence, pnl, fee_usd, fee_token, fee_rate, balance, entry_atr,"
                " leverage, margin_used, meta_json, run_fingerprint, config_id, fill_hash, fill_tid)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    iso(t.ts_ms), t.ts_ms, t.symbol, t.type, t.action, t.price, t.size, t.notional,
                    t.reason, t.reason_code, t.confidence, t.pnl, t.fee_usd, "USDC", t.fee_rate,
                    t.balance, t.entry_atr, t.leverage, t.margin_used,
                    json.dumps(dict(t.meta or {}), sort_keys=True), self.run_fingerprint,
                    self.config_id, t.fill_hash, t.fill_tid,
                ),
            )  # fmt: skip
            return int(cur.lastrowid) if cur.rowcount and cur.lastrowid is not None else None

    def replace_positions(self, rows: Sequence[PositionRow], now_ms: int) -> None:
        """Make ``position_state`` hold exactly ``rows``."""
        with self.tx() as c:
            keep = [r.symbol for r in rows]
            if keep:
                marks = ",".join("?" * len(keep))
                c.execute(f"DELETE FROM position_state WHERE symbol NOT IN ({marks})", keep)
            else:
                c.execute("DELETE FROM position_state")
            for r in rows:
                c.execute(
                    "INSERT OR REPLACE INTO position_state (symbol, side, size, entry_price, leverage,"
                    " margin_used, open_trade_id, trailing_sl, last_funding_time, adds_count, tp1_taken,"
                    " last_add_time, entry_adx_threshold, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.symbol, r.side, r.size, r.entry_price, r.leverage, r.margin_used, r.open_trade_id,
                        r.trailing_sl, r.last_funding_time, r.adds_count, int(r.tp1_taken), r.last_add_time,
                        r.entry_adx_threshold, iso(now_ms),
                    ),
                )  # fmt: skip

    def insert_signal(
        self, ts_ms: int, symbol: str, signal: str, confidence: str, price: float, snap: Mapping[str, Any]
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO signals (timestamp, ts_ms, symbol, signal, confidence, price, rsi, ema_fast,"
                " ema_slow, meta_json, run_fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    iso(ts_ms), ts_ms, symbol, signal, confidence, price, snap.get("rsi"),
                    snap.get("ema_fast"), snap.get("ema_slow"), json.dumps({"adx": snap.get("adx")}),
                    self.run_fingerprint,
                ),
            )  # fmt: skip

    def audit(
        self,
        event: str,
        *,
        symbol: str | None = None,
        level: str = "INFO",
        data: Mapping[str, Any] | None = None,
        ts_ms: int | None = None,
    ) -> None:
        ts = int(time.time() * 1000) if ts_ms is None else ts_ms
        with self.tx() as c:
            c.execute(
                "INSERT INTO audit_events (timestamp, ts_ms, symbol, event, level, data_json, run_fingerprint)"
                " VALUES (?,?,?,?,?,?,?)",
                (iso(ts), ts, symbol, event, level, json.dumps(dict(data or {}), default=str),
                 self.run_fingerprint),
            )  # fmt: skip

    def log(self, message: str, *, level: str = "INFO", stream: str = "heartbeat") -> None:
        ts = int(time.time() * 1000)
        with self.tx() as c:
            c.execute(
                "INSERT INTO runtime_logs (ts_ms, ts, pid, mode, stream, level, message) VALUES (?,?,?,?,?,?,?)",
                (ts, iso(ts), os.getpid(), self.mode, stream, level, message),
            )

    def insert_decision(self, d: DecisionRow) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO decision_events (id, timestamp_ms, symbol, event_type, status,"
                " decision_phase, intent_id, trade_id, action_taken, rejection_reason, reason_code,"
                " config_fingerprint, run_fingerprint, gates_json, context_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    d.id, d.timestamp_ms, d.symbol, d.event_type, d.status, d.decision_phase, d.intent_id,
                    d.trade_id, d.action_taken, d.rejection_reason, d.reason_code, self.config_id,
                    self.run_fingerprint, json.dumps(dict(d.gates or {}), sort_keys=True, default=str),
                    json.dumps(dict(d.context or {}), sort_keys=True, default=str),
                ),
            )  # fmt: skip

    def put(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO kv (key, value, updated_ms) VALUES (?,?,?)",
                (key, value, int(time.time() * 1000)),
            )

    # ---- reads -------------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def trades(self, symbol: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM trades" + (" WHERE symbol = ?" if symbol else "") + " ORDER BY id"
        return self._rows(q, (symbol,) if symbol else ())

    def positions(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM position_state ORDER BY symbol", ())

    def decisions(self, symbol: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM decision_events" + (" WHERE symbol = ?" if symbol else "")
        return self._rows(q + " ORDER BY timestamp_ms, id", (symbol,) if symbol else ())

    def count(self, table: str) -> int:
        if table not in {
            "trades",
            "position_state",
            "signals",
            "audit_events",
            "runtime_logs",
            "decision_events",
        }:
            raise ValueError(f"unknown table {table}")
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def _rows(self, q: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        cur = self.conn.execute(q, tuple(args))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self.conn.close()


__all__ = ["SCHEMA_VERSION", "DecisionRow", "PositionRow", "TradeRow", "TradingDB", "iso"]
