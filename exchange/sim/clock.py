"""Simulation clock: real time, accelerated (x N) or stepped by tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Clock:
    """Sim time in ms.

    ``mode`` is ``"realtime"`` (sim time advances ``speed`` ms per wall ms from ``start_ms``)
    or ``"stepped"`` (sim time moves only through :meth:`advance` / :meth:`set`).
    """

    start_ms: int
    speed: float = 1.0
    mode: str = "realtime"
    _wall_anchor: float = field(default_factory=time.monotonic)
    _sim_anchor: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.mode not in ("realtime", "stepped"):
            raise ValueError(f"unknown clock mode {self.mode!r}")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        self._sim_anchor = self.start_ms

    @property
    def stepped(self) -> bool:
        return self.mode == "stepped"

    def now_ms(self) -> int:
        with self._lock:
            if self.mode == "stepped":
                return self._sim_anchor
            elapsed = time.monotonic() - self._wall_anchor
            return self._sim_anchor + int(elapsed * 1000.0 * self.speed)

    def advance(self, ms: int) -> int:
        """Move a stepped clock forward (a realtime clock jumps forward too)."""
        if ms < 0:
            raise ValueError("the clock never goes backwards")
        with self._lock:
            if self.mode == "stepped":
                self._sim_anchor += ms
                return self._sim_anchor
            self._sim_anchor += ms
        return self.now_ms()

    def set(self, t_ms: int) -> int:
        now = self.now_ms()
        if t_ms < now:
            raise ValueError("the clock never goes backwards")
        return self.advance(t_ms - now)
