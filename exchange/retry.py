"""The one retry policy: how often to try again and how long to wait, for whatever may be retried.

Each caller decides what is worth another try (a venue read that timed out or answered 5xx, an order
the venue says it did not process, an alert webhook that failed); this module says how many tries
and the waits between them: ``first_s`` doubled per retry, at most ``max_s``. A venue's HTTP 429 on
the daemon's loop and candle fetches waits by the request's weight instead
(exchange/venue_limits.py ``backoff_s``), because there the venue says how long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """``retries`` more tries after the first; before retry ``k`` (0 first) wait ``wait_s(k)``."""

    retries: int
    first_s: float
    max_s: float = float("inf")

    def __post_init__(self) -> None:
        if self.retries < 0 or self.first_s < 0 or self.max_s < self.first_s:
            raise ValueError(f"retry policy {self}: retries and first_s >= 0, max_s >= first_s")

    def wait_s(self, retry: int) -> float:
        return min(self.max_s, self.first_s * 2.0**retry)

    def call(
        self,
        fn: Callable[[], T],
        *,
        retryable: Callable[[BaseException], bool],
        sleep: Callable[[float], None] | None = None,
    ) -> T:
        """``fn()``, tried again after an exception ``retryable`` accepts while retries remain; the
        last exception (or the first one not retryable) is raised as it is."""

        def wait(state: RetryCallState) -> float:
            return self.wait_s(state.attempt_number - 1)

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait,
            retry=retry_if_exception(retryable),
            sleep=sleep or time.sleep,  # looked up now, so a patched time.sleep is the one used
            reraise=True,
        )
        return retrying(fn)


__all__ = ["Backoff"]
