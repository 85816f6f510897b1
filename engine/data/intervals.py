"""Candle interval names and their lengths in milliseconds (the one list lives in
``exchange/intervals.py``, read from ``kernel/aiq-config/intervals.txt``; re-exported here for the
data layer's callers)."""

from __future__ import annotations

from exchange.intervals import (
    HOUR_MS,
    INTERVALS,
    UnknownIntervalError,
    interval_ms,
    parse_interval_list,
)

__all__ = ["HOUR_MS", "INTERVALS", "UnknownIntervalError", "interval_ms", "parse_interval_list"]
