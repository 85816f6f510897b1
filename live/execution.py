"""LiveExecution: the daemon's execution backend for dry_live and live (engine/execution.py).

A kernel intent that passed the risk manager goes to :class:`~live.trader.LiveTrader`: the OMS
commits the intent (deterministic cloid) before anything is sent, the broker adapter sends it as
an IOC through the official-SDK executor (live) or marks it WOULD (dry_live), and the venue's fills
come back through ``userFillsByTime`` / the user stream into ``oms_fills`` (once each).

The account is the venue's: equity, positions and margin are read from ``clearinghouseState`` at
the start of every loop. Fills reach the kernel exactly once: the engine books a fill (kernel
``apply_fill`` + a ``trades`` row, UNIQUE(fill_hash, fill_tid)) in the loop's transaction, which
also commits the kernel state; a fill is booked iff its trades row exists. The OMS's
``kernel_applied`` marks are set after that commit (bookkeeping for tools; a crash in between
only means the next loop sees the row and marks it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from engine.execution import ExecResult, PendingFills
from engine.oms import Intent, IntentStatus
from engine.operator_positions import operator_symbols
from exchange.model import Fill, Order, Position, Quote
from exchange.venue import AccountState
from live.trader import LiveTrader

log = logging.getLogger("live.execution")
DAY_MS = 86_400_000
SUMMARY_KEY = "daily_summary_day"


def daily_summary(trader: LiveTrader, day: int, equity: float) -> str:
    """One line for the UTC day number ``day`` (ms // DAY_MS): realised PnL, fees, fills."""
    lo, hi = day * DAY_MS, (day + 1) * DAY_MS
    pnl, fees, n = trader.oms.fill_totals(lo, hi)
    date = datetime.fromtimestamp(lo / 1000, UTC).strftime("%Y-%m-%d")
    return (
        f"daily PnL {date} UTC: realised {pnl:+.2f} USD, fees {fees:.2f} USD, net {pnl - fees:+.2f} USD, "
        f"{n} fills, equity {equity:.2f} USD"
    )


class LiveExecution:
    state_key = "live_account"
    simulates_funding = False  # the venue books funding; the account is read from it

    def __init__(
        self,
        trader: LiveTrader,
        *,
        mode: str,
        recorded: Callable[[str, int], bool],
        alert: Callable[[str, str], None],
    ) -> None:
        self.trader = trader
        self.mode = mode
        self.recorded = recorded  # (fill_hash, fill_tid) already booked by the engine
        self.alert = alert
        self._acct: AccountState | None = None
        self._stale: set[int] = set()  # booked in a committed loop, not yet marked in the OMS
        self._positions: dict[str, Position] = {}

    # ---- account (the venue's) -------------------------------------------------------------
    def _sync(self) -> AccountState:
        acct = self.trader.account()
        self._acct = acct
        out: dict[str, Position] = {}
        for s, p in sorted(acct.positions.items()):
            lev = float(max(1, p.leverage))
            side: Literal["long", "short"] = "long" if p.size > 0 else "short"
            out[s] = Position(s, side, float(abs(p.size)), float(p.entry_px), lev, 0)
        self._positions = out
        return acct

    @property
    def positions(self) -> Mapping[str, Position]:
        return self._positions

    def initial_cash(self) -> float:
        return float((self._acct or self._sync()).account_value)

    def equity(self, mids: Mapping[str, float]) -> float:
        return float(self._acct.account_value) if self._acct is not None else 0.0

    def total_notional(self, mids: Mapping[str, float]) -> float:
        return sum(p.size * (mids.get(s) or p.entry_price) for s, p in self._positions.items())

    def total_margin(self) -> float:
        return float(self._acct.total_margin_used) if self._acct is not None else 0.0

    def cash(self) -> float:
        return self.equity({})

    # ---- loop ------------------------------------------------------------------------------
    def begin_loop(self, now_ms: int) -> None:
        """Gates, the dead man's switch (live), user-stream fills, the periodic reconcile; then the
        venue account the loop sizes and risk-checks against."""
        self._stale.clear()  # a failed loop may have seen rows it then rolled back
        self.trader.tick()
        self._sync()
        self._maybe_daily_summary(now_ms)

    def _maybe_daily_summary(self, now_ms: int) -> None:
        prev = now_ms // DAY_MS - 1
        done = self.trader.oms.get_kv(SUMMARY_KEY)
        if done is None:  # first run: start counting from today
            self.trader.oms.set_kv(SUMMARY_KEY, str(prev))
            return
        if int(done) >= prev:
            return
        self.alert("daily_pnl", daily_summary(self.trader, prev, self.equity({})))
        self.trader.oms.set_kv(SUMMARY_KEY, str(prev))

    def operator_symbols(self) -> frozenset[str]:
        """Coins marked as the operator's (manual_trade.py open): read from the OMS at each call,
        so a mark written by the tool counts from the daemon's next order on."""
        return frozenset(operator_symbols(self.trader.oms))

    def flagged_symbols(self) -> frozenset[str]:
        """Symbols the OMS reconciler already flags and alerts on (a foreign position, an OMS vs
        venue mismatch, unmatched fills): they take no new entries until explained."""
        return frozenset(self.trader.reconciler.blocked_symbols())

    def submit(self, order: Order, quote: Quote, now_ms: int, mids: Mapping[str, float]) -> ExecResult:
        out = self.trader.execute([order])[0]
        if out.intent_id is None:
            blocked = out.detail == "entries blocked"
            reason = "oms_entries_blocked" if blocked else f"order_error: {out.detail}"[:200]
            return ExecResult("blocked" if blocked else "rejected", reason=reason)
        if out.status is IntentStatus.WOULD:
            return ExecResult("would", reason="dry_live", oms_intent_id=out.intent_id)
        if out.status is IntentStatus.REJECTED:
            return ExecResult("rejected", reason=f"venue: {out.detail}"[:200], oms_intent_id=out.intent_id)
        intent = self.trader.oms.intent(out.intent_id)
        ids, fills = self._unbooked(self.trader.oms.fills_of_intent(out.intent_id), intent, quote.mid)
        if fills:
            return ExecResult("filled", fills, "", out.intent_id, ids)
        if out.deduped:  # a decision seen before (a replay after a restart): never sent twice
            return ExecResult("duplicate", [], f"decision already recorded ({out.status})", out.intent_id)
        if out.status is IntentStatus.CANCELLED:
            return ExecResult("rejected", [], "no fill (IOC cancelled)", out.intent_id)
        return ExecResult("pending", [], f"no fill yet ({out.status})", out.intent_id)

    def _unbooked(
        self, rows: Sequence[tuple[int, Fill, bool]], intent: Intent | None, ref: float
    ) -> tuple[list[int], list[Fill]]:
        """Of an intent's OMS fills (``fills_of_intent``), those with no trades row yet, completed."""
        ids, fills = [], []
        for fid, f, _applied in rows:
            if self.recorded(f.fill_hash, f.fill_tid):
                continue
            ids.append(fid)
            fills.append(self._as_fill(f, intent, ref))
        return ids, fills

    def _as_fill(self, f: Fill, intent: Intent | None, ref: float) -> Fill:
        """The venue's fill with its booking facts, from the OMS intent it matched (the same value,
        completed: nothing of the venue's changes)."""
        px, sz = float(f.price), float(f.size)
        d = f.direction.lower()
        if "long" in d or "short" in d:
            pos_side: Literal["long", "short"] = "long" if "long" in d else "short"
        else:
            opening = intent is None or not intent.reduce_only
            pos_side = "long" if f.is_buy == opening else "short"
        lev = float(intent.leverage) if intent and intent.leverage and intent.leverage >= 1 else 1.0
        ref = ref if ref > 0 else px
        return replace(
            f, action=(intent.action if intent else "ADOPT"), position_side=pos_side, ref_price=ref,
            slippage_bps=(px - ref) / ref * 10_000.0 * (1 if f.is_buy else -1), leverage=lev,
            margin_used=px * sz / lev, intent_id=int(intent.kernel_intent_id or 0) if intent else 0,
            reason_code=(intent.action.lower() if intent else "adopted"),
            confidence=(intent.confidence if intent else "medium"), balance_after=self.equity({}),
        )  # fmt: skip

    def pending_fills(self, recorded: Any = None) -> list[PendingFills]:
        """Matched OMS fills the kernel has not absorbed, grouped by intent (unmatched fills wait
        for a match: the reconciler retries and alerts; they are never dropped)."""
        oms = self.trader.oms
        # In the venue's order: a close and the next entry both pending (a crash before the loop
        # that booked them committed) must reach the kernel close first, or it books the entry
        # against the open position and the close as a new one (kernel != venue).
        out: list[PendingFills] = []
        stale: list[int] = []
        for iid in oms.intents_with_unapplied_fills():
            intent = oms.intent(iid)
            rows = oms.fills_of_intent(iid)
            ids, fills = self._unbooked(rows, intent, 0.0)
            pending = {fid for fid, _f, applied in rows if not applied}
            # Booked but not marked: a crash between the trades commit and the mark, or booked
            # earlier in this (uncommitted) loop. Marked only once the loop has committed.
            stale.extend(sorted(pending - set(ids)))
            if fills:
                out.append(PendingFills(iid, tuple(fills), tuple(ids)))
        self._stale.update(stale)
        return out

    def committed(self, kernel_state: Callable[[], str], fill_ids: Sequence[int]) -> None:
        ids = sorted(set(fill_ids) | self._stale)
        self._stale.clear()
        if ids:
            self.trader.oms.commit_kernel_state(kernel_state(), ids)

    def apply_funding(self, symbol: str, rate: float, mark: float, ts_ms: int) -> float:
        return 0.0  # booked by the venue

    def to_json(self) -> str:
        a = self._acct
        return json.dumps(
            {
                "account_value": str(a.account_value) if a else "0",
                "positions": {s: str(p.size) for s, p in (a.positions.items() if a else [])},
                "operator": sorted(self.operator_symbols()),  # for the monitor
                "oms": str(self.trader.oms.path),
            },
            sort_keys=True,
        )

    def load_json(self, text: str) -> None:
        return None  # the venue is the account: nothing to restore from our snapshot

    def reset(self) -> None:
        return None

    def close(self) -> None:
        self.trader.shutdown()

    def crash(self, point: str) -> None:
        self.trader.oms.crash(point)


__all__ = ["LiveExecution", "daily_summary"]
