"""Per-IP REST weight budget per minute (protocol reference section 9)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_MS = 60_000
_LIGHT = {
    "l2Book",
    "allMids",
    "clearinghouseState",
    "orderStatus",
    "spotClearinghouseState",
    "exchangeStatus",
}
_PER_20 = {"userFills", "userFillsByTime", "fundingHistory", "userFunding", "historicalOrders"}


def info_weight(req_type: str) -> int:
    if req_type in _LIGHT:
        return 2
    if req_type == "userRole":
        return 60
    return 20


def info_extra_weight(req_type: str, result: Any) -> int:
    """Extra weight charged after the answer, per returned item."""
    if not isinstance(result, list):
        return 0
    if req_type in _PER_20:
        return len(result) // 20
    if req_type == "candleSnapshot":
        return len(result) // 60
    return 0


def exchange_weight(action: Any) -> int:
    n = 1
    if isinstance(action, dict):
        for key in ("orders", "cancels", "modifies"):
            batch = action.get(key)
            if isinstance(batch, list):
                n = len(batch)
    return 1 + n // 40


@dataclass
class RateLimiter:
    budget: int = 1200  # weight per minute per IP; 0 disables
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
