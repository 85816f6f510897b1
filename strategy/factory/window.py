"""Time windows of the factory: ISO timestamps <-> epoch milliseconds, and the bar length of each
interval it sweeps. One home for what pipeline, optimize and reopt all need (#24)."""

from __future__ import annotations

import datetime as dt

from exchange.intervals import HOUR_MS, INTERVALS

# The intervals a factory profile may use: those of the one list up to an hour.
INTERVAL_MS = {name: ms for name, ms in INTERVALS.items() if ms <= HOUR_MS}


def iso_ms(iso: str) -> int:
    """``2025-01-01``, ``2025-01-01T00:00:00Z`` or with an offset -> epoch ms (naive means UTC)."""
    d = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int((d if d.tzinfo else d.replace(tzinfo=dt.UTC)).timestamp() * 1000)


def ms_iso(ms: int) -> str:
    """Epoch ms -> ``2025-01-01T00:00:00Z``."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
