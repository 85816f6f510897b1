"""LiveOms: the durable order-management system for live and dry_live trading.

Three modules: the vocabulary (``engine/oms_model.py``: statuses, intents, fills, ids), the SQLite
store (``engine/oms_store.py``: tables, kv, reads, events; every state change is one transaction,
so a SIGKILL at any point leaves either the old or the new state) and, here, the intent status
machine and fill matching (:class:`LiveOms`). Everything is importable from here as before.

Intent status machine::

    NEW -> SENT | WOULD | REJECTED | UNKNOWN | EXPIRED
    UNKNOWN -> SENT | PARTIAL | FILLED | REJECTED | EXPIRED | CANCELLED
    SENT -> PARTIAL | FILLED | CANCELLED | EXPIRED
    PARTIAL -> FILLED | CANCELLED | EXPIRED
    EXPIRED -> PARTIAL | FILLED            (a late fill of an order we gave up on is still counted)

``FILLED`` means the order is finished at the venue with fills (``filled_size`` says how much; an
IOC that filled part of its size and cancelled the rest is FILLED with the smaller size);
``CANCELLED`` means finished with no fill.

The intent row, with its deterministic cloid (the venue's format: ``client_ids``, a
:class:`exchange.venue.ClientOrderIds`), is committed **before** the order is sent, so a
restart recognises an order that went out before the crash (by cloid at the venue).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from engine.oms_model import (
    OPEN_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    IngestResult,
    Intent,
    IntentStatus,
    S,
    dedupe_key,
    intent_id_for,
    now_ms,
)
from engine.oms_store import SCHEMA, OmsStore, open_private_db
from exchange.model import Fill, Order
from exchange.venue import ClientOrderIds

log = logging.getLogger(__name__)

DEFAULT_MATCH_TTL_MS = 10 * 60 * 1000
UNMATCHED_ALERT_AFTER_MS = 60_000
UNMATCHED_ALERT_AFTER_ATTEMPTS = 3


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


class LiveOms(OmsStore):
    """The OMS: the intent status machine and fill matching over :class:`OmsStore`. One instance
    per process; methods are not re-entrant across threads. ``client_ids`` is the venue's cloid
    format (Hyperliquid's: exchange/hl_cloid.py), given by whoever wires the venue in."""

    def __init__(
        self,
        path: Path,
        *,
        client_ids: ClientOrderIds,
        alert: Alerter = log_alert,
        crash: Callable[[str], None] = no_crash,
        match_ttl_ms: int = DEFAULT_MATCH_TTL_MS,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__(path, clock_ms=clock_ms)
        self.alert = alert
        self.crash = crash
        self.client_ids = client_ids
        self.match_ttl_ms = match_ttl_ms

    # ---- intents: the status machine -----------------------------------------------------
    def create_intent(self, order: Order) -> tuple[Intent, bool]:
        """Commit a NEW intent (durably) and return it, or return the existing one for this decision.
        ``order`` is the order as it will be sent: its quantity rounded to the venue's lot."""
        action, side = order.kind.upper(), "BUY" if order.is_buy else "SELL"
        key = dedupe_key(action, order.symbol, side, order.decision_ts_ms)
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
                    order.symbol,
                    action,
                    side,
                    str(order.quantity),
                    None if order.notional_usd is None else str(order.notional_usd),
                    None if order.price is None else str(order.price),
                    int(order.reduce_only),
                    None if order.leverage is None else str(order.leverage),
                    int(order.decision_ts_ms),
                    order.kernel_intent_id,
                    order.reason_code,
                    order.reason_code,
                    order.confidence,
                    S.NEW.value,
                    key,
                    self.client_ids.for_intent(iid),
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

    def ingest_fill(self, f: Fill, source: str = "poll") -> IngestResult:
        """Record one venue fill exactly once (duplicates by (hash, tid) are ignored) and match it."""
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
                    str(f.notional),
                    str(f.fee),
                    f.fee_token,
                    str(f.pnl),
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
        rows = self.unmatched_fill_rows(limit)
        now = self.clock()
        for fid, f, attempts, first_seen, was_alerted in rows:
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


__all__ = [
    "DEFAULT_MATCH_TTL_MS",
    "OPEN_STATUSES",
    "SCHEMA",
    "TRANSITIONS",
    "UNMATCHED_ALERT_AFTER_ATTEMPTS",
    "UNMATCHED_ALERT_AFTER_MS",
    "Alerter",
    "CrashPoints",
    "IllegalTransition",
    "IngestResult",
    "Intent",
    "IntentStatus",
    "LiveOms",
    "OmsStore",
    "S",
    "dedupe_key",
    "intent_id_for",
    "log_alert",
    "no_crash",
    "now_ms",
    "open_private_db",
]
