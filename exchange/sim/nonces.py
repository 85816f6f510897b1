"""Nonce rules: the 100 highest nonces per signer, duplicates rejected, a time window around T."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

DAY_MS = 86_400_000


@dataclass
class NonceTracker:
    keep: int = 100
    low_window_ms: int = 2 * DAY_MS
    high_window_ms: int = DAY_MS
    used: dict[str, list[int]] = field(default_factory=dict)  # min-heaps of the highest nonces
    members: dict[str, set[int]] = field(default_factory=dict)

    def check(self, signer: str, nonce: int, now_ms: int) -> str | None:
        """Error text, or ``None`` when ``nonce`` may be used (it is not recorded)."""
        heap = self.used.get(signer, [])
        if nonce in self.members.get(signer, set()):
            return f"Invalid nonce: duplicate nonce {nonce}"
        lo = now_ms - self.low_window_ms
        hi = now_ms + self.high_window_ms
        if nonce <= lo:
            return f"Invalid nonce: nonce too low {nonce} < {lo}"
        if nonce >= hi:
            return f"Invalid nonce: nonce too high {nonce} > {hi}"
        if len(heap) >= self.keep and nonce <= heap[0]:
            return f"Invalid nonce: nonce too low {nonce} < {heap[0]}"
        return None

    def use(self, signer: str, nonce: int) -> None:
        heap = self.used.setdefault(signer, [])
        members = self.members.setdefault(signer, set())
        heapq.heappush(heap, nonce)
        members.add(nonce)
        while len(heap) > self.keep:
            members.discard(heapq.heappop(heap))

    def check_and_use(self, signer: str, nonce: int, now_ms: int) -> str | None:
        err = self.check(signer, nonce, now_ms)
        if err is None:
            self.use(signer, nonce)
        return err

    def snapshot(self, signer: str) -> list[int]:
        return sorted(self.used.get(signer, []))

    def restore(self, signer: str, nonces: list[int]) -> None:
        self.used[signer] = []
        self.members[signer] = set()
        for n in nonces:
            self.use(signer, n)
