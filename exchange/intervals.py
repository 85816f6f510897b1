"""Candle interval names and their lengths in milliseconds: the one list, read from a data file.

``kernel/aiq-config/intervals.txt`` is the single source; Rust reads the same file at build time
(``aiq_config::INTERVALS``, exported as ``bt_runtime.intervals()``), so the two languages cannot
disagree. ``tests/ops/test_interval_list.py`` fails on any second list.
"""

from __future__ import annotations

from pathlib import Path

INTERVALS_FILE = Path(__file__).resolve().parent.parent / "kernel" / "aiq-config" / "intervals.txt"


def _rows() -> list[tuple[str, int, bool]]:
    rows = []
    for line in INTERVALS_FILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, ms, kept = line.split()
        if kept not in ("store", "venue"):
            raise ValueError(f"{INTERVALS_FILE}: bad row {line!r}")
        rows.append((name, 0 if ms == "-" else int(ms), kept == "store"))
    return rows


_ROWS = _rows()

#: Intervals the candle store keeps, shortest first: ``{"1m": 60000, ..., "1d": 86400000}``.
INTERVALS: dict[str, int] = {name: ms for name, ms, stored in _ROWS if stored}
#: Every interval name the venue serves, stored or not (``1m`` ... ``1M``).
VENUE_INTERVALS: tuple[str, ...] = tuple(name for name, _, _ in _ROWS)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


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
