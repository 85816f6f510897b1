"""Close every paper position in the trading DB, exactly as the daemon would record a close.

Why not "let the daemon do it": ``close_only`` only blocks entries; the daemon still exits on the
strategy's own rules, so positions can stay open for hours. And why not edit rows: the kernel
state, the paper account and ``position_state`` must move together or the next start restores an
inconsistent account. So this module runs the daemon's own engine objects (``UnifiedEngine``) on
the committed state, fills a reduce-only close for each position at the venue's current quote
(the PaperTrader's price rules: the touch, or the mid with slippage), feeds each fill to the
kernel (``apply_fill``) and commits trades, decision rows, positions and both states in one
transaction, then rewrites ``kernel_state_paper.json``.

It takes the daemon's lock first: while the paper daemon runs it refuses (the daemon's in-memory
state would overwrite the DB at its next commit).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from ops.common import EXIT_LOCKED, OpsError, trading_db_read_only

log = logging.getLogger("flat_now")


@dataclass(frozen=True)
class CloseIntent:
    """Quacks like ``bt_runtime.Intent`` for ``UnifiedEngine._fill`` (a manual close)."""

    symbol: str
    side: str  # order side: "short" sells a long
    quantity: float
    price: float
    leverage: float
    timestamp_ms: int
    confidence: str = "medium"
    intent_id: int = 0  # kernel intent ids start at 1: 0 marks a manual order
    kind: str = "close"
    reason: str = "flat_now: manual flatten"
    reason_code: str = "manual_flatten"
    score: float = 0.0
    reduce_only: bool = True

    @property
    def notional_usd(self) -> float:
        return self.quantity * self.price


@dataclass(frozen=True)
class Closed:
    symbol: str
    side: str  # the position's side
    size: float
    price: float | None  # a dry run: the venue's mid now (None when the venue has none)
    pnl: float | None  # a dry run: at that mid, before fees
    fee: float | None  # a dry run: None (the fee depends on the fill)
    status: str  # closed | rejected | would close


def _engine(env: Any, url: str, config: Any) -> Any:
    from daemon.loop import EngineSettings, UnifiedEngine
    from engine.market_data import MarketDataHub
    from engine.risk import RiskManager
    from engine.strategy_manager import StrategyManager
    from engine.trading_db import TradingDB
    from engine.version import __version__
    from exchange.hl_market_data import HyperliquidMarketData
    from strategy.kernel_orchestrator import bt_runtime

    strategy = StrategyManager(config, mode="paper", strategy_mode=env.strategy_mode)
    info = HyperliquidMarketData.connect(url)
    meta = info.meta()
    interval_ms = int(bt_runtime.intervals()[strategy.interval])
    hub = MarketDataHub(info, strategy.interval, interval_ms, candles_dir=None, sidecar=None)
    db = TradingDB(env.db_path, mode="paper", run_fingerprint=f"flat_now-{os.getpid()}-{int(time.time())}")
    state = db.get("paper_account")
    symbols = tuple(sorted(json.loads(state).get("positions", {}))) if state else ()
    settings = EngineSettings(
        mode="paper", symbols=symbols or env.symbols or ("BTC",), paper_balance=env.paper_balance,
        state_file=env.data_dir / "kernel_state_paper.json", version=__version__, kernel_mode="kernel_only",
    )  # fmt: skip
    risk = RiskManager(alert=lambda k, m: log.warning("%s: %s", k, m), kill_file=env.kill_switch_file)
    return UnifiedEngine(
        settings, hub, strategy, risk, db, meta, alert=lambda k, m: log.warning("%s: %s", k, m)
    )


def _venue_mids(url: str) -> dict[str, float]:
    """The venue's mids now (a dry run's price); empty, with a warning, if the venue is unreachable."""
    from hyperliquid.info import Info

    try:
        return {str(k): float(v) for k, v in Info(url, skip_ws=True, timeout=10).all_mids().items()}
    except Exception as exc:  # the SDK raises requests errors on a dead venue
        log.warning("venue %s unreachable (%s): dry-run prices unknown", url, type(exc).__name__)
        return {}


def open_paper_positions(env: Any) -> dict[str, dict[str, Any]]:
    """Positions as committed in the trading DB (read-only, safe while the daemon runs)."""

    if not env.db_path.is_file():
        return {}
    with trading_db_read_only(env.db_path) as conn:
        rows = conn.execute("SELECT symbol, side, size, entry_price, leverage FROM position_state").fetchall()
    return {str(s): {"side": sd, "size": float(sz), "entry_price": float(px), "leverage": float(lv)}
            for s, sd, sz, px, lv in rows}  # fmt: skip


def flatten_paper(env: Any, url: str, config: Any, *, dry_run: bool) -> list[Closed]:
    from daemon.dispatch import Turn
    from daemon.report import LoopReport
    from engine.lock import AlreadyRunning, DaemonLock
    from exchange.model import Order

    positions = open_paper_positions(env)
    if dry_run:
        mids = _venue_mids(url) if positions else {}
        would: list[Closed] = []
        for sym, p in sorted(positions.items()):
            mid = mids.get(sym)
            sign = 1.0 if p["side"] == "long" else -1.0
            pnl = None if mid is None else sign * (mid - p["entry_price"]) * p["size"]
            would.append(Closed(sym, str(p["side"]), p["size"], mid, pnl, None, "would close"))
        return would
    try:
        lock = DaemonLock(env.lock_path).acquire()
    except AlreadyRunning as exc:
        raise OpsError(
            f"{exc}. close_only is engaged, so it opens nothing new. Stop it (systemctl --user stop "
            "ai-quant-paper.service), run flat_now.py again, then start it: the daemon restores the flat state.",
            EXIT_LOCKED,
        ) from None
    eng = None
    try:
        eng = _engine(env, url, config)
        eng.startup()
        assert eng.paper is not None
        now = eng.hub.now_ms()
        eng.mids = eng.hub.mids(list(eng.paper.positions))
        out: list[Closed] = []
        rep = LoopReport(eng.loops, now)
        assert eng.dispatch is not None and eng.orch is not None
        turn = Turn(eng.orch, eng.loops, eng.mids)
        with eng.db.tx():
            for sym, pos in sorted(eng.paper.positions.items()):
                mid = eng.mids.get(sym) or pos.entry_price
                it = CloseIntent(
                    sym, "short" if pos.side == "long" else "long", pos.size, mid, pos.leverage, now
                )
                extra: dict[str, Any] = {"manual": "flat_now", "kill": eng.risk.status.label()}
                side, size = pos.side, pos.size
                eng.dispatch.fill(turn, it, Order.from_kernel(it), now, rep, extra, "manual")
                fill = extra.get("fill")
                if fill is None:
                    out.append(Closed(sym, side, size, 0.0, 0.0, 0.0, "rejected"))
                    continue
                out.append(Closed(sym, side, fill["size"], fill["price"], fill["pnl"], fill["fee"], "closed"))
            eng._persist(now)
            eng.db.audit("MANUAL_FLATTEN", level="WARNING",
                         data={"tool": "flat_now", "closed": [c.__dict__ for c in out]})  # fmt: skip
        eng._write_state_file()
        return out
    finally:
        if eng is not None:
            eng.db.close()
        lock.release()
