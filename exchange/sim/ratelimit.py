"""Per-IP REST weight budget per minute (protocol reference section 9); the weights are the
clients' own table (exchange/venue_limits.py)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from exchange.venue_limits import BUDGET_PER_MIN, WINDOW_S, exchange_weight, info_extra_weight, info_weight

WINDOW_MS = int(WINDOW_S * 1000)


@dataclass
class RateLimiter:
    budget: int = BUDGET_PER_MIN  # weight per minute per IP; 0 disables
    spent: dict[str, deque[tuple[int, int]]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    def _trim(self, ip: str, now_ms: int) -> None:
        q = self.spent.get(ip)
        if q is None:
            return
        while q and q[0][0] <= now_ms - WINDOW_MS:
            _, w = q.popleft()
            self.totals[ip] -= w

    def allow(self, ip: str, weight: int, now_ms: int) -> bool:
        """Charge ``weight``; False (nothing charged) when the minute's budget would be exceeded."""
        if self.budget <= 0:
            return True
        self._trim(ip, now_ms)
        if self.totals.get(ip, 0) + weight > self.budget:
            return False
        self.charge(ip, weight, now_ms)
        return True

    def charge(self, ip: str, weight: int, now_ms: int) -> None:
        if self.budget <= 0 or weight <= 0:
            return
        self.spent.setdefault(ip, deque()).append((now_ms, weight))
        self.totals[ip] = self.totals.get(ip, 0) + weight


__all__ = ["WINDOW_MS", "RateLimiter", "exchange_weight", "info_extra_weight", "info_weight"]
