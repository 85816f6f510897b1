"""Shadow mode: how often the kernel and the Python reference agree.

`ShadowDecisionTracker.record` takes both sides' decisions and the inputs behind them. It keeps the
rolling agreement over the last `window` decisions (default 1,000), calls `on_alert` once each time
the agreement falls below `threshold` (default 0.95; again only after it has recovered to the
threshold or above), and keeps the last `keep_disagreements` (default 50) disagreements with both
sides' inputs. Pure Python and thread-safe: `record` and `stats` may be called from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = ("buy", "sell", "neutral")
CONFIDENCES = ("low", "medium", "high")


@dataclass(frozen=True)
class ShadowAlert:
    """Passed to the alert callback when agreement crosses below the threshold."""

    agreement: float
    threshold: float
    window: int
    decisions: int
    message: str


AlertCallback = Callable[[ShadowAlert], None]


@dataclass(frozen=True)
class ShadowDecision:
    """One side's decision: signal (buy/sell/neutral) and confidence (low/medium/high).

    Accepts plain strings or the `Signal` / `Confidence` str enums of `strategy.mei_alpha_v1`.
    """

    signal: str
    confidence: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "signal", str(self.signal).lower())
        object.__setattr__(self, "confidence", str(self.confidence).lower())
        if self.signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {self.signal!r}")
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"confidence must be one of {CONFIDENCES}, got {self.confidence!r}")

    @classmethod
    def from_codes(cls, signal: int, confidence: int) -> ShadowDecision:
        """From the kernel's encoding: signal 1/-1/0, confidence 0/1/2."""
        return cls({1: "buy", -1: "sell", 0: "neutral"}[int(signal)], CONFIDENCES[int(confidence)])

    def key(self) -> tuple[str, str]:
        # A neutral signal has no meaningful confidence: two neutrals always agree.
        return (self.signal, self.confidence if self.signal != "neutral" else "")


@dataclass(frozen=True)
class Disagreement:
    """One decision on which the two sides differed, with the inputs each side saw."""

    seq: int
    symbol: str
    t: int
    kernel: ShadowDecision
    reference: ShadowDecision
    kernel_inputs: Mapping[str, Any] = field(default_factory=dict)
    reference_inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShadowStats:
    decisions: int  # recorded since construction
    window: int  # decisions currently in the rolling window
    agreement: float  # agreeing / in the window (1.0 when empty)
    below_threshold: bool
    alerts: int
    disagreements: tuple[Disagreement, ...]  # the most recent ones kept, oldest first
    disagreement_count: int  # since construction
    window_size: int  # configured window length
    threshold: float


class ShadowDecisionTracker:
    """Thread-safe rolling agreement between the kernel and the reference implementation.

    `min_decisions` (default 50) is how many decisions the window must hold before an alert can
    fire, so that one early disagreement does not alert at 0% agreement.
    """

    def __init__(
        self,
        window: int = 1000,
        threshold: float = 0.95,
        keep_disagreements: int = 50,
        on_alert: AlertCallback | None = None,
        min_decisions: int = 50,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if keep_disagreements < 0:
            raise ValueError("keep_disagreements must be >= 0")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        if min_decisions < 1:
            raise ValueError("min_decisions must be >= 1")
        self._window_size = window
        self._window: deque[bool] = deque()
        self._agreeing = 0
        self._threshold = threshold
        self._recent: deque[Disagreement] = deque(maxlen=keep_disagreements)
        self._on_alert = on_alert
        self._min_decisions = min(min_decisions, window)
        self._below = False
        self._alerts = 0
        self._total = 0
        self._disagreements = 0
        self._lock = threading.Lock()

    def record(
        self,
        symbol: str,
        t: int,
        kernel: ShadowDecision,
        reference: ShadowDecision,
        kernel_inputs: Mapping[str, Any] | None = None,
        reference_inputs: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record one decision pair; returns whether the two sides agreed.

        Inputs are kept (as read-only copies) only when the sides disagree. With only
        `kernel_inputs` given, both sides are taken to have seen the same inputs.
        """
        agree = kernel.key() == reference.key()
        alert: ShadowAlert | None = None
        with self._lock:
            self._total += 1
            if len(self._window) == self._window_size and self._window.popleft():
                self._agreeing -= 1
            self._window.append(agree)
            self._agreeing += agree
            if not agree:
                self._disagreements += 1
                k_in = dict(kernel_inputs or {})
                r_in = dict(reference_inputs) if reference_inputs is not None else dict(k_in)
                self._recent.append(
                    Disagreement(
                        self._total,
                        symbol,
                        int(t),
                        kernel,
                        reference,
                        MappingProxyType(k_in),
                        MappingProxyType(r_in),
                    )
                )
            rate = self._agreeing / len(self._window)
            if rate >= self._threshold:
                self._below = False
            elif not self._below and len(self._window) >= self._min_decisions:
                self._below = True
                self._alerts += 1
                alert = ShadowAlert(
                    rate,
                    self._threshold,
                    len(self._window),
                    self._total,
                    f"shadow mode: kernel/reference agreement {rate:.1%} over the last "
                    f"{len(self._window)} decisions is below {self._threshold:.1%}",
                )
        if alert is not None and self._on_alert is not None:
            try:  # a failing alert sink must not break the decision loop
                self._on_alert(alert)
            except Exception:
                log.exception("shadow mode alert callback failed")
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
                disagreement_count=self._disagreements,
                window_size=self._window_size,
                threshold=self._threshold,
            )
