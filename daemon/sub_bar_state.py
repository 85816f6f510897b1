"""Where the daemon's sub-bar schedule stands (strategy/sub_bars.py says what runs when).

The loop keeps one; booking reads it to book funding up to a tick; persistence saves it with the
kernel state (kv ``sub_bars``) so a restart resumes the schedule where it stood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


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

    def to_json(self) -> str:
        return json.dumps({"last_eval": self.last_eval, "done": self.done, "funded_to": self.funded_to,
                           "last_px": self.last_px}, sort_keys=True)  # fmt: skip

    def load_json(self, text: str | None) -> None:
        d = json.loads(text) if text else {}
        self.last_eval, self.done, self.funded_to = d.get("last_eval"), d.get("done"), d.get("funded_to")
        self.last_px = {str(k): float(v) for k, v in (d.get("last_px") or {}).items()}
