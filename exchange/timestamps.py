"""Time stamps at the command line and in reports: ISO date/time <-> epoch milliseconds (UTC).

One home for the conversions the local exchange, the factory and the download tools all take."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_ms(iso: str) -> int:
    """``2025-01-01``, ``2025-01-01T00:00:00Z`` or with an offset -> epoch ms (naive means UTC)."""
    d = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int((d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp() * 1000)


def ms_iso(ms: int) -> str:
    """Epoch ms -> ``2025-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """Milliseconds since the epoch, or an ISO date/time (UTC when no zone is given). As an argparse
    ``type=``, a bad value is reported as ``invalid parse_time value``."""
    return int(text) if text.isdigit() else iso_ms(text)
