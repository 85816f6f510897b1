"""Compare the OMS with the venue and repair what can be repaired.

At start and every ``AI_QUANT_OMS_RECONCILE_SECS``-like interval (the caller decides):

1. **Fills**: ``userFillsByTime`` from the last seen fill time (minus an overlap) is ingested; the
   OMS ignores fills it already has (UNIQUE(fill_hash, fill_tid)), so fills missed while the daemon
   was down are adopted and nothing is counted twice.
2. **Intents**: NEW/UNKNOWN intents and SENT/PARTIAL ones the venue may have finished are resolved
   through ``orderStatus`` (never re-sent).
3. **Unmatched fills** are matched again; old ones raise one alert each (they are never dropped).
   A symbol with unmatched fills (e.g. an order someone else placed on the account) takes no new
   entries until they are explained.
4. **Open orders**: bot orders (cloid prefix) older than ``stale_order_ms`` are cancelled (not in
   dry_live); orders without our prefix are flagged once as FOREIGN_ORDER.
5. **Positions**: OMS (sum of fills) vs venue. A symbol with a venue position and no OMS fills is
   flagged FOREIGN_POSITION; any other difference is a MISMATCH. While an unexplained mismatch
   persists, :attr:`OmsReconciler.entries_blocked` is true and the trader opens nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from engine.oms import Intent, IntentStatus, LiveOms, log_alert
from exchange.venue import Execution, ExecutorError

log = logging.getLogger(__name__)

FILL_CURSOR_KEY = "fill_cursor_ms"
DEFAULT_STALE_ORDER_MS = 30_000
DEFAULT_FILL_OVERLAP_MS = 60_000


class IntentResolver(Protocol):
    """What the reconciler needs of the broker adapter (strategy.broker_adapter.BrokerAdapter):
    settle an open intent from the venue's orderStatus by cloid, never sending an order."""

    def resolve(self, intent: Intent) -> Intent: ...


@dataclass(slots=True)
class ReconcileReport:
    ts_ms: int
    duration_ms: float = 0.0
    fills_new: int = 0
    fills_duplicate: int = 0
    intents_resolved: int = 0
    unmatched_matched: int = 0
    unmatched_alerted: int = 0
    stale_cancelled: int = 0
    foreign_orders: int = 0
    foreign_positions: list[str] = field(default_factory=list)
    mismatches: dict[str, tuple[str, str]] = field(default_factory=dict)
    unmatched_symbols: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def entries_blocked(self) -> bool:
        return bool(self.mismatches) or not self.ok


class OmsReconciler:
    def __init__(
        self,
        oms: LiveOms,
        executor: Execution,
        adapter: IntentResolver,
        *,
        dry_run: bool,
        stale_order_ms: int = DEFAULT_STALE_ORDER_MS,
        fill_overlap_ms: int = DEFAULT_FILL_OVERLAP_MS,
        initial_fill_start_ms: int = 0,
        alert: Callable[[str, str], None] = log_alert,
    ) -> None:
        self.oms = oms
        self.ex = executor
        self.adapter = adapter
        self.dry_run = dry_run
        self.stale_order_ms = stale_order_ms
        self.fill_overlap_ms = fill_overlap_ms
        self.initial_fill_start_ms = initial_fill_start_ms
        self.alert = alert
        self.last: ReconcileReport | None = None
        self._flagged_foreign: set[int] = set()
        self._alerted_mismatch: set[str] = set()
        self._gate: tuple[bool, tuple[str, ...]] = (False, ())

    @property
    def entries_blocked(self) -> bool:
        return self.last is None or self.last.entries_blocked

    def blocked_symbols(self) -> set[str]:
        if self.last is None:
            return set()
        return set(self.last.mismatches) | set(self.last.foreign_positions) | set(self.last.unmatched_symbols)

    # ---- fills -----------------------------------------------------------------------------
    def sync_fills(self) -> tuple[int, int]:
        """Ingest venue fills since the cursor (minus overlap). Returns (new, duplicates)."""
        cursor = self.oms.get_kv(FILL_CURSOR_KEY)
        start = self.initial_fill_start_ms if cursor is None else max(0, int(cursor) - self.fill_overlap_ms)
        fills = self.ex.fills_by_time(start)
        new = dup = 0
        newest = int(cursor) if cursor is not None else 0
        for f in sorted(fills, key=lambda x: (x.ts_ms, x.fill_tid)):
            res = self.oms.ingest_fill(f, source="userFillsByTime")
            new += int(res.new)
            dup += int(not res.new)
            newest = max(newest, f.ts_ms)
        if fills and str(newest) != cursor:
            self.oms.set_kv(FILL_CURSOR_KEY, str(newest))
        return new, dup

    # ---- full pass -------------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        t0 = time.perf_counter()
        rep = ReconcileReport(ts_ms=self.oms.clock())
        try:
            self._resolve_intents(rep)
            rep.fills_new, rep.fills_duplicate = self.sync_fills()
            self._resolve_intents(rep, only_open=True)
            rep.unmatched_matched, rep.unmatched_alerted = self.oms.retry_unmatched()
            rep.unmatched_symbols = sorted({f.symbol for f in self.oms.unmatched_fills()})
            self._orders(rep)
            self._positions(rep)
        except ExecutorError as exc:
            rep.ok = False
            log.warning("reconcile incomplete: %s", exc)
            self.oms.event("RECONCILE_FAILED", result="error", detail={"error": str(exc)[:300]})
        rep.duration_ms = (time.perf_counter() - t0) * 1000
        self.last = rep
        gate = (rep.entries_blocked, tuple(sorted(self.blocked_symbols())))
        if gate != self._gate:  # one event per change of what entries are refused
            self._gate = gate
            self.oms.event(
                "ENTRY_GATE", result="blocked" if gate[0] or gate[1] else "open",
                detail={"all": gate[0], "symbols": list(gate[1])},
            )  # fmt: skip
        return rep

    def _resolve_intents(self, rep: ReconcileReport, only_open: bool = False) -> None:
        statuses = (
            (IntentStatus.SENT, IntentStatus.PARTIAL)
            if only_open
            else (IntentStatus.NEW, IntentStatus.UNKNOWN)
        )
        for intent in self.oms.intents(statuses):
            if only_open and self.oms.venue_done(intent.intent_id):
                continue
            before = intent.status
            after = self.adapter.resolve(intent)
            rep.intents_resolved += int(after.status != before)

    def _orders(self, rep: ReconcileReport) -> None:
        orders = self.ex.open_orders()
        self.oms.upsert_open_orders(orders)
        now = self.oms.clock()
        for row in self.oms.open_orders():
            oid, cloid, sym = int(row["exchange_order_id"]), row["cloid"], str(row["symbol"])
            if self.oms.client_ids.is_ours(cloid):
                if now - int(row["first_seen_ms"]) >= self.stale_order_ms and not self.dry_run:
                    try:
                        ok = self.ex.cancel(sym, oid)
                    except ExecutorError as exc:
                        ok = False
                        log.warning("stale cancel %s failed: %s", oid, exc)
                    rep.stale_cancelled += int(ok)
                    self.oms.event(
                        "STALE_CANCEL",
                        symbol=sym,
                        intent_id=row["intent_id"],
                        cloid=cloid,
                        oid=oid,
                        result="cancelled" if ok else "failed",
                    )
                    if ok and row["intent_id"]:
                        intent = self.oms.intent(str(row["intent_id"]))
                        if intent is not None:
                            self.adapter.resolve(intent)
            elif oid not in self._flagged_foreign:
                self._flagged_foreign.add(oid)
                rep.foreign_orders += 1
                self.oms.event("FOREIGN_ORDER", symbol=sym, cloid=cloid, oid=oid, result="flagged")

    def _positions(self, rep: ReconcileReport) -> None:
        venue = {s: p.size for s, p in self.ex.positions().items()}
        ours = self.oms.positions()
        traded = self.oms.traded_symbols()
        for sym in sorted(set(venue) | set(ours)):
            v, o = venue.get(sym, Decimal(0)), ours.get(sym, Decimal(0))
            if v == o:
                self._alerted_mismatch.discard(sym)
                continue
            if sym not in traded:
                rep.foreign_positions.append(sym)
                kind = "FOREIGN_POSITION"
            else:
                rep.mismatches[sym] = (str(o), str(v))
                kind = "MISMATCH"
            if sym not in self._alerted_mismatch:
                self._alerted_mismatch.add(sym)
                self.oms.event(kind, symbol=sym, result="flagged", detail={"oms": str(o), "venue": str(v)})
                self.alert("reconcile_mismatch", f"{kind} {sym}: oms {o} venue {v}")

    def summary(self) -> str:
        r = self.last
        if r is None:
            return "not reconciled yet"
        return json.dumps(
            {
                "fills_new": r.fills_new,
                "fills_duplicate": r.fills_duplicate,
                "intents_resolved": r.intents_resolved,
                "stale_cancelled": r.stale_cancelled,
                "foreign_positions": r.foreign_positions,
                "mismatches": r.mismatches,
                "blocked": r.entries_blocked,
                "ms": round(r.duration_ms, 1),
            }
        )
