"""Per-IP REST weight budget per minute (protocol reference section 9); the weights are the
clients' own table (exchange/venue_limits.py)."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from exchange.venue_limits import BUDGET_PER_MIN, WINDOW_S, exchange_weight, info_extra_weight, info_weight

WINDOW_MS = int(WINDOW_S * 1000)


log = logging.getLogger("exchange.sim.ratelimit")


@dataclass
class RateLimiter:
    """Charges each IP's requests; refuses (429) what would exceed ``budget`` in the last minute.

    Every minute of wall time it logs what each IP spent and how many requests it refused, so an
    operator sees how close the set-up runs to the budget (counted with ``budget`` 0 too)."""

    budget: int = BUDGET_PER_MIN  # weight per minute per IP; 0 disables
    spent: dict[str, deque[tuple[int, int]]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    minute: dict[str, list[int]] = field(default_factory=dict)  # ip -> [weight, refused] this minute
    minute_start_ms: int = 0
    refused: int = 0  # requests answered 429 since start, all IPs

    def _tally(self, ip: str, weight: int, refused: bool, now_ms: int) -> None:
        if now_ms - self.minute_start_ms >= WINDOW_MS:
            self.report()
            self.minute_start_ms = now_ms
        row = self.minute.setdefault(ip, [0, 0])
        row[0] += 0 if refused else weight
        row[1] += int(refused)
        self.refused += int(refused)

    def report(self) -> None:
        """Log the minute's weight per IP (and clear it)."""
        for ip, (weight, refused) in sorted(self.minute.items()):
            budget = f"/{self.budget}" if self.budget > 0 else " (no limit)"
            log.log(
                logging.WARNING if refused else logging.INFO,
                "REST weight in the last minute: %s spent %d%s, %d requests answered 429",
                ip, weight, budget, refused,
            )  # fmt: skip
        self.minute.clear()

    def _trim(self, ip: str, now_ms: int) -> None:
        q = self.spent.get(ip)
        if q is None:
            return
        while q and q[0][0] <= now_ms - WINDOW_MS:
            _, w = q.popleft()
            self.totals[ip] -= w

    def allow(self, ip: str, weight: int, now_ms: int) -> bool:
        """Charge ``weight``; False (nothing charged) when the minute's budget would be exceeded."""
        if self.budget > 0:
            self._trim(ip, now_ms)
            if self.totals.get(ip, 0) + weight > self.budget:
                self._tally(ip, weight, True, now_ms)
                return False
        self.charge(ip, weight, now_ms)
        return True

    def charge(self, ip: str, weight: int, now_ms: int) -> None:
        if weight <= 0:
            return
        self._tally(ip, weight, False, now_ms)
        if self.budget <= 0:
            return
        self.spent.setdefault(ip, deque()).append((now_ms, weight))
        self.totals[ip] = self.totals.get(ip, 0) + weight


__all__ = ["WINDOW_MS", "RateLimiter", "exchange_weight", "info_extra_weight", "info_weight"]
