"""LoopReport: what one loop of the daemon did, counted by the loop and the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopReport:
    loop: int
    now_ms: int
    bars: int = 0
    fills: int = 0
    rejected: int = 0
    blocked: int = 0
    ticks: int = 0  # sub-bar ticks run
    seconds: float = 0.0
    error: str = ""


__all__ = ["LoopReport"]
