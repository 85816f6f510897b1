"""LiveOms: the durable order-management store for live and dry_live trading.

SQLite in WAL mode with ``synchronous=FULL``; the file is created with mode 0600. Every state change
is one transaction, so a SIGKILL at any point leaves either the old or the new state.

Tables: ``oms_intents`` (one row per kernel decision, unique ``dedupe_key``), ``oms_orders``,
``oms_fills`` (``UNIQUE(fill_hash, fill_tid)``: a duplicated push is ignored), ``oms_open_orders``,
``oms_reconcile_events`` and ``oms_kv`` (persisted nonce, fill cursor, kernel state).

Intent status machine::

    NEW -> SENT | WOULD | REJECTED | UNKNOWN | EXPIRED
    UNKNOWN -> SENT | PARTIAL | FILLED | REJECTED | EXPIRED | CANCELLED
    SENT -> PARTIAL | FILLED | CANCELLED | EXPIRED
    PARTIAL -> FILLED | CANCELLED | EXPIRED
    EXPIRED -> PARTIAL | FILLED            (a late fill of an order we gave up on is still counted)

``FILLED`` means the order is finished at the venue with fills (``filled_size`` says how much; an
IOC that filled part of its size and cancelled the rest is FILLED with the smaller size);
``CANCELLED`` means finished with no fill.

The intent row, with its deterministic cloid, is committed **before** the order is sent, so a
restart recognises an order that went out before the crash (by cloid at the venue).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CLOID_PREFIX = b"aiq_"
DEFAULT_MATCH_TTL_MS = 10 * 60 * 1000
UNMATCHED_ALERT_AFTER_MS = 60_000
UNMATCHED_ALERT_AFTER_ATTEMPTS = 3


class IntentStatus(StrEnum):
    NEW = "NEW"
    SENT = "SENT"
    WOULD = "WOULD"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


S = IntentStatus
TRANSITIONS: Mapping[IntentStatus, frozenset[IntentStatus]] = {
    S.NEW: frozenset({S.SENT, S.WOULD, S.REJECTED, S.UNKNOWN, S.EXPIRED, S.PARTIAL, S.FILLED, S.CANCELLED}),
    S.UNKNOWN: frozenset({S.SENT, S.PARTIAL, S.FILLED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    S.SENT: frozenset({S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.PARTIAL: frozenset({S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.EXPIRED: frozenset({S.PARTIAL, S.FILLED}),
    S.WOULD: frozenset(),
    S.REJECTED: frozenset(),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset({S.FILLED}),  # a fill that raced the cancel
}
OPEN_STATUSES = (S.NEW, S.SENT, S.UNKNOWN, S.PARTIAL)


class IllegalTransition(RuntimeError):
    pass


class Alerter(Protocol):
    def __call__(self, kind: str, message: str) -> None: ...


def log_alert(kind: str, message: str) -> None:
    log.warning("ALERT %s: %s", kind, message)


class CrashPoints:
    """Test hook: SIGKILL this process the ``countdown``-th time ``target`` is hit."""

    def __init__(self, target: str | None = None, countdown: int = 1) -> None:
        self.target = target
        self.countdown = countdown
        self.hits: dict[str, int] = {}

    def __call__(self, name: str) -> None:
        self.hits[name] = self.hits.get(name, 0) + 1
        if name == self.target:
            self.countdown -= 1
            if self.countdown <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


def no_crash(_name: str) -> None:
    return None


def now_ms() -> int:
    return int(time.time() * 1000)


def dedupe_key(kind: str, symbol: str, side: str, decision_ts_ms: int) -> str:
    """One key per kernel decision: ``OPEN:ETH:BUY:1700000000000``."""
    return f"{kind.upper()}:{symbol.upper()}:{side.upper()}:{int(decision_ts_ms)}"


def intent_id_for(key: str) -> str:
    """Deterministic from the decision, so a re-emitted decision maps to the same intent."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def cloid_for(intent_id: str, prefix: bytes = CLOID_PREFIX) -> str:
    """``0x`` + 16 bytes: the ASCII prefix, then the start of sha256(intent_id)."""
    if len(prefix) >= 16:
        raise ValueError("cloid prefix must be shorter than 16 bytes")
    body = prefix + hashlib.sha256(intent_id.encode()).digest()[: 16 - len(prefix)]
    return "0x" + body.hex()


def is_bot_cloid(cloid: str | None, prefix: bytes = CLOID_PREFIX) -> bool:
    return bool(cloid) and str(cloid).lower().startswith("0x" + prefix.hex())


@dataclass(frozen=True, slots=True)
class IntentRequest:
    """What the broker adapter asks the OMS to record (sizes already rounded)."""

    symbol: str
    action: str  # OPEN | ADD | REDUCE | CLOSE | REVERSE
    side: str  # BUY | SELL (the order side)
    size: Decimal
    decision_ts_ms: int
    reduce_only: bool = False
    limit_px: Decimal | None = None
    notional: Decimal | None = None
    leverage: Decimal | None = None
    kernel_intent_id: int | None = None
    reason: str = ""
    reason_code: str = ""
    confidence: str = "medium"


@dataclass(frozen=True, slots=True)
class Intent:
    intent_id: str
    symbol: str
    action: str
    side: str
    size: Decimal
    reduce_only: bool
    limit_px: Decimal | None
    status: IntentStatus
    cloid: str
    exchange_order_id: int | None
    filled_size: Decimal
    venue_total: Decimal | None
    send_attempts: int
    created_ts_ms: int
    sent_ts_ms: int | None
    decision_ts_ms: int
    kernel_intent_id: int | None
    confidence: str
    leverage: Decimal | None
    last_error: str | None

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"


@dataclass(frozen=True, slots=True)
class Fill:
    """One venue fill in our terms (Decimal money)."""

    symbol: str
    side: str  # BUY | SELL
    price: Decimal
    size: Decimal
    ts_ms: int
    fee: Decimal
    fee_token: str
    closed_pnl: Decimal
    fill_hash: str
    fill_tid: int
    oid: int | None
    cloid: str | None
    direction: str
    raw: Mapping[str, Any]

    @staticmethod
    def from_venue(f: Mapping[str, Any]) -> Fill:
        return Fill(
            symbol=str(f["coin"]),
            side="BUY" if f["side"] == "B" else "SELL",
            price=Decimal(str(f["px"])),
            size=Decimal(str(f["sz"])),
            ts_ms=int(f["time"]),
            fee=Decimal(str(f.get("fee", "0"))),
            fee_token=str(f.get("feeToken", "USDC")),
            closed_pnl=Decimal(str(f.get("closedPnl", "0"))),
            fill_hash=str(f.get("hash", "")),
            fill_tid=int(f.get("tid", 0)),
            oid=int(f["oid"]) if f.get("oid") is not None else None,
            cloid=str(f["cloid"]).lower() if f.get("cloid") else None,
            direction=str(f.get("dir", "")),
            raw=dict(f),
        )

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "BUY" else -self.size


@dataclass(frozen=True, slots=True)
class IngestResult:
    new: bool
    fill_id: int | None
    intent_id: str | None
    matched_via: str | None


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


class LiveOms:
    """The OMS store. One instance per process; methods are not re-entrant across threads."""

    def __init__(
        self,
        path: Path,
        *,
        alert: Alerter = log_alert,
        crash: Callable[[str], None] = no_crash,
        cloid_prefix: bytes = CLOID_PREFIX,
        match_ttl_ms: int = DEFAULT_MATCH_TTL_MS,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.path = Path(path)
        self.db = open_private_db(self.path)
        self.db.executescript(SCHEMA)
        self.alert = alert
        self.crash = crash
        self.cloid_prefix = cloid_prefix
        self.match_ttl_ms = match_ttl_ms
        self.clock = clock_ms

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

    def create_intent(self, req: IntentRequest) -> tuple[Intent, bool]:
        """Commit a NEW intent (durably) and return it, or return the existing one for this decision."""
        key = dedupe_key(req.action, req.symbol, req.side, req.decision_ts_ms)
        iid = intent_id_for(key)
        existing = self.intent(iid)
        if existing is not None:
            return existing, False
        self.crash("before_intent_commit")
        t = self.clock()
        with self.tx() as db:
            db.execute(
                "INSERT INTO oms_intents (intent_id, created_ts_ms, updated_ts_ms, symbol, action, side, "
                "requested_size, requested_notional, limit_px, reduce_only, leverage, decision_ts_ms, "
                "kernel_intent_id, reason, reason_code, confidence, status, dedupe_key, client_order_id) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    iid,
                    t,
                    t,
                    req.symbol,
                    req.action.upper(),
                    req.side.upper(),
                    str(req.size),
                    None if req.notional is None else str(req.notional),
                    None if req.limit_px is None else str(req.limit_px),
                    int(req.reduce_only),
                    None if req.leverage is None else str(req.leverage),
                    int(req.decision_ts_ms),
                    req.kernel_intent_id,
                    req.reason,
                    req.reason_code,
                    req.confidence,
                    S.NEW.value,
                    key,
                    cloid_for(iid, self.cloid_prefix),
                ),
            )
        self.crash("after_intent_commit")
        created = self.intent(iid)
        assert created is not None
        return created, True

    def _transition(self, db: sqlite3.Connection, intent_id: str, new: IntentStatus, **cols: Any) -> None:
        r = db.execute("SELECT status FROM oms_intents WHERE intent_id=?", (intent_id,)).fetchone()
        if r is None:
            raise KeyError(intent_id)
        old = IntentStatus(r[0])
        if new != old and new not in TRANSITIONS[old]:
            raise IllegalTransition(f"{intent_id}: {old} -> {new}")
        sets = ["status=?", "updated_ts_ms=?"]
        vals: list[Any] = [new.value, self.clock()]
        for k, v in cols.items():
            sets.append(f"{k}=?")
            vals.append(v)
        db.execute(f"UPDATE oms_intents SET {', '.join(sets)} WHERE intent_id=?", (*vals, intent_id))

    def set_status(self, intent_id: str, new: IntentStatus, error: str | None = None) -> None:
        with self.tx() as db:
            if error is None:
                self._transition(db, intent_id, new)
            else:
                self._transition(db, intent_id, new, last_error=error[:500])

    def note_send_attempt(self, intent_id: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE oms_intents SET send_attempts=send_attempts+1, sent_ts_ms=COALESCE(sent_ts_ms, ?) "
                "WHERE intent_id=?",
                (self.clock(), intent_id),
            )

    def record_ack(
        self,
        intent_id: str,
        *,
        oid: int | None,
        order_type: str,
        venue_status: str,
        total_sz: Decimal | None,
        done: bool,
        raw: Mapping[str, Any] | None = None,
    ) -> Intent:
        """The venue's answer (or a resolved orderStatus): SENT with the oid, then settle."""
        intent = self.intent(intent_id)
        assert intent is not None
        with self.tx() as db:
            if intent.status in (S.NEW, S.UNKNOWN):
                self._transition(db, intent_id, S.SENT)
            cols: dict[str, Any] = {}
            if oid is not None:
                cols["exchange_order_id"] = int(oid)
            if total_sz is not None:
                cols["venue_total"] = str(total_sz)
            if cols:
                db.execute(
                    f"UPDATE oms_intents SET {', '.join(k + '=?' for k in cols)} WHERE intent_id=?",
                    (*cols.values(), intent_id),
                )
            exists = (
                oid is not None
                and db.execute(
                    "SELECT 1 FROM oms_orders WHERE intent_id=? AND exchange_order_id=?", (intent_id, oid)
                ).fetchone()
                is not None
            )
            if exists:
                db.execute(
                    "UPDATE oms_orders SET status=? WHERE intent_id=? AND exchange_order_id=?",
                    (venue_status, intent_id, oid),
                )
            else:
                db.execute(
                    "INSERT INTO oms_orders (intent_id, created_ts_ms, symbol, side, order_type, requested_size, "
                    "limit_px, reduce_only, client_order_id, exchange_order_id, status, raw_json) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        intent_id,
                        self.clock(),
                        intent.symbol,
                        intent.side,
                        order_type,
                        str(intent.size),
                        None if intent.limit_px is None else str(intent.limit_px),
                        int(intent.reduce_only),
                        intent.cloid,
                        oid,
                        venue_status,
                        json.dumps(dict(raw or {}), default=str),
                    ),
                )
            if done:
                db.execute(
                    "UPDATE oms_intents SET meta_json=json_set(COALESCE(meta_json,'{}'),'$.venue_done',1) "
                    "WHERE intent_id=?",
                    (intent_id,),
                )
            self._settle(db, intent_id)
        self.crash("after_ack")
        out = self.intent(intent_id)
        assert out is not None
        return out

    def _settle(self, db: sqlite3.Connection, intent_id: str) -> None:
        """Derive PARTIAL / FILLED / CANCELLED from fills and whether the venue is done with it."""
        r = db.execute(
            "SELECT status, requested_size, filled_size, venue_total, "
            "COALESCE(json_extract(meta_json,'$.venue_done'),0) FROM oms_intents WHERE intent_id=?",
            (intent_id,),
        ).fetchone()
        status, req, filled, total_s, done = IntentStatus(r[0]), Decimal(r[1]), Decimal(r[2]), r[3], r[4]
        if status in (S.WOULD, S.REJECTED, S.FILLED, S.NEW):
            return
        total = None if total_s is None else Decimal(total_s)
        new: IntentStatus = status
        if filled > 0:
            if filled >= req or (done and (total is None or filled >= total)):
                new = S.FILLED
            elif status != S.CANCELLED:
                new = S.PARTIAL
        elif done and status in (S.SENT, S.UNKNOWN):
            new = S.CANCELLED if (total is None or total == 0) else status
        if new != status and new in TRANSITIONS[status]:
            self._transition(db, intent_id, new)

    def expire(self, intent_id: str, reason: str) -> None:
        with self.tx() as db:
            self._transition(db, intent_id, S.EXPIRED, last_error=reason[:500])
            db.execute(
                "UPDATE oms_intents SET meta_json=json_set(COALESCE(meta_json,'{}'),'$.venue_done',1) "
                "WHERE intent_id=?",
                (intent_id,),
            )

    # ---- fills -----------------------------------------------------------------------------
    def match_intent_for_fill(self, db: sqlite3.Connection, f: Fill) -> tuple[str | None, str | None]:
        """exchange order id, then a sibling fill's hash, then cloid, then time proximity."""
        if f.oid is not None:
            r = db.execute("SELECT intent_id FROM oms_intents WHERE exchange_order_id=?", (f.oid,)).fetchone()
            if r is None:
                r = db.execute(
                    "SELECT intent_id FROM oms_orders WHERE exchange_order_id=?", (f.oid,)
                ).fetchone()
            if r is not None:
                return str(r[0]), "oid"
        if f.fill_hash:
            r = db.execute(
                "SELECT intent_id FROM oms_fills WHERE fill_hash=? AND intent_id IS NOT NULL LIMIT 1",
                (f.fill_hash,),
            ).fetchone()
            if r is not None:
                return str(r[0]), "hash"
        if f.cloid:
            r = db.execute("SELECT intent_id FROM oms_intents WHERE client_order_id=?", (f.cloid,)).fetchone()
            if r is not None:
                return str(r[0]), "cloid"
        marks = ",".join("?" * len(OPEN_STATUSES))
        rows = db.execute(
            f"SELECT intent_id, COALESCE(sent_ts_ms, created_ts_ms), requested_size, filled_size "
            f"FROM oms_intents WHERE symbol=? AND side=? AND status IN ({marks}) "
            f"AND exchange_order_id IS NULL",
            (f.symbol, f.side, *(s.value for s in OPEN_STATUSES)),
        ).fetchall()
        best: tuple[int, str] | None = None
        for iid, ts, req, filled in rows:
            gap = abs(int(ts) - f.ts_ms)
            if (
                gap <= self.match_ttl_ms
                and Decimal(filled) < Decimal(req)
                and (best is None or gap < best[0])
            ):
                best = (gap, str(iid))
        if best is not None:
            return best[1], "time"
        return None, None

    def ingest_fill(self, raw: Mapping[str, Any], source: str = "poll") -> IngestResult:
        """Record one venue fill exactly once (duplicates by (hash, tid) are ignored) and match it."""
        f = Fill.from_venue(raw)
        with self.tx() as db:
            dup = db.execute(
                "SELECT id FROM oms_fills WHERE fill_hash=? AND fill_tid=?", (f.fill_hash, f.fill_tid)
            ).fetchone()
            if dup is not None:
                return IngestResult(False, int(dup[0]), None, None)
            intent_id, via = self.match_intent_for_fill(db, f)
            action = None
            if intent_id is not None:
                a = db.execute("SELECT action FROM oms_intents WHERE intent_id=?", (intent_id,)).fetchone()
                action = a[0] if a else None
            cur = db.execute(
                "INSERT INTO oms_fills (ts_ms, symbol, intent_id, order_id, cloid, action, side, pos_type, "
                "price, size, notional, fee_usd, fee_token, pnl_usd, fill_hash, fill_tid, matched_via, "
                "match_attempts, first_seen_ms, source, raw_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f.ts_ms,
                    f.symbol,
                    intent_id,
                    f.oid,
                    f.cloid,
                    action,
                    f.side,
                    f.direction,
                    str(f.price),
                    str(f.size),
                    str(f.price * f.size),
                    str(f.fee),
                    f.fee_token,
                    str(f.closed_pnl),
                    f.fill_hash,
                    f.fill_tid,
                    via,
                    1,
                    self.clock(),
                    source,
                    json.dumps(dict(f.raw), default=str),
                ),
            )
            fill_id = int(cur.lastrowid or 0)
            if intent_id is not None:
                self._add_fill_to_intent(db, intent_id, f)
            self.crash("before_fill_commit")
        self.crash("after_fill_commit")
        return IngestResult(True, fill_id, intent_id, via)

    def _add_fill_to_intent(self, db: sqlite3.Connection, intent_id: str, f: Fill) -> None:
        r = db.execute(
            "SELECT filled_size, exchange_order_id FROM oms_intents WHERE intent_id=?", (intent_id,)
        ).fetchone()
        filled = Decimal(r[0]) + f.size
        db.execute("UPDATE oms_intents SET filled_size=? WHERE intent_id=?", (str(filled), intent_id))
        if r[1] is None and f.oid is not None:
            db.execute("UPDATE oms_intents SET exchange_order_id=? WHERE intent_id=?", (f.oid, intent_id))
        st = IntentStatus(
            db.execute("SELECT status FROM oms_intents WHERE intent_id=?", (intent_id,)).fetchone()[0]
        )
        if st in (S.NEW, S.UNKNOWN):
            self._transition(db, intent_id, S.SENT)
        self._settle(db, intent_id)

    def retry_unmatched(
        self,
        *,
        alert_after_ms: int = UNMATCHED_ALERT_AFTER_MS,
        alert_after_attempts: int = UNMATCHED_ALERT_AFTER_ATTEMPTS,
        limit: int = 200,
    ) -> tuple[int, int]:
        """Try to match fills that have no intent yet; alert once about old ones. (matched, alerted)."""
        matched = alerted = 0
        rows = self.db.execute(
            "SELECT id, raw_json, match_attempts, first_seen_ms, alerted FROM oms_fills "
            "WHERE intent_id IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        now = self.clock()
        for fid, raw, attempts, first_seen, was_alerted in rows:
            f = Fill.from_venue(json.loads(raw))
            to_alert = False
            with self.tx() as db:
                intent_id, via = self.match_intent_for_fill(db, f)
                if intent_id is not None:
                    a = db.execute(
                        "SELECT action FROM oms_intents WHERE intent_id=?", (intent_id,)
                    ).fetchone()
                    db.execute(
                        "UPDATE oms_fills SET intent_id=?, matched_via=?, action=?, "
                        "match_attempts=match_attempts+1 WHERE id=?",
                        (intent_id, via, a[0] if a else None, fid),
                    )
                    self._add_fill_to_intent(db, intent_id, f)
                    matched += 1
                else:
                    db.execute("UPDATE oms_fills SET match_attempts=match_attempts+1 WHERE id=?", (fid,))
                    if not was_alerted and (
                        now - int(first_seen) >= alert_after_ms or int(attempts) + 1 >= alert_after_attempts
                    ):
                        db.execute("UPDATE oms_fills SET alerted=1 WHERE id=?", (fid,))
                        self._event(db, "UNMATCHED_FILL", f.symbol, None, f.cloid, f.oid, "alerted", f.raw)
                        to_alert = True
            if to_alert:
                alerted += 1
                self.alert(
                    "unmatched_fill",
                    f"fill {f.symbol} {f.side} {f.size}@{f.price} oid={f.oid} tid={f.fill_tid} has no intent",
                )
        return matched, alerted

    def unmatched_fills(self) -> list[Fill]:
        rows = self.db.execute(
            "SELECT raw_json FROM oms_fills WHERE intent_id IS NULL ORDER BY id"
        ).fetchall()
        return [Fill.from_venue(json.loads(r[0])) for r in rows]

    def fill_keys(self) -> set[tuple[str, int]]:
        return {(str(h), int(t)) for h, t in self.db.execute("SELECT fill_hash, fill_tid FROM oms_fills")}

    def fills_for_kernel(self) -> list[tuple[int, Fill, str | None]]:
        rows = self.db.execute(
            "SELECT id, raw_json, intent_id FROM oms_fills WHERE kernel_applied=0 ORDER BY ts_ms, id"
        ).fetchall()
        return [(int(i), Fill.from_venue(json.loads(raw)), iid) for i, raw, iid in rows]

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
        out: dict[str, Decimal] = {}
        for sym, side, size in self.db.execute("SELECT symbol, side, size FROM oms_fills"):
            d = Decimal(size) if side == "BUY" else -Decimal(size)
            out[sym] = out.get(sym, Decimal(0)) + d
        return {s: v for s, v in out.items() if v != 0}

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
