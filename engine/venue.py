"""Whether the venue is reachable (which venue a URL names: exchange/venue_url.py).

* ``unreachable_reason``: whether an exception means the venue could not be reached; it is
  exchange/venue_errors.py's (the one classifier of venue failures), named here for the loop.
* :class:`VenueStatus`: the daemon's view of reachability over time, fed by every venue call of the
  market-data hub and by failed loops; ``down_since_ms`` is the wall-clock time of the first failure
  of the current outage (the venue's own clock is what is unreachable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from exchange.venue_errors import unreachable_reason


def iso_utc(ms: int) -> str:
    """``2026-12-04T21:30:05Z`` (seconds; one token, so a heartbeat line stays ``key=value`` parsable)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class VenueStatus:
    """Reachability: the last venue call decides; an outage starts at its first failure."""

    down_since_ms: int | None = None
    reason: str = ""
    failures: int = 0  # failed calls so far (a loop that adds none did not fail on the venue)

    def ok(self) -> None:
        self.down_since_ms = None
        self.reason = ""

    def failed(self, reason: str, now_ms: int | None = None) -> None:
        self.failures += 1
        if self.down_since_ms is None:
            self.down_since_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self.reason = reason

    @property
    def down(self) -> bool:
        return self.down_since_ms is not None

    def since_iso(self) -> str:
        """The outage's start as ISO UTC while down, else empty."""
        return "" if self.down_since_ms is None else iso_utc(self.down_since_ms)


__all__ = ["VenueStatus", "iso_utc", "unreachable_reason"]
