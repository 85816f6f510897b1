"""Decision records: the rows that say why the loop traded or did not.

Every kernel intent the loop handles becomes one ``decisions`` row (executed, blocked, rejected,
or a dry_live WOULD) with the indicator values and thresholds behind it (:func:`gate_values`, the
one place that names them); a kernel gate block becomes a ``gate_block`` row and a fresh kernel
signal a ``signals`` row. The names of signals and confidences are the kernel's
(strategy/kernel_orchestrator.py); nothing here re-decides anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bt_runtime

from engine.config.view import StrategyConfig
from engine.trading_db import DecisionRow, TradingDB
from strategy.kernel_orchestrator import CONFIDENCE_NAMES, SIGNAL_NAMES

CONF_RANK = {name: rank for rank, name in CONFIDENCE_NAMES.items()}


def breadth_pct(snaps: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Share (%) of ready symbols whose fast EMA is above the slow one."""
    ready = [s for s in snaps.values() if s.get("ready")]
    if not ready:
        return None
    return 100.0 * sum(1 for s in ready if s["ema_fast"] > s["ema_slow"]) / len(ready)


def gate_values(
    snap: Mapping[str, Any] | None, cfg: StrategyConfig, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The indicator values and thresholds behind a decision (recorded, not re-decided)."""
    if not snap:
        return dict(extra or {})
    trade, entry = cfg.trade, cfg.thresholds.entry
    close = snap.get("close") or 0.0
    out: dict[str, Any] = {
        "adx": {"value": snap.get("adx"), "threshold": entry.min_adx, "op": ">="},
        "adx_slope": {"value": snap.get("adx_slope")},
        "ema_alignment": {"ema_fast": snap.get("ema_fast"), "ema_slow": snap.get("ema_slow"),
                          "bullish": bool(snap.get("ema_fast", 0) > snap.get("ema_slow", 0))},
        "ema_macro": {"value": snap.get("ema_macro"), "close": close},
        "rsi": {"value": snap.get("rsi")},
        "macd_hist": {"value": snap.get("macd_hist"), "prev": snap.get("prev_macd_hist"),
                      "mode": entry.macd_hist_entry_mode},
        "stoch_rsi_k": {"value": snap.get("stoch_rsi_k")},
        "extension": {"value": abs(close - snap["ema_fast"]) / snap["ema_fast"] if snap.get("ema_fast") else None,
                      "threshold": entry.max_dist_ema_fast, "op": "<="},
        "atr_pct": {"value": (snap.get("atr") or 0.0) / close if close else None,
                    "threshold": trade.min_atr_pct, "op": "floor"},
        "bb_width_ratio": {"value": snap.get("bb_width_ratio")},
        "volume": {"value": snap.get("volume"), "vol_sma": snap.get("vol_sma"), "trend": snap.get("vol_trend")},
        "entry_min_confidence": trade.entry_min_confidence,
        "bar_t": snap.get("t"),
    }  # fmt: skip
    out.update(extra or {})
    return out


@dataclass
class DecisionLog:
    """Writes decision, gate-block and signal rows; ``snaps`` is the loop's latest kernel snapshot
    per symbol (shared, updated by the loop)."""

    db: TradingDB
    cfg: Callable[[str], StrategyConfig]  # the config of a symbol (typed view)
    snaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0  # row ids are unique within a loop through this counter

    def intent(
        self, it: bt_runtime.Intent, now: int, loop: int, status: str, why: str, extra: Mapping[str, Any],
        phase: str, *, trade_id: int | None = None, action: str = "",
    ) -> None:  # fmt: skip
        self.seq += 1
        event_type = "exit_check" if it.reduce_only else "entry_signal"
        gates = gate_values(self.snaps.get(it.symbol), self.cfg(it.symbol), {
            "confidence": {"value": it.confidence, "rank": CONF_RANK.get(it.confidence)},
            **extra,
        })  # fmt: skip
        self.db.insert_decision(
            DecisionRow(
                id=f"{now}-{loop}-{it.intent_id}-{self.seq}", timestamp_ms=now, symbol=it.symbol,
                event_type=event_type, status=status, decision_phase=phase, intent_id=it.intent_id,
                trade_id=trade_id, action_taken=action or it.kind, rejection_reason=why,
                reason_code=it.reason_code,
                gates=gates,
                context={"side": it.side, "quantity": it.quantity, "price": it.price, "notional": it.notional_usd,
                         "leverage": it.leverage, "kernel_reason": it.reason},
            )
        )  # fmt: skip

    def blocked(self, blocked: Sequence[tuple[str, str]], now: int, loop: int) -> None:
        for sym, code in blocked:
            self.seq += 1
            self.db.insert_decision(
                DecisionRow(
                    id=f"{now}-{loop}-b-{self.seq}", timestamp_ms=now, symbol=sym,
                    event_type="gate_block", status="blocked", decision_phase="kernel", reason_code=code,
                    rejection_reason=code, gates=gate_values(self.snaps.get(sym), self.cfg(sym)),
                )
            )  # fmt: skip

    def signals(self, kernel: Any, symbols: set[str], now: int) -> None:
        """The kernel's last buy/sell signal of each symbol (neutral ones are not written)."""
        for s in sorted(symbols):
            d = kernel.last_decision(s)
            if d is None or d[0] == 0:
                continue
            snap = self.snaps.get(s, {})
            sig = SIGNAL_NAMES[1 if d[0] > 0 else -1].upper()
            conf = CONFIDENCE_NAMES.get(d[1], "?")
            self.db.insert_signal(now, s, sig, conf, float(snap.get("close") or 0.0), snap)


__all__ = ["CONF_RANK", "DecisionLog", "breadth_pct", "gate_values"]
