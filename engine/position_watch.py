"""The kernel's positions against the venue's, every live loop.

The OMS reconciler compares the OMS (the sum of its fills) with the venue; nothing else compares
the *kernel*, whose exits act on the positions it believes it holds. A kernel that diverged (a
fill booked twice or never, a state restored from the wrong file) would close a position the
venue does not hold or never close one it does, silently. This module finds such a divergence;
the loop alerts on it and writes an audit row.

A loop compares the kernel after its bookings with the account read at the start of the loop, so
an order filled within the loop differs for one loop; a divergence counts once the same sizes
have differed for ``loops`` loops in a row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Divergence:
    symbol: str
    #: Signed sizes (long > 0); 0.0 where one side holds nothing.
    kernel: float
    venue: float


def divergences(
    kernel: Mapping[str, float], venue: Mapping[str, float], skip: Collection[str] = ()
) -> list[Divergence]:
    """Symbols (in name order, ``skip`` left out) whose signed sizes differ by more than float
    noise (a kernel size is a sum of fill sizes in binary floating point)."""
    out = []
    for s in sorted((set(kernel) | set(venue)) - set(skip)):
        k, v = float(kernel.get(s, 0.0)), float(venue.get(s, 0.0))
        if abs(k - v) > 1e-9 * max(1.0, abs(k), abs(v)):
            out.append(Divergence(s, k, v))
    return out


class DivergenceWatch:
    """Confirms a divergence once the same one has been seen ``loops`` loops in a row."""

    def __init__(self, loops: int = 3) -> None:
        if loops < 1:
            raise ValueError("loops must be >= 1")
        self.loops = loops
        self._seen: dict[str, tuple[Divergence, int]] = {}
        self.confirmed: dict[str, Divergence] = {}

    def observe(self, found: list[Divergence]) -> tuple[list[Divergence], list[str]]:
        """One loop's divergences: returns (newly confirmed, symbols that agree again after a
        confirmed divergence)."""
        now = {d.symbol: d for d in found}
        new: list[Divergence] = []
        for s, d in now.items():
            prev = self._seen.get(s)
            n = prev[1] + 1 if prev is not None and prev[0] == d else 1
            self._seen[s] = (d, n)
            if n >= self.loops and self.confirmed.get(s) != d:
                self.confirmed[s] = d
                new.append(d)
        for s in [s for s in self._seen if s not in now]:
            del self._seen[s]
        resolved = sorted(s for s in self.confirmed if s not in now)
        for s in resolved:
            del self.confirmed[s]
        return new, resolved
