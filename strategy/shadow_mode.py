"""Shadow mode: track how often the kernel and the Python reference agree.

`ShadowDecisionTracker.record` takes both sides' decisions and the inputs behind them. It keeps the
rolling agreement over the last `window` decisions (default 1,000), raises an alert once each time
agreement falls below `threshold` (default 0.95; again only after it has recovered), and keeps the
last `keep_disagreements` (default 50) disagreements with both sides' inputs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

AlertCallback = Callable[[str], None]


@dataclass(frozen=True)
class ShadowDecision:
    """One side's decision: signal (buy/sell/neutral) and confidence (low/medium/high)."""

    signal: str
    confidence: str

    def key(self) -> tuple[str, str]:
        # A neutral signal has no meaningful confidence.
        return (self.signal, self.confidence if self.signal != "neutral" else "")


@dataclass(frozen=True)
class Disagreement:
    symbol: str
    t: int
    kernel: ShadowDecision
    reference: ShadowDecision
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShadowStats:
    decisions: int
    window: int
    agreement: float
    below_threshold: bool
    alerts: int
    disagreements: tuple[Disagreement, ...]


class ShadowDecisionTracker:
    """Thread-safe rolling agreement between the kernel and the reference implementation."""

    def __init__(
        self,
        window: int = 1000,
        threshold: float = 0.95,
        keep_disagreements: int = 50,
        on_alert: AlertCallback | None = None,
        min_decisions: int = 50,
    ) -> None:
        if window < 1 or keep_disagreements < 0 or not 0.0 <= threshold <= 1.0:
            raise ValueError("window >= 1, keep_disagreements >= 0 and 0 <= threshold <= 1 are required")
        self._window: deque[bool] = deque(maxlen=window)
        self._agreeing = 0
        self._threshold = threshold
        self._recent: deque[Disagreement] = deque(maxlen=keep_disagreements)
        self._on_alert = on_alert
        self._min_decisions = min_decisions
        self._below = False
        self._alerts = 0
        self._total = 0
        self._lock = threading.Lock()

    def record(
        self,
        symbol: str,
        t: int,
        kernel: ShadowDecision,
        reference: ShadowDecision,
        inputs: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record one decision pair; returns whether the two sides agreed."""
        agree = kernel.key() == reference.key()
        message = None
        with self._lock:
            if len(self._window) == self._window.maxlen and self._window[0]:
                self._agreeing -= 1
            self._window.append(agree)
            self._agreeing += agree
            self._total += 1
            if not agree:
                self._recent.append(Disagreement(symbol, t, kernel, reference, dict(inputs or {})))
            rate = self._agreeing / len(self._window)
            if len(self._window) >= self._min_decisions:
                if rate < self._threshold and not self._below:
                    self._below = True
                    self._alerts += 1
                    message = (
                        f"shadow mode: kernel/reference agreement {rate:.1%} over the last "
                        f"{len(self._window)} decisions is below {self._threshold:.1%}"
                    )
                elif rate >= self._threshold:
                    self._below = False
        if message and self._on_alert is not None:
            self._on_alert(message)
        return agree

    def stats(self) -> ShadowStats:
        with self._lock:
            n = len(self._window)
            return ShadowStats(
                decisions=self._total,
                window=n,
                agreement=self._agreeing / n if n else 1.0,
                below_threshold=self._below,
                alerts=self._alerts,
                disagreements=tuple(self._recent),
            )
