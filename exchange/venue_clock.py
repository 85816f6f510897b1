"""The venue's clock against ours.

A local exchange with ``--speed N`` runs N venue milliseconds per wall millisecond, so a span
our process measures on its own clock (the daemon's loop, the dead man's switch horizon) is N
times longer on the venue's. :class:`VenueClock` learns the rate from the venue's
``exchangeStatus`` times read over our monotonic clock and converts wall spans into venue spans.
On the real venue the rate is 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MIN_BASELINE_S = 0.25  # readings closer than this tell too little about the rate
MAX_RATE = 10_000.0  # a stepped venue can jump by days between two readings
NEAR_ONE = 0.1  # within 10 % of real time: the real venue, network jitter aside


class VenueClock:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None

    def observe(self, venue_ms: int) -> None:
        """Record one reading of the venue's clock (ms), taken now."""
        now = self._clock()
        if self._first is None:
            self._first = (now, int(venue_ms))
        self._last = (now, int(venue_ms))

    def rate(self) -> float:
        """Venue ms per wall ms since the first reading; 1 until measured, never below 1."""
        if self._first is None or self._last is None:
            return 1.0
        (m0, v0), (m1, v1) = self._first, self._last
        if m1 - m0 < MIN_BASELINE_S:
            return 1.0
        r = (v1 - v0) / ((m1 - m0) * 1000.0)
        return 1.0 if r < 1.0 + NEAR_ONE else min(MAX_RATE, r)

    def venue_span_ms(self, wall_ms: float) -> int:
        """``wall_ms`` of our time, in the venue's milliseconds."""
        return int(wall_ms * self.rate())


__all__ = ["VenueClock"]
