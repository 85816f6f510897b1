"""Live and dry_live trading: kernel intents -> OMS -> broker adapter -> executor (official SDK).

Interface for the daemon (``daemon/loop.py`` through ``live/execution.py``), kept small on purpose:

* ``LiveTrader.startup()`` once: reconcile with the venue (adopt missed fills, resolve open intents)
  and record ``restart_to_reconciled_ms``.
* ``LiveTrader.tick()`` every loop: gates, dead man's switch (``scheduleCancel`` refreshed, live
  only), user-fill stream drain, periodic reconcile, fill sync.
* ``LiveTrader.execute(intents)`` with kernel intents (``Order``): each is recorded, then sent
  (live) or marked WOULD (dry_live). Entries are refused while the reconciler reports an
  unexplained mismatch.
* ``LiveTrader.account()``: equity and positions from the venue (what sizing must use).

The daemon (``daemon/main.py``) builds it and ``live/execution.py`` plugs it into the engine's
loop; there is no second loop here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from engine.live_gates import GateDecision, evaluate_gates
from engine.oms import LiveOms, log_alert
from engine.oms_reconciler import OmsReconciler, ReconcileReport
from exchange.model import Order
from exchange.venue import DEFAULT_SLIPPAGE, AccountState, Execution, ExecutorError, FillStream
from strategy.broker_adapter import BrokerAdapter, SubmitOutcome

log = logging.getLogger("live.trader")


@dataclass(slots=True)
class TraderConfig:
    base_url: str
    db_path: Path
    want_live: bool = False  # live only if this AND every gate allow it
    slippage: Decimal = DEFAULT_SLIPPAGE
    reconcile_every_s: float = 10.0
    dead_man_ms: int = 60_000  # scheduleCancel horizon, refreshed every tick
    use_ws: bool = True
    sidecar_sock: Path | None = None  # user fills from the sidecar when it serves this account
    min_gap_s: float = 0.25
    retries: int = 2


@dataclass(slots=True)
class TickReport:
    gates: GateDecision
    ws_fills: int = 0
    fills_new: int = 0
    reconciled: ReconcileReport | None = None
    dead_man_set: bool = False
    outcomes: list[SubmitOutcome] = field(default_factory=list)


class Alert(Protocol):
    def __call__(self, kind: str, message: str) -> None: ...


class LiveTrader:
    def __init__(
        self,
        cfg: TraderConfig,
        executor: Execution,
        oms: LiveOms,
        *,
        environ: Mapping[str, str] | None = None,
        alert: Alert = log_alert,
        entries_allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        self.cfg = cfg
        self.ex = executor
        self.oms = oms
        self.environ = environ
        self.alert = alert
        self.entries_allowed = entries_allowed  # the daemon's risk manager / kill switch hook
        self.gates = evaluate_gates(environ, want_live=cfg.want_live)
        self.adapter = BrokerAdapter(
            oms,
            executor,
            live=self.gates.live_orders,
            slippage=cfg.slippage,
            retries=cfg.retries,
            min_gap_s=cfg.min_gap_s,
            alert=alert,
        )
        self.reconciler = OmsReconciler(
            oms, executor, self.adapter, dry_run=not self.gates.live_orders, alert=alert
        )
        self.stream: FillStream | None = None
        self.restart_to_reconciled_ms: float | None = None
        self._last_reconcile = 0.0
        self._t_start = time.perf_counter()

    @property
    def live(self) -> bool:
        return self.gates.live_orders

    # ---- lifecycle -------------------------------------------------------------------------
    def startup(self, t_process_start: float | None = None) -> ReconcileReport:
        t0 = self._t_start if t_process_start is None else t_process_start
        if self.cfg.use_ws:
            self.stream = self.ex.open_fill_stream(self.cfg.sidecar_sock)
        rep = self.reconciler.reconcile()
        self._last_reconcile = time.monotonic()
        self.restart_to_reconciled_ms = (time.perf_counter() - t0) * 1000
        log.info(
            "mode %s (%s); reconciled in %.0f ms: %s",
            self.gates.mode,
            "; ".join(self.gates.problems) or "all gates open",
            self.restart_to_reconciled_ms,
            self.reconciler.summary(),
        )
        return rep

    def shutdown(self) -> None:
        if self.stream is not None:
            self.stream.stop()

    def refresh_gates(self) -> GateDecision:
        """Gates are re-read each tick: closing one (e.g. the hard kill) stops sending at once."""
        g = evaluate_gates(self.environ, want_live=self.cfg.want_live)
        if g.live_orders != self.gates.live_orders:
            self.alert(
                "kill_switch", f"live orders {'enabled' if g.live_orders else 'disabled'}: {g.problems}"
            )
        self.gates = g
        self.adapter.live = g.live_orders
        self.reconciler.dry_run = not g.live_orders
        return g

    def tick(self) -> TickReport:
        rep = TickReport(self.refresh_gates())
        if self.live and self.cfg.dead_man_ms > 0:
            try:
                # Venue time (an accelerated local exchange runs ahead of ours), and the horizon
                # in venue ms too, so it spans the same wall time between two ticks at any speed.
                now = self.ex.venue_time_ms()
                self.ex.schedule_cancel(now + self.ex.venue_span_ms(self.cfg.dead_man_ms))
                rep.dead_man_set = True
            except ExecutorError as exc:
                self.alert("dead_man_switch", f"scheduleCancel failed: {exc}")
        if self.stream is not None:
            self.stream.ensure()
            for f in self.stream.drain():
                rep.ws_fills += int(self.oms.ingest_fill(f, source="ws").new)
        if time.monotonic() - self._last_reconcile >= self.cfg.reconcile_every_s:
            rep.reconciled = self.reconciler.reconcile()
            self._last_reconcile = time.monotonic()
        return rep

    def account(self) -> AccountState:
        return self.ex.account()

    def execute(self, intents: Sequence[Order]) -> list[SubmitOutcome]:
        out: list[SubmitOutcome] = []
        blocked_syms = self.reconciler.blocked_symbols()
        for oi in intents:
            if not oi.closing and (
                self.reconciler.entries_blocked or oi.symbol in blocked_syms or not self.entries_allowed()
            ):
                self.oms.event("ENTRY_BLOCKED", symbol=oi.symbol, result="skipped", detail={"kind": oi.kind})
                out.append(SubmitOutcome(None, None, detail="entries blocked"))
                continue
            try:
                out.append(self.adapter.submit(oi))
            except ExecutorError as exc:
                # every one in the journal: the order_error alert (and its journal line) is rate-limited
                log.warning("order not sent: %s %s: %s", oi.symbol, oi.kind, exc)
                self.alert("order_error", f"{oi.symbol} {oi.kind}: {exc}")
                out.append(SubmitOutcome(None, None, detail=str(exc)))
        if out:
            try:
                self.reconciler.sync_fills()
            except ExecutorError as exc:
                log.warning("fill sync failed (the next reconcile adopts them): %s", exc)
        return out


__all__ = ["LiveTrader", "TickReport", "TraderConfig"]
