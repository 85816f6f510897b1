"""UnifiedEngine: the daemon's main loop, the same in paper, dry_live and live.

The mode only chooses the execution backend (engine/execution.py): the PaperTrader's fills and
account in paper; the OMS, broker adapter and executor with the venue's account in dry_live/live
(live/execution.py, docs/live-trading.md). Below, "filled by the PaperTrader" reads "sent through
the OMS, filled by the venue" in the live modes.

Each loop:

1. poll the kill-switch file and the strategy YAML (hot reload);
2. read the venue clock; for each watchlist symbol whose next bar has closed, fetch the new closed
   bars through :class:`MarketDataHub` (nothing is fetched or re-analysed otherwise);
3. feed them to the Rust kernel (``KernelOrchestrator``, ``fill_mode="external"``) bar time by bar
   time; after each bar time ``evaluate`` returns exits first, then entries already ranked by the
   kernel (score = confidence rank * 100 + ADX, ties by symbol). Exits run at once; entries run in
   the kernel's order within the per-loop limit. The daemon makes no trading decision of its own
   (the market-breadth regime filter, auto-reverse and regime gate are kernel rules too, so a
   replay applies them exactly as here);
4. every order passes the RiskManager (fails closed), is filled by the PaperTrader and reported
   back to the kernel with ``apply_fill``, so the kernel's account mirrors the paper account;
5. sub-bar exits: the mid of every open position goes to the kernel (``on_mid``); funding at the
   venue's hourly rates. With ``engine.entry_interval``/``exit_interval`` set (sub-bar mode), the
   loop instead follows the sub-bar closes exactly as ``ai-quant-bt replay --entry-interval
   --exit-interval`` does (strategy/sub_bars.py): each closed sub-bar tick in time order between
   the main decisions, funding booked per tick, ``on_mid`` with the exit sub-bar close,
   ``evaluate_sub_bar`` with the entry sub-bar closes; the paper trader fills at the decision's
   close. Exits on the live mid between sub-bar closes only with ``AI_QUANT_MID_EXITS=1``;
6. one DB transaction commits the loop's trades, positions, decisions and the kernel and paper
   state; the kernel state file is also rewritten atomically. A crash loses a whole loop or
   nothing;
7. heartbeat line, sd_notify WATCHDOG/STATUS (READY after the first good loop). While the venue
   does not answer, the line begins ``venue unreachable since T.``; one alert marks the start of an
   outage and one its end (the loop keeps retrying, so the daemon recovers by itself).

Bars older than two intervals when they arrive (a restart after downtime) are replayed for their
exits only: a stale entry signal is not traded.

This module is the loop: it decides when the kernel steps. Its parts each have a module:
daemon/dispatch.py (what happens to one kernel intent: the daemon's gates, the RiskManager, the
submit, the decision row), daemon/watchlist.py (which symbols), daemon/booking.py (fills into the
kernel and the trades table, paper funding), daemon/decision_log.py (decision, gate-block and
signal rows) and daemon/persistence.py (the loop's commit, restore, state file and heartbeat line).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bt_runtime

from daemon import persistence
from daemon.booking import Booking
from daemon.decision_log import DecisionLog, breadth_pct
from daemon.dispatch import Dispatch, Turn
from daemon.report import LoopReport
from daemon.sub_bar_state import SubBarState
from daemon.watchlist import resolve_watchlist
from engine.config import StrategyConfig
from engine.execution import Execution, PaperExecution
from engine.heartbeat import Heartbeat
from engine.market_data import MarketDataHub
from engine.paper_trader import PaperTrader
from engine.position_watch import DivergenceWatch, divergences
from engine.risk import RiskLimits, RiskManager
from engine.strategy_manager import StrategyManager
from engine.systemd_watchdog import Notifier
from engine.trading_db import TradingDB
from engine.venue import iso_utc
from exchange.meta import Meta
from exchange.model import Bar
from exchange.venue_errors import Failure, diagnose
from exchange.venue_limits import backoff_s
from strategy.kernel_orchestrator import KernelMode, KernelOrchestrator
from strategy.sub_bars import Step, schedule

log = logging.getLogger("daemon.loop")


@dataclass
class EngineSettings:
    mode: str = "paper"
    symbols: tuple[str, ...] | None = None
    top_n: int = 50
    loop_s: float | None = None  # None: the config's engine.loop_target_s
    warmup_bars: int | None = None  # None: the config's engine.lookback_bars
    paper_balance: float = 10_000.0
    state_file: Path | None = None
    version: str = "0"
    kernel_mode: str = "kernel_only"
    risk_overrides: dict[str, Any] = field(default_factory=dict)
    stale_bars: int = 2
    mid_exits: bool = False  # sub-bar mode: also run the exits on the live mid each loop


# ---- the engine --------------------------------------------------------------------------------


class UnifiedEngine:
    def __init__(
        self,
        settings: EngineSettings,
        hub: MarketDataHub,
        strategy: StrategyManager,
        risk: RiskManager,
        db: TradingDB,
        meta: Meta,
        *,
        alert: Callable[[str, str], None],
        notifier: Notifier | None = None,
        execution: Execution | None = None,
    ) -> None:
        self.s = settings
        self.hub = hub
        self.strategy = strategy
        self.risk = risk
        self.db = db
        self.meta = meta
        self.alert = alert
        self.notifier = notifier or Notifier({})
        self.loops = 0
        self.errors = 0
        self.last_loop_s = 0.0
        self.last_t: dict[str, int] = {}
        self.snaps: dict[str, dict[str, Any]] = {}
        self.decisions = DecisionLog(db, self._model, self.snaps)  # shares ``snaps``
        self.book: Booking | None = None  # built at startup, with the execution backend
        self.dispatch: Dispatch | None = None  # what happens to an intent (daemon/dispatch.py); startup
        self.watchlist: list[str] = []
        self.shadow = None
        self.orch: KernelOrchestrator | None = None
        self.paper: PaperTrader | None = None  # paper mode's trader (None in dry_live/live)
        self.exec: Execution | None = execution  # None: paper, built at startup
        self.mids: dict[str, float] = {}
        self.restored_digest: str | None = None
        self._stop = threading.Event()
        self._backoff_s = 0.0
        self._kernel_watch = DivergenceWatch(loops=3)
        self._venue_down_alerted: int | None = None  # down_since_ms of the outage already alerted
        self._rate_limited = 0  # 429s in a row
        self._loop_weight = 60  # request weight of the last good loop (exchange/venue_limits.py)
        eng = self._model().engine
        entry_iv, exit_iv = str(eng.entry_interval or ""), str(eng.exit_interval or "")
        # Sub-bar mode (engine.entry_interval / exit_interval): see the module docstring.
        self.sub: SubBarState | None = SubBarState(entry_iv, exit_iv) if (entry_iv or exit_iv) else None

    # ---- setup ----------------------------------------------------------------------------
    def _cfg(self, symbol: str | None = None) -> dict[str, Any]:
        """The merged config as plain JSON values: what the kernel takes."""
        return self.strategy.merged(symbol)

    def _model(self, symbol: str | None = None) -> StrategyConfig:
        """The merged config as the typed view (engine/config/view.py): what Python code reads."""
        return self.strategy.model(symbol)

    def startup(self) -> None:
        self.watchlist = resolve_watchlist(
            self.s.symbols, self.s.top_n, self.hub.top_by_volume, self.meta.assets,
            set(self._model().watchlist_exclude),
        )  # fmt: skip
        base = self._cfg()
        per = {s: self._cfg(s) for s in self.watchlist}
        mode = KernelMode.SHADOW if self.s.kernel_mode == "shadow" else KernelMode.KERNEL_ONLY
        recorder = None
        if mode is KernelMode.SHADOW:
            from strategy.shadow_mode import ShadowDecision, ShadowDecisionTracker

            tracker = ShadowDecisionTracker(on_alert=lambda a: self.alert("shadow", a.message))
            self.shadow = tracker  # type: ignore[assignment]

            def recorder(decision: Any, ref: tuple[str, str], inputs: Mapping[str, Any]) -> None:
                from strategy.kernel_orchestrator import CONFIDENCE_NAMES, SIGNAL_NAMES

                k = ShadowDecision(SIGNAL_NAMES[decision.signal], CONFIDENCE_NAMES[decision.confidence])
                tracker.record(decision.symbol, decision.t, k, ShadowDecision(*ref), inputs)

        if self.exec is None:
            trade = self._model().trade
            self.paper = PaperTrader(
                self.meta, self.s.paper_balance, taker_fee_bps=float(trade.taker_fee_bps),
                slippage_bps=float(trade.slippage_bps), use_bbo=bool(trade.use_bbo_for_fills),
            )  # fmt: skip
            self.exec = PaperExecution(self.paper)
        self.book = Booking(
            self.db, self.risk, self.exec, self.paper, self._model,
            lambda sym, start, end: self.hub.funding_history(sym, start, end), self.alert,
        )  # fmt: skip
        self.dispatch = Dispatch(
            self.db, self.risk, self.exec, self.book, self.decisions, self.strategy.model, self.hub.bbo,
            self.watchlist, self.snaps, fill_at_close=self.sub is not None and self.paper is not None,
        )  # fmt: skip
        self.orch = KernelOrchestrator(
            base, per, initial_cash=self.exec.initial_cash(), fill_mode="external", mode=mode,
            shadow_recorder=recorder,
        )  # fmt: skip
        self.risk.set_limits(RiskLimits.from_config(self._model(), **self.s.risk_overrides))
        self._restore()
        self.db.config_id = self.strategy.config_id
        self.db.audit(
            "ENGINE_START",
            data={"mode": self.s.mode, "symbols": self.watchlist, "config_id": self.strategy.config_id,
                  "version": self.s.version, "restored": self.restored_digest is not None,
                  "state_digest": self.restored_digest, "kill": self.risk.status.label()},
        )  # fmt: skip
        log.info(
            "%s engine: %d symbols (%s), interval %s, config_id %s, kill %s",
            self.s.mode, len(self.watchlist), ",".join(self.watchlist[:10]) + ("..." if len(self.watchlist) > 10 else ""),
            self.strategy.interval, self.strategy.config_id[:12], self.risk.status.label(),
        )  # fmt: skip

    def _restore(self) -> None:
        assert self.orch is not None and self.exec is not None
        saved = persistence.load(self.db, self.exec.state_key)
        if saved is None:
            return
        self.orch.kernel.load_state(saved.kernel)
        self.exec.load_json(saved.account)
        self.last_t = saved.last_t
        self.loops = saved.loops
        if self.sub is not None:
            self.sub.load_json(saved.sub_bars)
        self.restored_digest = saved.digest
        for s in self.watchlist:
            snap = self.orch.kernel.snapshot_json(s)
            if snap:
                self.snaps[s] = json.loads(snap)
        log.info(
            "restored state: %d open positions, cash %.2f, %d loops, digest %s",
            len(self.exec.positions), self.exec.cash(), self.loops, self.restored_digest[:12],
        )  # fmt: skip

    # ---- the loop ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def loop_s(self) -> float:
        return float(self.s.loop_s or self._model().engine.loop_target_s)

    def run(self, max_loops: int = 0) -> None:
        """Loop until stopped, or for ``max_loops`` loops of this run (the restored count aside)."""
        first = self.loops
        while not self._stop.is_set() and (max_loops <= 0 or self.loops - first < max_loops):
            t0 = time.monotonic()
            self.run_once()
            self._stop.wait(max(self._backoff_s, self.loop_s() - (time.monotonic() - t0)))

    def run_once(self) -> LoopReport:
        assert self.orch is not None and self.exec is not None
        t0 = time.perf_counter()
        self.loops += 1
        rep = LoopReport(self.loops, 0)
        meter = getattr(self.hub, "meter", None)
        spent0 = meter.total if meter is not None else 0
        before = (self.risk.status.label(), self.risk.status.reason)
        self.risk.poll_kill_file()
        after = (self.risk.status.label(), self.risk.status.reason)
        if after != before:
            self.db.audit(
                "RISK_KILL_SWITCH",
                level="WARNING",
                data={"from": before[0], "to": after[0], "reason": after[1]},
            )
        self._poll_config()
        venue_failures = self.hub.venue.failures
        try:
            rep.now_ms = now = self.hub.now_ms()
            dispatch = self._dispatch()
            dispatch.begin_loop()
            with self.db.tx():
                self._step(now, rep)
                self.db.put("loops", str(self.loops))
                if dispatch.applied_fill_ids:
                    self.exec.crash("before_loop_commit")
            if dispatch.applied_fill_ids:
                self.exec.crash("after_loop_commit")
            # after the commit: the OMS learns which fills the kernel holds (live; paper: no-op)
            self.exec.committed(self.orch.kernel.save_state, dispatch.applied_fill_ids)
        except Exception as exc:
            self.errors += 1
            found = diagnose(exc, self.hub.url or "?")
            failure = found.failure if found is not None else None
            if found is not None and failure is Failure.RATE_LIMITED:  # the weight budget: back off
                self._backoff_s = backoff_s(self._loop_weight, self._rate_limited)
                self._rate_limited += 1
                rep.error = found.line(retry_s=self._backoff_s)
                log.warning("loop %d: %s; state rolled back to the last commit", self.loops, rep.error)
            elif found is not None and failure is Failure.UNREACHABLE:  # an outage: one alert, no traceback
                self.hub.venue.failed(found.unreachable or "")
                rep.error = f"venue unreachable ({found.unreachable})"
                log.warning("loop %d: %s; state rolled back to the last commit", self.loops, found.line())
            elif found is not None:  # the venue answered with an error: one line, no traceback
                rep.error = found.line()
                log.warning("loop %d: %s; state rolled back to the last commit", self.loops, rep.error)
                self.alert("loop_error", f"loop {self.loops} failed: {rep.error}")
            else:
                rep.error = f"{type(exc).__name__}"
                log.exception("loop %d failed; state rolled back to the last commit", self.loops)
                self.alert("loop_error", f"loop {self.loops} failed: {type(exc).__name__}")
            self._reload_after_error()
        else:
            self._backoff_s, self._rate_limited = 0.0, 0
            if self.hub.venue.failures == venue_failures:  # a loop without a venue failure: reachable
                self.hub.venue.ok()
            if rep.bars or rep.fills:
                self._write_state_file()
        if meter is not None and not rep.error:  # what one loop costs of the venue's budget
            self._loop_weight = max(1, meter.total - spent0)
        rep.seconds = self.last_loop_s = time.perf_counter() - t0
        self._venue_alerts()
        self._heartbeat(rep)
        return rep

    def _venue_alerts(self) -> None:
        """One alert (and audit row) when the venue stops answering, one when it answers again."""
        v = self.hub.venue
        url = self.hub.url or "the venue"
        if v.down_since_ms is not None and self._venue_down_alerted != v.down_since_ms:
            self._venue_down_alerted = v.down_since_ms
            msg = f"{url} unreachable since {iso_utc(v.down_since_ms)} ({v.reason})"
            log.warning("%s; retrying every loop", msg)
            self.alert("venue_unreachable", msg)
            self.db.audit("VENUE_UNREACHABLE", level="WARNING", data={"url": url, "reason": v.reason,
                          "since_ms": v.down_since_ms})  # fmt: skip
        elif v.down_since_ms is None and self._venue_down_alerted is not None:
            since, self._venue_down_alerted = self._venue_down_alerted, None
            down_s = max(0.0, time.time() - since / 1000)
            msg = f"{url} reachable again after {down_s:.0f} s (unreachable since {iso_utc(since)})"
            log.info(msg)
            self.alert("venue_recovered", msg)
            self.db.audit("VENUE_RECOVERED", data={"url": url, "since_ms": since, "down_s": round(down_s, 1)})

    def _reload_after_error(self) -> None:
        """Undo the in-memory effects of a failed loop: the DB holds the last good state."""
        assert self.orch is not None and self.exec is not None
        saved = persistence.load(self.db, self.exec.state_key)
        if saved is not None:
            self.orch.kernel.load_state(saved.kernel)
            self.exec.load_json(saved.account)
            self.last_t = saved.last_t
            if self.sub is not None:
                self.sub.load_json(saved.sub_bars)
        else:  # nothing committed yet: start again from scratch
            self.last_t = {}
            if self.sub is not None:
                self.sub.load_json(None)
            self.startup_kernel_reset()

    def startup_kernel_reset(self) -> None:
        assert self.exec is not None
        base = self._cfg()
        self.orch = KernelOrchestrator(
            base, {s: self._cfg(s) for s in self.watchlist}, initial_cash=self.exec.initial_cash(),
            fill_mode="external",
        )  # fmt: skip
        self.exec.reset()

    def _poll_config(self) -> None:
        assert self.orch is not None
        out = self.strategy.poll(self.watchlist)
        if out.event.status == "invalid":
            self.db.audit("CONFIG_REJECTED", level="WARNING", data={"error": str(out.event.error)[:2000]})
            return
        if not out.applied:
            return
        for s in out.symbols:
            self.orch.kernel.set_symbol_config(s, json.dumps(self._cfg(s)))
        self.risk.set_limits(RiskLimits.from_config(self._model(), **self.s.risk_overrides))
        self.db.config_id = self.strategy.config_id
        self.db.audit(
            "CONFIG_RELOADED",
            data={"config_id": self.strategy.config_id, "changed": list(out.event.changed_keys)[:50],
                  "restart_required": list(out.event.restart_required)},
        )  # fmt: skip

    def _step(self, now: int, rep: LoopReport) -> None:
        assert self.orch is not None and self.exec is not None
        warmup = not self.last_t
        self.exec.begin_loop(now)  # live: gates, dead man's switch, reconcile, venue account
        lookback = int(self.s.warmup_bars or self._model().engine.lookback_bars)
        if self.sub is None:
            self.hub.keep_subscribed(self.watchlist, lookback)
        else:
            self.hub.keep_subscribed(self.watchlist, lookback, sub_intervals=self.sub.intervals)
        bars: list[Bar] = []
        for s in self.watchlist:
            if self.hub.due(self.last_t.get(s), now):
                bars.extend(self.hub.closed_bars(s, self.last_t.get(s), now, lookback))
        bars.sort(key=lambda b: (b.t, b.symbol))
        rep.bars = len(bars)
        need_mids = bool(bars) or bool(self.exec.positions)
        self.mids = self.hub.mids(self.watchlist) if need_mids else self.mids
        step = self.hub.interval_ms
        if self.sub is not None and not warmup:
            self._step_sub_bars(now, rep, bars)
        else:
            last_of = {b.symbol: n for n, b in enumerate(bars)}
            i = 0
            while i < len(bars):
                t = bars[i].t
                j = i
                while j < len(bars) and bars[j].t == t:
                    j += 1
                self._main_step(t, bars[i:j], now, rep, warmup=warmup, last_of=last_of, first=i)
                i = j
            if warmup and self.sub is not None and bars:
                # Sub-bar ticks start after the first live main decision (as a replay from here).
                end = max(b.t for b in bars) + step
                self.sub.done = self.sub.funded_to = end
                self.sub.last_px.update({b.symbol: b.c for b in bars})
        if not warmup and self.sub is None:
            self._sub_bar_exits(now, rep)
            if self.exec.simulates_funding:
                self._funding(now)
        self._dispatch().absorb_pending(self.orch, now, rep)
        if self.paper is None:
            self._watch_kernel_positions(now)
        before = self.risk.status.label()
        self.risk.update_equity(self._equity(), now)
        if self.risk.status.label() != before:
            self.db.audit(
                "RISK_KILL_SWITCH", level="WARNING", ts_ms=now,
                data={"from": before, "to": self.risk.status.label(), "reason": self.risk.status.reason},
            )  # fmt: skip
        if rep.bars or rep.fills or rep.ticks or self.exec.positions or not self.db.get("kernel_state"):
            self._persist(now)  # flat and no new bar: nothing changed, nothing to write

    def _main_step(
        self, t: int, group: Sequence[Bar], now: int, rep: LoopReport, *, warmup: bool,
        last_of: Mapping[str, int] | None = None, first: int = 0, at: int | None = None,
    ) -> None:  # fmt: skip
        """One main bar time: every symbol's candle, then one ``evaluate`` at the close ``t + step``.
        ``at`` is the time fills are stamped with (default ``now``). In sub-bar mode funding due is
        booked before the ``evaluate`` and entries are sized on the account at the latest closes."""
        assert self.orch is not None
        step = self.hub.interval_ms
        ts = now if at is None else at
        for k, b in enumerate(group):
            res = self.orch.on_candle(b)
            self.last_t[b.symbol] = b.t
            if not warmup or last_of is None or last_of[b.symbol] == first + k:
                snap = self.orch.kernel.snapshot_json(b.symbol)
                if snap:
                    self.snaps[b.symbol] = json.loads(snap)
            if not warmup and res.intents:  # liquidations
                self._execute(res.intents, ts, rep, phase="liquidation", entries_ok=False)
        if self.sub is not None and not warmup:
            self.sub.last_px.update({b.symbol: b.c for b in group})
            self._funding_until(t + step)
            res = self.orch.evaluate(t + step, self._sizing_equity())
        else:
            res = self.orch.evaluate(t + step, self._equity())
        if warmup:
            return
        fresh = t + step >= now - self.s.stale_bars * step
        self._execute(res.intents, ts, rep, phase="bar", entries_ok=fresh)
        self.decisions.blocked(res.blocked, ts, self.loops)
        if fresh:
            self.decisions.signals(self.orch.kernel, {b.symbol for b in group}, ts)

    # ---- sub-bar mode ---------------------------------------------------------------------------
    def _step_sub_bars(self, now: int, rep: LoopReport, bars: Sequence[Bar]) -> None:
        """The replay's schedule (strategy/sub_bars.py) over this loop's main bars and sub-bar ticks."""
        assert self.sub is not None and self.orch is not None and self.exec is not None
        step = self.hub.interval_ms
        groups: dict[int, list[Bar]] = {}
        for b in bars:
            groups.setdefault(b.t, []).append(b)
        lookback = int(self.s.warmup_bars or self._model().engine.lookback_bars)
        ticks = self.sub.new_ticks(self.hub.closed_bars, self.watchlist, now, lookback)
        steps, last_eval, done = schedule([t + step for t in sorted(groups)], ticks, self.sub.last_eval, step)
        paper = self.paper is not None
        for st in steps:
            at = st.t if paper else now  # paper fills at the decision's close, stamped with its time
            self._dispatch().begin_decision()
            if st.tick is None:
                self._main_step(st.t - step, groups[st.t - step], now, rep, warmup=False, at=at)
            else:
                # stale as main bars are: older than stale_bars main intervals on arrival
                self._sub_tick(st, now, at, rep, fresh=st.t >= now - self.s.stale_bars * step)
                rep.ticks += 1
        self.sub.last_eval = last_eval
        if done is not None:
            self.sub.done = max(done, self.sub.done or done)
        if self.s.mid_exits:
            self._sub_bar_exits(now, rep)

    def _sub_tick(self, st: Step, now: int, at: int, rep: LoopReport, *, fresh: bool) -> None:
        """One sub-bar tick: funding due, exits at the exit sub-bar closes, entries at the entry ones."""
        assert (
            self.sub is not None and self.orch is not None and self.exec is not None and st.tick is not None
        )
        tick, tau = st.tick, st.t
        self._funding_until(tau)
        operator = self.exec.operator_symbols() if self.exec.positions else frozenset()
        held = set(self.orch.positions())
        for sym, px in tick.exits:
            self.sub.last_px[sym] = px
            if sym in held and sym not in operator:
                res = self.orch.on_mid(sym, px, tau)
                if res.intents:
                    self._execute(res.intents, at, rep, phase="sub_exit", entries_ok=False)
                    held = set(self.orch.positions())
        for sym, px in tick.entries:
            self.sub.last_px[sym] = px
        if tick.entries:
            res = self.orch.kernel.evaluate_sub_bar(list(tick.entries), tau, self._sizing_equity())
            self._execute(res.intents, at, rep, phase="sub_entry", entries_ok=fresh)
            self.decisions.blocked(res.blocked, at, self.loops)

    def _sizing_equity(self) -> float:
        """Sub-bar mode: the account marked at the latest bar and sub-bar closes (the kernel's prices,
        as in a replay), not at the loop's mids."""
        assert self.exec is not None and self.sub is not None
        return self.exec.equity({**self.mids, **self.sub.last_px})

    def _funding_until(self, until: int) -> None:
        assert self.sub is not None and self.orch is not None
        self._booking().funding_until(self.orch, self.sub, until)

    def _booking(self) -> Booking:
        assert self.book is not None, "startup() builds the booking"
        return self.book

    # ---- execution ----------------------------------------------------------------------------
    def _equity(self) -> float:
        assert self.exec is not None
        return self.exec.equity(self.mids)

    def _dispatch(self) -> Dispatch:
        assert self.dispatch is not None, "startup() builds the dispatcher"
        return self.dispatch

    def _execute(
        self, intents: Sequence[bt_runtime.Intent], now: int, rep: LoopReport, *, phase: str, entries_ok: bool
    ) -> None:
        """The kernel's intents to the dispatcher (daemon/dispatch.py), with the loop's state now."""
        assert self.orch is not None
        turn = Turn(self.orch, self.loops, self.mids)
        self._dispatch().execute(turn, intents, now, rep, phase=phase, entries_ok=entries_ok)

    def _watch_kernel_positions(self, now: int) -> None:
        """Live modes: the kernel's positions against the venue's (engine/position_watch.py); a
        divergence that lasts is an alert and an audit row, and so is its end."""
        assert self.exec is not None and self.orch is not None
        kernel = {s: p.signed_quantity for s, p in self.orch.positions().items()}
        venue = {s: p.size if p.side == "long" else -p.size for s, p in self.exec.positions.items()}
        skip = self.exec.operator_symbols() | self.exec.flagged_symbols()
        found = divergences(kernel, venue, skip)
        confirmed, resolved = self._kernel_watch.observe(found)
        for d in confirmed:
            msg = (
                f"{d.symbol}: kernel {d.kernel:+.10g}, venue {d.venue:+.10g} for {self._kernel_watch.loops} loops:"
                " the kernel's exits act on a position the venue does not hold (see docs/live-trading.md)"
            )
            self.db.audit(
                "KERNEL_VENUE_DIVERGENCE", level="ERROR", symbol=d.symbol, ts_ms=now,
                data={"kernel": d.kernel, "venue": d.venue, "loops": self._kernel_watch.loops},
            )  # fmt: skip
            self.alert("kernel_divergence", msg)
        for sym in resolved:
            self.db.audit("KERNEL_VENUE_AGREE", symbol=sym, ts_ms=now, data={"loops": self.loops})
            self.alert("kernel_divergence", f"{sym}: kernel and venue agree again")

    def _sub_bar_exits(self, now: int, rep: LoopReport) -> None:
        assert self.orch is not None and self.exec is not None
        operator = self.exec.operator_symbols() if self.exec.positions else frozenset()
        for sym in sorted(self.exec.positions):
            mid = self.mids.get(sym)
            if not mid or sym in operator:  # the operator's coin: no sub-bar exits to block each loop
                continue
            res = self.orch.on_mid(sym, mid, now)
            if res.intents:
                self._execute(res.intents, now, rep, phase="mid", entries_ok=False)

    def _funding(self, now: int) -> None:
        assert self.orch is not None and self.paper is not None
        self._booking().funding(self.orch, now, self.mids)

    def _persist(self, now: int) -> None:
        assert self.orch is not None and self.exec is not None
        sub = self.sub.to_json() if self.sub is not None else None
        persistence.save(self.db, self.orch, self.exec, self.last_t, sub, now)

    def _write_state_file(self) -> None:
        persistence.write_state_file(self.orch, self.s.state_file)

    # ---- heartbeat -----------------------------------------------------------------------------
    def heartbeat(self) -> Heartbeat:
        assert self.exec is not None
        shadow = self.shadow.stats().agreement if self.shadow is not None else None
        return Heartbeat(
            mode=self.s.mode, loops=self.loops, errors=self.errors, symbols=len(self.watchlist),
            open_positions=len(self.exec.positions), loop_s=self.last_loop_s, kill=self.risk.status.label(),
            kill_reason=self.risk.status.reason, strategy_mode=self.strategy.strategy_mode,
            config_id=self.strategy.config_id, version=self.s.version, equity=self._equity(),
            breadth_pct=breadth_pct({s: self.snaps[s] for s in self.watchlist if s in self.snaps}),
            shadow_agreement=shadow, slippage_median_bps=self.risk.slippage_median_bps(),
            data_source=self.hub.stats.last,
            venue_down_since=self.hub.venue.since_iso(),
        )  # fmt: skip

    def _heartbeat(self, rep: LoopReport) -> None:
        persistence.publish_heartbeat(self.heartbeat().line(), rep.error, self.db, self.notifier)


__all__ = ["EngineSettings", "UnifiedEngine"]
