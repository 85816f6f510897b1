"""Candle interval names and their lengths in milliseconds.

The table is the kernel's (``INTERVALS`` in ``kernel/aiq-config/src/lib.rs``, exported as
``bt_runtime.intervals()``): one list for the data layer, the kernel and the backtester.
"""

from __future__ import annotations

import bt_runtime

INTERVALS: dict[str, int] = dict(sorted(bt_runtime.intervals().items(), key=lambda kv: kv[1]))

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
