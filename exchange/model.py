"""The trading vocabulary every layer shares (the bottom of the package graph, docs/architecture.md).

Types here import nothing of ours, so the venue adapters, the engine, the strategy code, the tools
and the tests can all use them without an import cycle. Today: the closed bar.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed candle; ``t`` is the open time in milliseconds."""

    symbol: str
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - OHLC naming
    c: float
    v: float
