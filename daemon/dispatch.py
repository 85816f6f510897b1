"""Dispatch: what happens to one kernel intent, in every mode.

The loop (daemon/loop.py) decides when the kernel steps; the intents it returns come here, in the
kernel's order. Each passes the daemon's gates (the operator's coin, a stale bar, the entries per
loop), then the RiskManager (fails closed), then the execution backend's ``submit``; its fills are
booked (daemon/booking.py) and it becomes one decision row (daemon/decision_log.py) whatever
happened. Venue fills the kernel has not seen are booked here too (:meth:`Dispatch.absorb_pending`).

The per-loop counters live here: the entries used against ``trade.max_entry_orders_per_loop``
and the ids of the fills the kernel took in this loop (the OMS learns them after the commit). The
loop hands in what changes under it: the current kernel (a failed loop replaces it), the loop
number and the loop's mids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bt_runtime

from daemon.booking import Booking, vwap
from daemon.decision_log import DecisionLog, breadth_pct
from daemon.report import LoopReport
from engine.config import StrategyConfig
from engine.execution import ExecResult, Execution
from engine.risk import AccountView, RiskManager
from engine.trading_db import TradingDB
from exchange.model import Order, Quote
from strategy.kernel_orchestrator import KernelOrchestrator


@dataclass(frozen=True)
class Turn:
    """What the loop's state is when it hands intents in."""

    orch: KernelOrchestrator  # the current kernel
    loop: int  # the loop number the decision rows carry
    mids: Mapping[str, float]  # the loop's mids (quotes, the risk account, the live submit)


@dataclass
class Dispatch:
    db: TradingDB
    risk: RiskManager
    exec: Execution
    book: Booking
    decisions: DecisionLog
    model: Callable[..., StrategyConfig]  # the config (of a symbol), typed view
    bbo: Callable[[str], tuple[float | None, float | None]]  # the venue's best bid and ask
    watchlist: Sequence[str]
    snaps: Mapping[str, Mapping[str, Any]]  # the kernel's indicator snapshots, shared with the loop
    fill_at_close: bool  # sub-bar paper mode: fill at the bar or sub-bar close, as the replay
    entries: int = 0  # entries used in this decision (trade.max_entry_orders_per_loop)
    applied_fill_ids: list[int] = field(default_factory=list)  # fills the kernel took this loop

    def begin_loop(self) -> None:
        self.applied_fill_ids = []
        self.begin_decision()

    def begin_decision(self) -> None:
        """The entry limit counts per decision (a main bar or a sub-bar tick), as the kernel's."""
        self.entries = 0

    def account(self, mids: Mapping[str, float]) -> AccountView:
        return AccountView(
            equity=self.exec.equity(mids), open_symbols=frozenset(self.exec.positions),
            total_notional_usd=self.exec.total_notional(mids), total_margin_usd=self.exec.total_margin(),
        )  # fmt: skip

    def execute(
        self,
        turn: Turn,
        intents: Sequence[bt_runtime.Intent],
        now: int,
        rep: LoopReport,
        *,
        phase: str,
        entries_ok: bool,
    ) -> None:
        limit = int(self.model().trade.max_entry_orders_per_loop)
        breadth = breadth_pct({s: self.snaps[s] for s in self.watchlist if s in self.snaps})
        operator = self.exec.operator_symbols() if intents else frozenset()
        for it in intents:
            closing = bool(it.reduce_only)
            extra: dict[str, Any] = {"breadth_pct": breadth, "score": it.score, "kernel_reason": it.reason}
            if it.symbol in operator:  # the operator's coin (manual_trade.py): no entries, no exits
                self.decisions.intent(it, now, turn.loop, "blocked", "operator_position", extra, phase)
                rep.blocked += 1
                continue
            if not closing:
                if not entries_ok:
                    self.decisions.intent(it, now, turn.loop, "rejected", "stale_bar", extra, phase)
                    rep.blocked += 1
                    continue
                if limit and self.entries >= limit:
                    self.decisions.intent(
                        it, now, turn.loop, "blocked", "max_entry_orders_per_loop", extra, phase
                    )
                    rep.blocked += 1
                    continue
            order = Order.from_kernel(it)
            verdict = self.risk.check_order(order, self.account(turn.mids))
            extra["risk"] = {
                "allowed": verdict.allowed,
                "reason": verdict.reason,
                "kill": self.risk.status.label(),
            }
            if not verdict.allowed:
                self.decisions.intent(it, now, turn.loop, "blocked", verdict.reason, extra, phase)
                rep.blocked += 1
                continue
            self.fill(turn, it, order, now, rep, extra, phase)

    def quote(self, symbol: str, fallback: float, mids: Mapping[str, float]) -> Quote:
        mid = mids.get(symbol) or fallback
        bid, ask = self.bbo(symbol) if self.model(symbol).trade.use_bbo_for_fills else (None, None)
        return Quote(symbol, mid, bid, ask)

    def fill(
        self,
        turn: Turn,
        it: bt_runtime.Intent,
        order: Order,
        now: int,
        rep: LoopReport,
        extra: dict[str, Any],
        phase: str,
    ) -> None:
        """Submit one order that passed the gates and the risk check; book its fills; one decision row."""
        if self.fill_at_close:
            quote = Quote(it.symbol, it.price, None, None)  # the bar or sub-bar close, as the replay
        else:
            quote = self.quote(it.symbol, it.price, turn.mids)
        out: ExecResult = self.exec.submit(order, quote, now, turn.mids)
        if out.oms_intent_id:
            extra["oms_intent_id"] = out.oms_intent_id
        if not out.fills:
            if out.status in ("rejected", "blocked"):
                rep.rejected += out.status == "rejected"
                rep.blocked += out.status == "blocked"
            elif not it.reduce_only:  # a dry_live WOULD (or an order still working) uses the entry slot
                self.entries += 1
            self.decisions.intent(it, now, turn.loop, out.status, out.reason, extra, phase)
            return
        trade_id = self.book.book_fills(turn.orch, out.fills, reason=it.reason, kind=it.kind, score=it.score)
        self.applied_fill_ids.extend(out.fill_ids)
        f = out.fills[-1]
        extra["fill"] = {
            "price": float(f.price) if len(out.fills) == 1 else vwap(out.fills),
            "size": sum(float(x.size) for x in out.fills),
            "fee": sum(float(x.fee) for x in out.fills),
            "pnl": sum(float(x.pnl) for x in out.fills),
            "slippage_bps": f.slippage_bps,
            "fills": len(out.fills),
        }
        self.decisions.intent(
            it, f.ts_ms, turn.loop, "executed", "", extra, phase, trade_id=trade_id, action=f.action
        )
        rep.fills += len(out.fills)
        if not it.reduce_only:
            self.entries += 1

    def absorb_pending(self, orch: KernelOrchestrator, now: int, rep: LoopReport) -> None:
        """Venue fills the kernel has not seen (adopted by the reconciler, the user stream, or
        after a restart): booked here, in the loop's transaction, each exactly once (a fill is
        booked iff its trades row exists, and that row commits with the kernel state)."""
        for p in self.exec.pending_fills(self.book.recorded):
            self.book.book_fills(orch, p.fills, reason="adopted", kind=p.fills[0].action.lower(), score=0.0)
            self.applied_fill_ids.extend(p.fill_ids)
            rep.fills += len(p.fills)
            self.db.audit(
                "FILL_ADOPTED", symbol=p.fills[0].symbol, ts_ms=now,
                data={"oms_intent_id": p.oms_intent_id, "fills": len(p.fills),
                      "size": sum(float(f.size) for f in p.fills)},
            )  # fmt: skip


__all__ = ["Dispatch", "Turn"]
