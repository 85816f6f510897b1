"""Fault injection. Every random decision comes from one ``random.Random(seed)``, so a run is reproducible."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class FaultConfig:
    ws_drop_rate: float = 0.0  # fraction of outgoing WS data frames dropped
    ws_delay_rate: float = 0.0  # fraction of outgoing WS data frames delayed by ws_delay_ms
    ws_delay_ms: int = 0
    duplicate_fill_rate: float = 0.0  # fraction of fill pushes sent twice
    fill_delay_ms: int = 0  # user pushes (fills, orderUpdates, userEvents) held back this long
    http_5xx_rate: float = 0.0  # fraction of /info and /exchange requests answered 500
    http_429_rate: float = 0.0  # fraction answered 429 with body null
    freeze_mids: bool = False  # market data stops moving (stale stream)
    reject_orders: str | None = None  # every order gets {"error": <this>}
    reject_rate: float = 1.0  # fraction of orders rejected while reject_orders is set

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name: f for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown fault {key!r}")
            setattr(self, key, value)


@dataclass
class Faults:
    config: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def _roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        return self.rng.random() < rate

    def http_fault(self) -> int | None:
        """500 or 429 for this request, or None."""
        c = self.config
        if c.http_5xx_rate <= 0 and c.http_429_rate <= 0:
            return None
        x = self.rng.random()
        if x < c.http_5xx_rate:
            return 500
        if x < c.http_5xx_rate + c.http_429_rate:
            return 429
        return None

    def drop_frame(self) -> bool:
        return self._roll(self.config.ws_drop_rate)

    def frame_delay_s(self) -> float:
        if self.config.ws_delay_ms > 0 and self._roll(self.config.ws_delay_rate):
            return self.config.ws_delay_ms / 1000.0
        return 0.0

    def duplicate_fill(self) -> bool:
        return self._roll(self.config.duplicate_fill_rate)

    def reject_order(self) -> str | None:
        msg = self.config.reject_orders
        if msg and self._roll(self.config.reject_rate):
            return msg
        return None
