"""Feed candles, mids and funding to the Rust decision kernel and return its order intents.

The kernel (``bt_runtime.Kernel``) makes every decision. This module only moves data in and out:
it keeps no strategy logic of its own. In ``SHADOW`` mode it also runs the independent Python
reference (``strategy.mei_alpha_v1``) on the same bars and records agreement.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import bt_runtime

from exchange.model import Bar


class KernelMode(StrEnum):
    KERNEL_ONLY = "kernel_only"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class Decision:
    """The kernel's entry decision for one symbol on its latest bar."""

    symbol: str
    t: int
    signal: int  # 1 buy, -1 sell, 0 neutral
    confidence: int  # 0 low, 1 medium, 2 high


@dataclass(frozen=True, slots=True)
class KernelPosition:
    """One open position as the kernel holds it: the fields the daemon reads of ``positions_json``."""

    symbol: str
    side: str  # "long" | "short"
    quantity: float
    entry_atr: float
    trailing_sl: float | None  # the trailing stop, once armed
    tp1_taken: bool
    entry_adx_threshold: float

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "long" else -self.quantity

    @classmethod
    def from_kernel(cls, p: Mapping[str, Any]) -> KernelPosition:
        return cls(
            symbol=str(p["symbol"]), side=str(p["side"]).lower(), quantity=float(p["quantity"]),
            entry_atr=float(p["entry_atr"]),
            trailing_sl=None if p.get("trailing_sl") is None else float(p["trailing_sl"]),
            tp1_taken=bool(p["tp1_taken"]), entry_adx_threshold=float(p["entry_adx_threshold"]),
        )  # fmt: skip


SIGNAL_NAMES = {1: "buy", -1: "sell", 0: "neutral"}
CONFIDENCE_NAMES = {0: "low", 1: "medium", 2: "high"}

# Bars of history the Python reference sees in shadow mode. Long enough that its SMA-seeded EMAs
# agree with the kernel's (which has seen every bar) far below any decision threshold.
SHADOW_WINDOW_BARS = 1000

ShadowRecorder = Callable[[Decision, tuple[str, str], Mapping[str, Any]], None]


class KernelOrchestrator:
    """One kernel for a set of symbols, with optional shadow comparison."""

    def __init__(
        self,
        base_config: Mapping[str, Any],
        symbol_configs: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        initial_cash: float = 10_000.0,
        fill_mode: str = "simulate",
        mode: KernelMode = KernelMode.KERNEL_ONLY,
        shadow_recorder: ShadowRecorder | None = None,
    ) -> None:
        self._base_config = dict(base_config)
        self._kernel = bt_runtime.Kernel(
            json.dumps(self._base_config),
            initial_cash=initial_cash,
            fill_mode="external" if fill_mode == "external" else "simulate",
        )
        self._symbol_configs = {s: dict(c) for s, c in (symbol_configs or {}).items()}
        for symbol, cfg in self._symbol_configs.items():
            self._kernel.set_symbol_config(symbol, json.dumps(cfg))
        self.mode = mode
        self._shadow_recorder = shadow_recorder
        self._history: dict[str, deque[Bar]] = {}
        self._stepped: list[Bar] = []

    @property
    def kernel(self) -> bt_runtime.Kernel:
        return self._kernel

    def positions(self) -> dict[str, KernelPosition]:
        """The kernel's open positions by symbol (parsed once per call from its ``positions_json``)."""
        return {
            s: KernelPosition.from_kernel(p) for s, p in json.loads(self._kernel.positions_json()).items()
        }

    def config_for(self, symbol: str) -> dict[str, Any]:
        return self._symbol_configs.get(symbol, self._base_config)

    def on_candle(self, bar: Bar) -> bt_runtime.StepResult:
        """Feed one closed candle (liquidations, if any, come back at once)."""
        result = self._kernel.step_candle(bar.symbol, bar.t, bar.o, bar.h, bar.l, bar.c, bar.v)
        if self.mode is KernelMode.SHADOW:
            self._history.setdefault(bar.symbol, deque(maxlen=SHADOW_WINDOW_BARS)).append(bar)
        self._stepped.append(bar)
        return result

    def on_mid(self, symbol: str, price: float, t_ms: int) -> bt_runtime.StepResult:
        return self._kernel.on_mid(symbol, price, t_ms)

    def on_funding(self, symbol: str, rate: float, price: float, t_ms: int) -> float:
        return self._kernel.on_funding(symbol, rate, price, t_ms)

    def evaluate(self, now_ms: int, equity: float | None = None) -> bt_runtime.StepResult:
        """Exits, then ranked entries, for every symbol that received a candle since the last call."""
        stepped, self._stepped = self._stepped, []
        result = self._kernel.evaluate(now_ms, equity)
        if self.mode is KernelMode.SHADOW:
            for bar in {b.symbol: b for b in stepped}.values():
                self._shadow_compare(bar)
        return result

    def decision(self, symbol: str) -> Decision | None:
        raw = self._kernel.last_decision(symbol)
        snap = self._kernel.snapshot_json(symbol)
        if raw is None or snap is None:
            return None
        t = int(json.loads(snap).get("t", 0))
        return Decision(symbol=symbol, t=t, signal=raw[0], confidence=raw[1])

    def _shadow_compare(self, bar: Bar) -> None:
        decision = self.decision(bar.symbol)
        if decision is None or self._shadow_recorder is None:
            return
        import pandas as pd  # local: only shadow mode needs pandas here

        from strategy.mei_alpha_v1 import analyze

        bars = list(self._history.get(bar.symbol, ()))
        df = pd.DataFrame(
            {
                "t": [b.t for b in bars],
                "open": [b.o for b in bars],
                "high": [b.h for b in bars],
                "low": [b.l for b in bars],
                "close": [b.c for b in bars],
                "volume": [b.v for b in bars],
            }
        )
        signal, confidence, _latest = analyze(
            df, bar.symbol, self._btc_bullish(), self.config_for(bar.symbol)
        )
        inputs = {"t": bar.t, "close": bar.c, "bars": len(bars)}
        self._shadow_recorder(decision, (str(signal.value), str(confidence.value)), inputs)

    def _btc_bullish(self) -> bool | None:
        snap = self._kernel.snapshot_json("BTC")
        if snap is None:
            return None
        s = json.loads(snap)
        if not s.get("ready"):
            return None
        return bool(s["ema_fast"] > s["ema_slow"])

    # --- persistence -------------------------------------------------------------------------

    def save_state(self, path: Path) -> None:
        """Write the kernel state atomically (write to a temp file, fsync, rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self._kernel.save_state())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_state(self, path: Path) -> None:
        self._kernel.load_state(path.read_text())
