"""Booking: what a fill or a funding payment changes, written once for paper and live.

* :meth:`Booking.book_fills`: one order's fills go to the kernel as one ``apply_fill`` (several
  venue fills of one order are one kernel fill at their average price) and to the trades table, a
  row per fill, in the loop's transaction.
* :meth:`Booking.funding` / :meth:`Booking.funding_until`: paper funding at the venue's hourly
  rates, once per loop (a mark at the loop's mids) or, in sub-bar mode, per tick (at the latest
  bar or sub-bar close), each payment booked in the paper account, the kernel and the trades table.

The loop (daemon/loop.py) owns the kernel; it hands the current one in, as a failed loop replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon.decision_log import CONF_RANK
from daemon.sub_bar_state import SubBarState
from engine.config.view import StrategyConfig
from engine.execution import Execution
from engine.paper_trader import PaperTrader
from engine.risk import RiskManager
from engine.trading_db import TradeRow, TradingDB
from exchange.model import Fill

if TYPE_CHECKING:
    from strategy.kernel_orchestrator import KernelOrchestrator

log = logging.getLogger("daemon.loop")
HOUR_MS = 3_600_000


def vwap(fills: Sequence[Fill]) -> float:
    size = sum(float(f.size) for f in fills)
    return sum(float(f.price) * float(f.size) for f in fills) / size if size else float(fills[-1].price)


@dataclass
class Booking:
    db: TradingDB
    risk: RiskManager
    exec: Execution
    paper: PaperTrader | None  # paper mode's trader (None in dry_live/live)
    cfg: Callable[[str], StrategyConfig]  # the config of a symbol (typed view)
    funding_history: Callable[[str, int, int], list[tuple[int, float]]]
    alert: Callable[[str, str], None]

    def book_fills(
        self, orch: KernelOrchestrator, fills: Sequence[Fill], *, reason: str, kind: str, score: float
    ) -> int | None:
        """Feed one order's fills to the kernel and store a trades row per fill. Returns the first
        new trade id."""
        first = fills[0]
        size = sum(float(f.size) for f in fills)  # the kernel and the trades table are in floats
        orch.kernel.apply_fill(
            first.symbol, "buy" if first.is_buy else "sell", size, vwap(fills), sum(float(f.fee) for f in fills),
            fills[-1].ts_ms, first.confidence if first.confidence in CONF_RANK else "medium",
            max(1.0, first.leverage), first.intent_id,
        )  # fmt: skip
        if self.paper is not None:
            drift = abs(orch.kernel.cash - self.paper.balance)
            if drift > 1e-6 * max(1.0, abs(self.paper.balance)):
                log.warning(
                    "kernel cash %.6f differs from paper cash %.6f", orch.kernel.cash, self.paper.balance
                )
        kpos = orch.positions().get(first.symbol)
        trade_id: int | None = None
        for f in fills:
            self.risk.record_slippage(f.slippage_bps)
            fee_rate = (
                self.paper.taker_fee_bps / 10_000
                if self.paper is not None
                else float(f.fee) / max(float(f.notional), 1e-12)
            )
            tid = self.db.insert_trade(
                TradeRow(
                    ts_ms=f.ts_ms, symbol=f.symbol, type=f.position_side.upper(), action=f.action,
                    price=float(f.price), size=float(f.size), notional=float(f.notional), fill_hash=f.fill_hash,
                    fill_tid=f.fill_tid, reason=reason, reason_code=f.reason_code, confidence=f.confidence,
                    pnl=float(f.pnl), fee_usd=float(f.fee),
                    fee_rate=fee_rate, balance=f.balance_after,
                    entry_atr=kpos.entry_atr if kpos is not None else 0.0, leverage=f.leverage, margin_used=f.margin_used,
                    meta={"intent_id": f.intent_id, "kind": kind, "ref_price": f.ref_price,
                          "slippage_bps": round(f.slippage_bps, 4), "score": score},
                )
            )  # fmt: skip
            trade_id = trade_id if trade_id is not None else tid
            log.info(
                "fill %s %s %s %.6g @ %.6g fee %.4f pnl %+.4f (%s)",
                f.action, f.position_side, f.symbol, float(f.size), float(f.price), float(f.fee), float(f.pnl),
                f.reason_code,
            )  # fmt: skip
            if self.paper is None:
                self.alert(
                    "fill",
                    f"{f.action} {f.position_side} {f.symbol} {float(f.size):g} @ {float(f.price):g} "
                    f"pnl {float(f.pnl):+.2f}",
                )
        return trade_id

    def recorded(self, fill_hash: str, fill_tid: int) -> bool:
        """Whether a fill is booked (its trades row exists)."""
        row = self.db.conn.execute(
            "SELECT 1 FROM trades WHERE fill_hash=? AND fill_tid=?", (fill_hash, int(fill_tid))
        ).fetchone()
        return row is not None

    # ---- paper funding -----------------------------------------------------------------------
    def funding(self, orch: KernelOrchestrator, now: int, mids: Mapping[str, float]) -> None:
        """Funding hours since each position's last payment, marked at the loop's mid."""
        assert self.paper is not None
        for sym, pos in sorted(self.paper.positions.items()):
            if not self.cfg(sym).trade.enable_funding:
                continue
            if now // HOUR_MS <= pos.last_funding_ms // HOUR_MS:
                continue
            mark = mids.get(sym) or pos.entry_price
            for t, rate in self.funding_history(sym, pos.last_funding_ms + 1, now):
                if t <= pos.last_funding_ms or t > now:
                    continue
                paid = self.paper.apply_funding(sym, rate, mark, t)
                orch.on_funding(sym, rate, mark, t)
                self._funding_row(sym, pos, t, mark, paid, rate)
            pos.last_funding_ms = max(pos.last_funding_ms, now // HOUR_MS * HOUR_MS)

    def funding_until(self, orch: KernelOrchestrator, sub: SubBarState, until: int) -> None:
        """Sub-bar mode (paper): funding events in ``(funded_to, until]`` on the positions held now,
        in (time, symbol) order, at each symbol's latest close."""
        lo = sub.funded_to
        if lo is not None and until // HOUR_MS * HOUR_MS <= lo:
            return  # no funding hour in (lo, until]
        sub.funded_to = until
        if self.paper is None or lo is None:
            return
        events: list[tuple[int, str, float]] = []
        for sym in sorted(self.paper.positions):
            if self.cfg(sym).trade.enable_funding:
                events += [
                    (t, sym, r) for t, r in self.funding_history(sym, lo + 1, until) if lo < t <= until
                ]
        for t, sym, rate in sorted(events):
            pos = self.paper.positions.get(sym)
            px = sub.last_px.get(sym)
            if pos is None or not px:
                continue
            paid = self.paper.apply_funding(sym, rate, px, t)
            orch.on_funding(sym, rate, px, t)
            self._funding_row(sym, pos, t, px, paid, rate)

    def _funding_row(self, sym: str, pos: Any, t: int, mark: float, paid: float, rate: float) -> None:
        assert self.paper is not None
        self.db.insert_trade(
            TradeRow(
                ts_ms=t, symbol=sym, type=pos.side.upper(), action="FUNDING", price=mark, size=pos.size,
                notional=pos.size * mark, fill_hash=f"funding|{sym}|{t}", fill_tid=0, pnl=paid,
                reason="funding", reason_code="funding", balance=self.paper.balance,
                leverage=pos.leverage, margin_used=pos.margin_used, meta={"rate": rate},
            )
        )  # fmt: skip


__all__ = ["HOUR_MS", "Booking", "vwap"]
