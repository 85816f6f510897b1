"""Candle interval names and their lengths in milliseconds.

The list mirrors ``INTERVALS`` in ``kernel/aiq-config/src/lib.rs``; the two must agree.
"""

from __future__ import annotations

INTERVALS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

HOUR_MS = 3_600_000


class UnknownIntervalError(ValueError):
    """An interval name that is not in ``INTERVALS``."""


def interval_ms(name: str) -> int:
    """Milliseconds in the interval ``name`` (``1m`` ... ``1d``)."""
    try:
        return INTERVALS[name]
    except KeyError:
        raise UnknownIntervalError(
            f"unknown interval {name!r}; expected one of {', '.join(INTERVALS)}"
        ) from None


def parse_interval_list(text: str) -> list[str]:
    """``"5m,15m,1h"`` -> ``["5m", "15m", "1h"]``, each checked."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        interval_ms(name)
    return names
