"""Live and dry_live trading: kernel intents -> OMS -> broker adapter -> executor (official SDK).

Interface for the daemon (``engine/core.py``), kept small on purpose:

* ``LiveTrader.startup()`` once: reconcile with the venue (adopt missed fills, resolve open intents)
  and record ``restart_to_reconciled_ms``.
* ``LiveTrader.tick()`` every loop: gates, dead man's switch (``scheduleCancel`` refreshed, live
  only), user-fill stream drain, periodic reconcile, fill sync.
* ``LiveTrader.execute(intents)`` with kernel intents (``OrderIntent``): each is recorded, then sent
  (live) or marked WOULD (dry_live). Entries are refused while the reconciler reports an
  unexplained mismatch.
* ``LiveTrader.account()``: equity and positions from the venue (what sizing must use).

Until the daemon lands, ``python -m live.trader`` runs its own loop with :class:`KernelIntentSource`
(the Rust kernel in ``fill_mode="external"``; real fills are fed back with ``apply_fill`` exactly
once, committed with the kernel state in one OMS transaction).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from engine.live_gates import GateDecision, evaluate_gates
from engine.oms import LiveOms, log_alert, no_crash
from engine.oms_reconciler import OmsReconciler, ReconcileReport
from exchange.executor import (
    DEFAULT_SLIPPAGE,
    AccountState,
    ExecutorError,
    HyperliquidExecutor,
    MonotonicNonce,
)
from exchange.ws import FillStream, SidecarUserFills, UserFillStream
from strategy.broker_adapter import BrokerAdapter, OrderIntent, SubmitOutcome

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
        executor: HyperliquidExecutor,
        oms: LiveOms,
        *,
        environ: Mapping[str, str] | None = None,
        alert: Alert = log_alert,
        crash: Callable[[str], None] = no_crash,
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
            crash=crash,
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
    def _open_stream(self) -> FillStream | None:
        """The sidecar's user fills where it serves this account, else the SDK's own WebSocket;
        None if neither starts (the reconciler's userFillsByTime pass still adopts every fill)."""
        sock = self.cfg.sidecar_sock
        if sock is not None and sock.exists():
            side = SidecarUserFills(sock, self.ex.address, self.cfg.base_url)
            try:
                side.start()
                log.info("user fills from the sidecar at %s", sock)
                return side
            except Exception as exc:
                log.warning("sidecar user fills unavailable (%s); using the SDK stream", exc)
        sdk = UserFillStream(self.cfg.base_url, self.ex.address)
        try:
            sdk.start()
            return sdk
        except Exception as exc:
            log.warning("user fill stream unavailable: %s", type(exc).__name__)
            return None

    def startup(self, t_process_start: float | None = None) -> ReconcileReport:
        t0 = self._t_start if t_process_start is None else t_process_start
        if self.cfg.use_ws:
            self.stream = self._open_stream()
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

    def execute(self, intents: Sequence[OrderIntent]) -> list[SubmitOutcome]:
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


# ---- standalone loop with the Rust kernel ----------------------------------------------------


class KernelIntentSource:
    """Candles from the venue -> kernel (external fills) -> OrderIntents; OMS fills -> apply_fill."""

    def __init__(self, trader: LiveTrader, config_path: Path, symbols: list[str], interval: str) -> None:
        from engine.config import load_config
        from strategy.kernel_orchestrator import KernelOrchestrator

        mode = "live" if trader.cfg.want_live else "dry_live"
        base = load_config(config_path, None, mode)
        per = {s: load_config(config_path, s, mode).merged for s in symbols}
        equity = float(trader.account().account_value) or 10_000.0
        self.orch = KernelOrchestrator(base.merged, per, initial_cash=equity, fill_mode="external")
        self.trader = trader
        self.symbols = symbols
        self.interval = interval
        self.last: dict[str, int] = {}
        saved = trader.oms.get_kv("kernel_state")
        if saved:
            self.orch.kernel.load_state(saved)
            for s in symbols:
                snap = self.orch.kernel.snapshot_json(s)
                if snap:
                    self.last[s] = int(json.loads(snap).get("t", 0))

    def poll(self) -> list[OrderIntent]:
        from engine.data.intervals import interval_ms
        from strategy.kernel_orchestrator import Bar

        step = interval_ms(self.interval)
        warmup = not self.last
        now = self.trader.ex.venue_time_ms()
        bars: list[Bar] = []
        for s in self.symbols:
            since = self.last[s] + 1 if s in self.last else now - 4000 * step
            candles = self.trader.ex.info.candles_snapshot(s, self.interval, since, now + step)
            for c in candles[:-1]:
                if int(c["t"]) > self.last.get(s, 0):
                    bars.append(Bar(s, int(c["t"]), *(float(c[k]) for k in "ohlcv")))
        bars.sort(key=lambda b: (b.t, b.symbol))
        intents: list[OrderIntent] = []
        equity = float(self.trader.account().account_value)
        i = 0
        while i < len(bars):
            t = bars[i].t
            while i < len(bars) and bars[i].t == t:
                self.orch.on_candle(bars[i])
                self.last[bars[i].symbol] = t
                i += 1
            res = self.orch.evaluate(t + step, equity)
            if not warmup:
                intents.extend(OrderIntent.from_kernel(x) for x in res.intents)
        return intents

    def absorb_fills(self) -> int:
        """Apply matched, not yet applied OMS fills to the kernel; commit state + marks together."""
        oms = self.trader.oms
        applied: list[int] = []
        for fid, f, intent_id in oms.fills_for_kernel():
            if intent_id is None:
                continue  # unmatched: waits for a match (never dropped)
            intent = oms.intent(intent_id)
            self.orch.kernel.apply_fill(
                f.symbol,
                "buy" if f.side == "BUY" else "sell",
                float(f.size),
                float(f.price),
                float(f.fee),
                f.ts_ms,
                intent.confidence if intent else "medium",
                float(intent.leverage) if intent and intent.leverage and intent.leverage >= 1 else 1.0,
                int(intent.kernel_intent_id or 0) if intent else 0,
            )
            applied.append(fid)
        oms.commit_kernel_state(self.orch.kernel.save_state(), applied)
        return len(applied)


def _build(args: argparse.Namespace) -> tuple[LiveTrader, LiveOms]:
    from engine.secrets import load_wallet_secrets, wallet_from

    secrets = load_wallet_secrets()
    wallet = wallet_from(secrets.key)
    oms = LiveOms(Path(args.db))
    ex = HyperliquidExecutor(wallet, args.url, MonotonicNonce(oms), account_address=secrets.account_address)
    cfg = TraderConfig(base_url=args.url, db_path=Path(args.db), want_live=args.mode == "live")
    return LiveTrader(cfg, ex, oms), oms


def main(argv: list[str] | None = None) -> int:
    from engine.env import read_env

    env = read_env()
    p = argparse.ArgumentParser(prog="python -m live.trader", description=__doc__.split("\n")[0])
    p.add_argument(
        "--mode", choices=("live", "dry_live"), default="dry_live" if env.mode != "live" else "live"
    )
    p.add_argument("--url", default=env.exchange_url)
    p.add_argument("--db", default=str(env.db_path))
    p.add_argument("--config", default=str(env.strategy_yaml))
    p.add_argument("--symbols", default=",".join(env.symbols or ("BTC", "ETH", "SOL")))
    p.add_argument("--interval", default="5m")
    p.add_argument("--loop-s", type=float, default=10.0)
    p.add_argument("--max-loops", type=int, default=0, help="stop after N loops (0: run until SIGTERM)")
    args = p.parse_args(argv)
    logging.basicConfig(level=env.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trader, oms = _build(args)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    trader.startup()
    source = KernelIntentSource(trader, Path(args.config), args.symbols.split(","), args.interval)
    loops = 0
    try:
        while not stop[0] and (args.max_loops <= 0 or loops < args.max_loops):
            loops += 1
            trader.tick()
            outcomes = trader.execute(source.poll())
            for o in outcomes:
                log.info("intent %s -> %s %s", o.intent_id, o.status, o.detail)
            source.absorb_fills()
            time.sleep(args.loop_s)
    except KeyboardInterrupt:
        pass
    finally:
        trader.shutdown()
        oms.close()
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())


__all__ = ["KernelIntentSource", "LiveTrader", "TickReport", "TraderConfig", "main"]
