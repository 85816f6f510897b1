"""Where the daemon's sub-bar schedule stands (strategy/sub_bars.py says what runs when).

The loop keeps one and asks it for the closed sub-bar ticks it has not run yet
(:meth:`SubBarState.new_ticks`); booking reads it to book funding up to a tick; persistence saves
it with the kernel state (kv ``sub_bars``) so a restart resumes the schedule where it stood.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import bt_runtime

from exchange.model import Bar
from strategy.sub_bars import SubBar, Tick, merge


@dataclass
class SubBarState:
    """Where the sub-bar schedule stands (persisted with the kernel state, kv ``sub_bars``)."""

    entry: str  # engine.entry_interval ("" = none)
    exit: str  # engine.exit_interval ("" = none)
    last_eval: int | None = None  # decision time of the last live main evaluate
    done: int | None = None  # ticks up to here are run or skipped
    funded_to: int | None = None  # funding events up to here are booked
    last_px: dict[str, float] = field(default_factory=dict)  # latest bar or sub-bar close

    @property
    def intervals(self) -> list[str]:
        return sorted({i for i in (self.entry, self.exit) if i})

    def new_ticks(
        self, closed_bars: Callable[..., Sequence[Bar]], symbols: Sequence[str], now: int, lookback: int
    ) -> list[Tick]:
        """Closed entry and exit sub-bars after the last consumed tick, as ticks (``closed_bars`` is
        the market-data hub's)."""
        got: dict[str, list[SubBar]] = {}
        for iv in self.intervals:
            iv_ms = int(bt_runtime.intervals()[iv])
            out: list[SubBar] = []
            for s in symbols:
                last = None if self.done is None else self.done - iv_ms
                for b in closed_bars(s, last, now, lookback, interval=iv):
                    out.append(SubBar(s, b.t + iv_ms, b.c))
            got[iv] = out
        return merge(got.get(self.entry, []), got.get(self.exit, []))

    def to_json(self) -> str:
        return json.dumps({"last_eval": self.last_eval, "done": self.done, "funded_to": self.funded_to,
                           "last_px": self.last_px}, sort_keys=True)  # fmt: skip

    def load_json(self, text: str | None) -> None:
        d = json.loads(text) if text else {}
        self.last_eval, self.done, self.funded_to = d.get("last_eval"), d.get("done"), d.get("funded_to")
        self.last_px = {str(k): float(v) for k, v in (d.get("last_px") or {}).items()}
