"""The OMS's durable store: one SQLite file in WAL mode with ``synchronous=FULL``, created with mode
0600. Every write is one transaction, so a SIGKILL at any point leaves either the old or the new state.

Tables: ``oms_intents`` (one row per kernel decision, unique ``dedupe_key``), ``oms_orders``,
``oms_fills`` (``UNIQUE(fill_hash, fill_tid)``: a duplicated push is ignored), ``oms_open_orders``,
``oms_reconcile_events`` and ``oms_kv`` (persisted nonce, fill cursor, kernel state).

:class:`OmsStore` holds the connection and everything that reads or plainly writes these tables
(kv, intent and fill reads, the kernel's applied fills, open orders, events); the intent status
machine and fill matching are :class:`engine.oms.LiveOms`'s. :meth:`OmsStore.open_read_only` is
for readers beside a running daemon (the pre-flight check, tools): it creates and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.oms_model import Intent, IntentStatus, KnownOrders, now_ms
from exchange.model import Fill

SCHEMA = """
CREATE TABLE IF NOT EXISTS oms_intents (
    intent_id TEXT PRIMARY KEY,
    created_ts_ms INTEGER NOT NULL,
    sent_ts_ms INTEGER,
    updated_ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL,
    side TEXT NOT NULL,
    requested_size TEXT NOT NULL,
    requested_notional TEXT,
    limit_px TEXT,
    reduce_only INTEGER NOT NULL DEFAULT 0,
    leverage TEXT,
    decision_ts_ms INTEGER NOT NULL,
    kernel_intent_id INTEGER,
    reason TEXT,
    reason_code TEXT,
    confidence TEXT,
    status TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL UNIQUE,
    exchange_order_id INTEGER,
    filled_size TEXT NOT NULL DEFAULT '0',
    venue_total TEXT,
    send_attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    meta_json TEXT
);
CREATE INDEX IF NOT EXISTS oms_intents_sym_status ON oms_intents(symbol, status, sent_ts_ms);
CREATE INDEX IF NOT EXISTS oms_intents_oid ON oms_intents(exchange_order_id);
CREATE TABLE IF NOT EXISTS oms_orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    intent_id TEXT NOT NULL,
    created_ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    requested_size TEXT NOT NULL,
    limit_px TEXT,
    reduce_only INTEGER NOT NULL,
    client_order_id TEXT NOT NULL,
    exchange_order_id INTEGER,
    status TEXT NOT NULL,
    raw_json TEXT
);
CREATE INDEX IF NOT EXISTS oms_orders_oid ON oms_orders(exchange_order_id);
CREATE INDEX IF NOT EXISTS oms_orders_cloid ON oms_orders(client_order_id);
CREATE TABLE IF NOT EXISTS oms_fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    intent_id TEXT,
    order_id INTEGER,
    cloid TEXT,
    action TEXT,
    side TEXT NOT NULL,
    pos_type TEXT,
    price TEXT NOT NULL,
    size TEXT NOT NULL,
    notional TEXT NOT NULL,
    fee_usd TEXT NOT NULL,
    fee_token TEXT,
    pnl_usd TEXT,
    fill_hash TEXT NOT NULL,
    fill_tid INTEGER NOT NULL,
    matched_via TEXT,
    match_attempts INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER NOT NULL,
    alerted INTEGER NOT NULL DEFAULT 0,
    kernel_applied INTEGER NOT NULL DEFAULT 0,
    source TEXT,
    raw_json TEXT,
    UNIQUE(fill_hash, fill_tid)
);
CREATE INDEX IF NOT EXISTS oms_fills_intent ON oms_fills(intent_id);
CREATE INDEX IF NOT EXISTS oms_fills_unmatched ON oms_fills(intent_id) WHERE intent_id IS NULL;
CREATE TABLE IF NOT EXISTS oms_open_orders (
    exchange_order_id INTEGER PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price TEXT,
    orig_size TEXT,
    remaining_size TEXT,
    reduce_only INTEGER,
    cloid TEXT,
    intent_id TEXT,
    venue_ts_ms INTEGER,
    raw_json TEXT
);
CREATE TABLE IF NOT EXISTS oms_reconcile_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT,
    intent_id TEXT,
    client_order_id TEXT,
    exchange_order_id INTEGER,
    result TEXT,
    detail_json TEXT
);
CREATE TABLE IF NOT EXISTS oms_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))

_INTENT_COLS = (
    "intent_id, symbol, action, side, requested_size, reduce_only, limit_px, status, client_order_id, "
    "exchange_order_id, filled_size, venue_total, send_attempts, created_ts_ms, sent_ts_ms, "
    "decision_ts_ms, kernel_intent_id, confidence, leverage, last_error"
)


def _dec(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def _row_to_intent(r: tuple[Any, ...]) -> Intent:
    return Intent(
        intent_id=r[0],
        symbol=r[1],
        action=r[2],
        side=r[3],
        size=Decimal(r[4]),
        reduce_only=bool(r[5]),
        limit_px=_dec(r[6]),
        status=IntentStatus(r[7]),
        cloid=r[8],
        exchange_order_id=r[9],
        filled_size=Decimal(r[10]),
        venue_total=_dec(r[11]),
        send_attempts=int(r[12]),
        created_ts_ms=int(r[13]),
        sent_ts_ms=r[14],
        decision_ts_ms=int(r[15]),
        kernel_intent_id=r[16],
        confidence=r[17] or "medium",
        leverage=_dec(r[18]),
        last_error=r[19],
    )


_FILL_COLS = (
    "symbol, side, price, size, ts_ms, fee_usd, fee_token, pnl_usd, fill_hash, fill_tid, order_id, cloid, "
    "pos_type, raw_json"
)


def _row_to_fill(r: Sequence[Any]) -> Fill:
    """An ``oms_fills`` row (columns ``_FILL_COLS``) as the fill it was written from."""
    return Fill(
        symbol=str(r[0]),
        is_buy=r[1] == "BUY",
        size=Decimal(r[3]),
        price=Decimal(r[2]),
        ts_ms=int(r[4]),
        fee=Decimal(r[5]),
        pnl=Decimal(r[7] or "0"),
        fill_hash=str(r[8]),
        fill_tid=int(r[9]),
        oid=None if r[10] is None else int(r[10]),
        cloid=r[11],
        fee_token=str(r[6] or "USDC"),
        direction=str(r[12] or ""),
        raw=json.loads(r[13] or "{}"),
    )


def _net(rows: Iterable[tuple[str, str, str]]) -> dict[str, Decimal]:
    """Signed sum of (symbol, side, size) fill rows per symbol, flat symbols left out."""
    out: dict[str, Decimal] = {}
    for sym, side, size in rows:
        out[sym] = out.get(sym, Decimal(0)) + (Decimal(size) if side == "BUY" else -Decimal(size))
    return {s: v for s, v in out.items() if v != 0}


def open_private_db(path: Path) -> sqlite3.Connection:
    """Create the file with mode 0600 (before SQLite touches it), then WAL + synchronous=FULL."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        if side.exists():
            os.chmod(side, 0o600)
    return conn


class OmsStore:
    """The OMS's SQLite file. One instance per process; methods are not re-entrant across threads."""

    def __init__(self, path: Path, *, clock_ms: Callable[[], int] = now_ms, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only:  # SQLite refuses every write on this connection; the file must exist
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self.db = sqlite3.connect(
                uri, uri=True, timeout=10, isolation_level=None, check_same_thread=False
            )
        else:
            self.db = open_private_db(self.path)
            self.db.executescript(SCHEMA)
        self.clock = clock_ms

    @classmethod
    def open_read_only(cls, path: Path) -> OmsStore | None:
        """The file read-only (a running daemon may keep writing it); None when no OMS has written
        it yet (no file, or a file without the OMS's tables). A file that is not SQLite raises
        ``sqlite3.DatabaseError``."""
        if not Path(path).is_file():
            return None
        store = cls(path, read_only=True)
        try:
            names = {str(r[0]) for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except BaseException:
            store.close()
            raise
        if TABLES - names:  # not (yet) an OMS file
            store.close()
            return None
        return store

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- kv (nonce, cursors, kernel state) -------------------------------------------------
    def get_kv(self, key: str, default: str | None = None) -> str | None:
        r = self.db.execute("SELECT value FROM oms_kv WHERE key=?", (key,)).fetchone()
        return default if r is None else str(r[0])

    def set_kv(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO oms_kv(key, value) VALUES (?, ?)", (key, value))

    def update_kv(self, key: str, change: Callable[[str | None], str | None]) -> bool:
        """Read, change and write one value in one transaction (another process's write in between
        is not lost): ``change`` gets the stored value (None when absent) and returns the new one,
        or None to leave it as it is. True when it wrote."""
        with self.tx() as db:
            r = db.execute("SELECT value FROM oms_kv WHERE key=?", (key,)).fetchone()
            new = change(None if r is None else str(r[0]))
            if new is None:
                return False
            db.execute("INSERT OR REPLACE INTO oms_kv(key, value) VALUES (?, ?)", (key, new))
        return True

    def load_nonce(self) -> int:
        return int(self.get_kv("last_nonce", "0") or 0)

    def save_nonce(self, nonce: int) -> None:
        self.set_kv("last_nonce", str(int(nonce)))

    # ---- intents ---------------------------------------------------------------------------
    def intent(self, intent_id: str) -> Intent | None:
        r = self.db.execute(
            f"SELECT {_INTENT_COLS} FROM oms_intents WHERE intent_id=?", (intent_id,)
        ).fetchone()
        return None if r is None else _row_to_intent(r)

    def intent_by_cloid(self, cloid: str) -> Intent | None:
        r = self.db.execute(
            f"SELECT {_INTENT_COLS} FROM oms_intents WHERE client_order_id=?", (cloid.lower(),)
        ).fetchone()
        return None if r is None else _row_to_intent(r)

    def known_orders(self) -> KnownOrders:
        """The cloids and venue order ids of every intent."""
        rows = self.db.execute("SELECT client_order_id, exchange_order_id FROM oms_intents").fetchall()
        return KnownOrders(
            cloids=frozenset(str(c).lower() for c, _ in rows if c),
            oids=frozenset(int(o) for _, o in rows if o is not None),
        )

    def intents(self, statuses: tuple[IntentStatus, ...] | None = None) -> list[Intent]:
        if statuses is None:
            rows = self.db.execute(
                f"SELECT {_INTENT_COLS} FROM oms_intents ORDER BY created_ts_ms"
            ).fetchall()
        else:
            marks = ",".join("?" * len(statuses))
            rows = self.db.execute(
                f"SELECT {_INTENT_COLS} FROM oms_intents WHERE status IN ({marks}) ORDER BY created_ts_ms",
                tuple(s.value for s in statuses),
            ).fetchall()
        return [_row_to_intent(r) for r in rows]

    # ---- fills (reads) and the kernel's share of them -------------------------------------
    def unmatched_fills(self) -> list[Fill]:
        rows = self.db.execute(
            f"SELECT {_FILL_COLS} FROM oms_fills WHERE intent_id IS NULL ORDER BY id"
        ).fetchall()
        return [_row_to_fill(r) for r in rows]

    def unmatched_fill_rows(self, limit: int) -> list[tuple[int, Fill, int, int, bool]]:
        """Fills with no intent yet, oldest first: (row id, fill, match attempts, first seen ms, alerted)."""
        rows = self.db.execute(
            f"SELECT id, match_attempts, first_seen_ms, alerted, {_FILL_COLS} FROM oms_fills "
            "WHERE intent_id IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(r[0]), _row_to_fill(r[4:]), int(r[1]), int(r[2]), bool(r[3])) for r in rows]

    def fill_keys(self) -> set[tuple[str, int]]:
        return {(str(h), int(t)) for h, t in self.db.execute("SELECT fill_hash, fill_tid FROM oms_fills")}

    def fill_count(self) -> int:
        """Recorded fills (each venue fill once: ``UNIQUE(fill_hash, fill_tid)``)."""
        return int(self.db.execute("SELECT COUNT(*) FROM oms_fills").fetchone()[0])

    def fills_for_kernel(self) -> list[tuple[int, Fill, str | None]]:
        rows = self.db.execute(
            f"SELECT id, intent_id, {_FILL_COLS} FROM oms_fills WHERE kernel_applied=0 ORDER BY ts_ms, id"
        ).fetchall()
        return [(int(r[0]), _row_to_fill(r[2:]), r[1]) for r in rows]

    def fills_of_intent(self, intent_id: str) -> list[tuple[int, Fill, bool]]:
        """An intent's fills in the venue's order: (row id, fill, kernel_applied)."""
        rows = self.db.execute(
            f"SELECT id, kernel_applied, {_FILL_COLS} FROM oms_fills WHERE intent_id=? ORDER BY ts_ms, id",
            (intent_id,),
        ).fetchall()
        return [(int(r[0]), _row_to_fill(r[2:]), bool(r[1])) for r in rows]

    def intents_with_unapplied_fills(self) -> list[str]:
        """Intents with matched fills the kernel has not absorbed, in the venue's order (by their
        first such fill): a close and the next entry must reach the kernel in that order."""
        rows = self.db.execute(
            "SELECT intent_id FROM oms_fills WHERE kernel_applied=0 AND intent_id IS NOT NULL "
            "GROUP BY intent_id ORDER BY MIN(ts_ms), MIN(id)"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def fill_totals(self, lo_ms: int, hi_ms: int) -> tuple[Decimal, Decimal, int]:
        """(realised PnL, fees, fill count) of the fills in ``[lo_ms, hi_ms)``."""
        rows = self.db.execute(
            "SELECT pnl_usd, fee_usd FROM oms_fills WHERE ts_ms >= ? AND ts_ms < ?", (lo_ms, hi_ms)
        ).fetchall()
        pnl = sum((Decimal(p or "0") for p, _ in rows), Decimal(0))
        fees = sum((Decimal(f or "0") for _, f in rows), Decimal(0))
        return pnl, fees, len(rows)

    def traded_symbols(self) -> set[str]:
        """Every symbol with a recorded fill."""
        return {str(r[0]) for r in self.db.execute("SELECT DISTINCT symbol FROM oms_fills")}

    def venue_done(self, intent_id: str) -> bool:
        """Whether the venue has finished with the intent's order (filled, cancelled, expired)."""
        r = self.db.execute(
            "SELECT COALESCE(json_extract(meta_json,'$.venue_done'),0) FROM oms_intents WHERE intent_id=?",
            (intent_id,),
        ).fetchone()
        return bool(r and r[0])

    def commit_kernel_state(self, state_json: str, applied_fill_ids: list[int]) -> None:
        """Kernel state and the fills it has absorbed, in one transaction (exactly-once apply)."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO oms_kv(key, value) VALUES ('kernel_state', ?)", (state_json,))
            db.executemany(
                "UPDATE oms_fills SET kernel_applied=1 WHERE id=?", [(i,) for i in applied_fill_ids]
            )

    def mark_kernel_applied(self, fill_ids: Sequence[int]) -> None:
        """Mark fills the kernel already holds (its state was committed elsewhere first)."""
        with self.tx() as db:
            db.executemany("UPDATE oms_fills SET kernel_applied=1 WHERE id=?", [(int(i),) for i in fill_ids])

    def positions(self) -> dict[str, Decimal]:
        """Net position per symbol from every recorded fill (what the OMS believes)."""
        return _net(self.db.execute("SELECT symbol, side, size FROM oms_fills"))

    def intent_positions(self) -> dict[str, Decimal]:
        """Net position per symbol from the fills matched to an intent: what the OMS's own orders
        hold (a fill no intent explains, e.g. of an order placed outside the OMS, is not counted)."""
        return _net(self.db.execute("SELECT symbol, side, size FROM oms_fills WHERE intent_id IS NOT NULL"))

    def last_fill_ms(self) -> int | None:
        r = self.db.execute("SELECT MAX(ts_ms) FROM oms_fills").fetchone()
        return None if r is None or r[0] is None else int(r[0])

    # ---- open orders and events ------------------------------------------------------------
    def upsert_open_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        now = self.clock()
        with self.tx() as db:
            seen = []
            for o in orders:
                oid = int(o["oid"])
                seen.append(oid)
                cloid = str(o["cloid"]).lower() if o.get("cloid") else None
                iid = None
                if cloid:
                    r = db.execute(
                        "SELECT intent_id FROM oms_intents WHERE client_order_id=?", (cloid,)
                    ).fetchone()
                    iid = r[0] if r else None
                db.execute(
                    "INSERT INTO oms_open_orders (exchange_order_id, first_seen_ms, last_seen_ms, symbol, side, "
                    "price, orig_size, remaining_size, reduce_only, cloid, intent_id, venue_ts_ms, raw_json) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(exchange_order_id) DO UPDATE SET "
                    "last_seen_ms=excluded.last_seen_ms, remaining_size=excluded.remaining_size, "
                    "raw_json=excluded.raw_json",
                    (
                        oid,
                        now,
                        now,
                        o.get("coin"),
                        o.get("side"),
                        o.get("limitPx"),
                        o.get("origSz"),
                        o.get("sz"),
                        int(bool(o.get("reduceOnly"))),
                        cloid,
                        iid,
                        o.get("timestamp"),
                        json.dumps(dict(o), default=str),
                    ),
                )
            if seen:
                marks = ",".join("?" * len(seen))
                db.execute(f"DELETE FROM oms_open_orders WHERE exchange_order_id NOT IN ({marks})", seen)
            else:
                db.execute("DELETE FROM oms_open_orders")

    def open_orders(self) -> list[dict[str, Any]]:
        cols = ("exchange_order_id", "first_seen_ms", "symbol", "cloid", "intent_id", "venue_ts_ms")
        rows = self.db.execute(f"SELECT {', '.join(cols)} FROM oms_open_orders").fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def _event(
        self,
        db: sqlite3.Connection,
        kind: str,
        symbol: str | None,
        intent_id: str | None,
        cloid: str | None,
        oid: int | None,
        result: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO oms_reconcile_events (ts_ms, kind, symbol, intent_id, client_order_id, "
            "exchange_order_id, result, detail_json) VALUES (?,?,?,?,?,?,?,?)",
            (
                self.clock(),
                kind,
                symbol,
                intent_id,
                cloid,
                oid,
                result,
                json.dumps(dict(detail or {}), default=str),
            ),
        )

    def event(
        self,
        kind: str,
        *,
        symbol: str | None = None,
        intent_id: str | None = None,
        cloid: str | None = None,
        oid: int | None = None,
        result: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self.tx() as db:
            self._event(db, kind, symbol, intent_id, cloid, oid, result, detail)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        cols = (
            "ts_ms",
            "kind",
            "symbol",
            "intent_id",
            "client_order_id",
            "exchange_order_id",
            "result",
            "detail_json",
        )
        q = f"SELECT {', '.join(cols)} FROM oms_reconcile_events"
        rows = (
            self.db.execute(q + " WHERE kind=? ORDER BY id", (kind,))
            if kind
            else self.db.execute(q + " ORDER BY id")
        ).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]
