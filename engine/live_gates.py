"""Safety gates for live order placement.

Orders reach the venue only when **all** of these hold:

* ``AI_QUANT_LIVE_ENABLE`` is exactly ``1``;
* ``AI_QUANT_LIVE_CONFIRM`` is exactly ``I_UNDERSTAND_THIS_CAN_LOSE_MONEY``;
* the hard kill switch ``AI_QUANT_HARD_KILL_SWITCH`` is off (unset, empty, ``0``, ``false``, ``no``,
  ``off``). Any other value, including one we do not recognise, counts as **on** (fail closed).

Anything else runs as dry_live: intents are recorded as WOULD and nothing is sent. The confirmation
phrase is never echoed in a problem message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

LIVE_ENABLE_VAR: Final = "AI_QUANT_LIVE_ENABLE"
LIVE_CONFIRM_VAR: Final = "AI_QUANT_LIVE_CONFIRM"
HARD_KILL_VAR: Final = "AI_QUANT_HARD_KILL_SWITCH"
LIVE_CONFIRM_PHRASE: Final = "I_UNDERSTAND_THIS_CAN_LOSE_MONEY"
_OFF: Final = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class GateDecision:
    live_orders: bool
    problems: tuple[str, ...]

    @property
    def mode(self) -> str:
        return "live" if self.live_orders else "dry_live"


def hard_kill_on(environ: Mapping[str, str]) -> bool:
    raw = environ.get(HARD_KILL_VAR)
    return raw is not None and raw.strip().lower() not in _OFF


def evaluate_gates(environ: Mapping[str, str] | None = None, *, want_live: bool = True) -> GateDecision:
    env = os.environ if environ is None else environ
    problems: list[str] = []
    if not want_live:
        problems.append("dry_live requested")
    if env.get(LIVE_ENABLE_VAR, "").strip() != "1":
        problems.append(f"{LIVE_ENABLE_VAR} is not 1")
    if env.get(LIVE_CONFIRM_VAR, "") != LIVE_CONFIRM_PHRASE:
        problems.append(f"{LIVE_CONFIRM_VAR} is not the confirmation phrase")
    if hard_kill_on(env):
        problems.append(f"{HARD_KILL_VAR} is on")
    return GateDecision(not problems, tuple(problems))
