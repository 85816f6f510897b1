"""The venue's REST request weights and budget (protocol reference §9), in one place.

The local exchange charges with them (exchange/sim/ratelimit.py); our clients meter what they
spend with them (:class:`WeightMeter`) and size their back-off after an HTTP 429 from them.

Per IP: 1200 weight per minute. ``/exchange``: ``1 + floor(batch / 40)``. ``/info``: 2 for the
light types below, 60 for ``userRole``, 20 for everything else, plus 1 per 20 items returned by
the fill/funding/order history types and 1 per 60 candles returned by ``candleSnapshot``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

BUDGET_PER_MIN = 1200  # weight per minute per IP
WINDOW_S = 60.0
LIGHT_INFO = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
PER_20_ITEMS = frozenset(
    {"userFills", "userFillsByTime", "fundingHistory", "userFunding", "historicalOrders"}
)
PER_60_ITEMS = frozenset({"candleSnapshot"})


def info_weight(req_type: str) -> int:
    """Weight charged before an ``/info`` request of ``req_type`` is answered."""
    if req_type in LIGHT_INFO:
        return 2
    if req_type == "userRole":
        return 60
    return 20


def info_extra_weight(req_type: str, result: Any) -> int:
    """Extra weight charged after the answer, per returned item."""
    if not isinstance(result, list):
        return 0
    if req_type in PER_20_ITEMS:
        return len(result) // 20
    if req_type in PER_60_ITEMS:
        return len(result) // 60
    return 0


def exchange_weight(action: Any) -> int:
    """Weight of one ``/exchange`` action: ``1 + floor(batch_length / 40)``."""
    n = 1
    if isinstance(action, dict):
        for key in ("orders", "cancels", "modifies"):
            batch = action.get(key)
            if isinstance(batch, list):
                n = len(batch)
    return 1 + n // 40


def request_weight(path: str, payload: Any, result: Any = None) -> int:
    """Total weight of one REST request (``path`` ``/info`` or ``/exchange``)."""
    body = payload if isinstance(payload, dict) else {}
    if path.endswith("/exchange"):
        return exchange_weight(body.get("action"))
    req_type = str(body.get("type"))
    return info_weight(req_type) + info_extra_weight(req_type, result)


def refill_s(weight: float, budget: int = BUDGET_PER_MIN) -> float:
    """Seconds the venue's minute window needs, on average, to free ``weight`` (budget / 60 s)."""
    return WINDOW_S * max(0.0, weight) / max(1, budget)


def backoff_s(weight: float, attempt: int, budget: int = BUDGET_PER_MIN) -> float:
    """Wait after the ``attempt``-th HTTP 429 in a row (0 first) before a request costing ``weight``:
    the time the window needs to free that weight, at least 2 s, doubled per attempt, at most the
    whole window (after which the full budget is free again)."""
    return min(WINDOW_S, max(2.0, refill_s(weight, budget)) * 2.0 ** max(0, attempt))


class WeightMeter:
    """The weight a client spent, by the venue's table: in total and over the last minute.

    :meth:`attach` wraps an SDK object's ``post`` (``Info``/``API``), so every request it makes
    is counted, refused ones included (they tell nothing about what the venue charged)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: deque[tuple[float, int]] = deque()
        self.total = 0
        self.requests = 0

    def add(self, weight: int) -> None:
        now = self._clock()
        with self._lock:
            self.total += weight
            self.requests += 1
            self._recent.append((now, weight))
            while self._recent and self._recent[0][0] <= now - WINDOW_S:
                self._recent.popleft()

    def last_minute(self) -> int:
        now = self._clock()
        with self._lock:
            return sum(w for t, w in self._recent if t > now - WINDOW_S)

    def attach(self, api: Any) -> Any:
        post = api.post

        def metered(url_path: str, payload: Any = None) -> Any:
            try:
                result = post(url_path, payload)
            except Exception:
                self.add(request_weight(url_path, payload))
                raise
            self.add(request_weight(url_path, payload, result))
            return result

        api.post = metered
        return api


__all__ = [
    "BUDGET_PER_MIN",
    "WINDOW_S",
    "WeightMeter",
    "backoff_s",
    "exchange_weight",
    "info_extra_weight",
    "info_weight",
    "refill_s",
    "request_weight",
]
