"""Sub-bar ticks (``engine.entry_interval`` / ``engine.exit_interval``): which kernel call runs when.

The one statement of the replay's calling convention (``ai-quant-bt replay --entry-interval
--exit-interval``, kernel/aiq-backtest/src/sim.rs, docs/backtester.md "Sub-bar entries and exits")
for Python: the daemon drives its kernel with it, and the parity test drives a simulating kernel
with it against the binary, bit for bit. Pure functions, no I/O.

* A main bar decides at its close ``T``; the sub-bar ticks of the forward window ``(T, T_next)``
  run between it and the next main decision. The tick at ``T_next`` itself is the next main bar's
  own ``evaluate``; ticks before the first main decision are not run.
* A tick is the union of every symbol's entry and exit sub-bar close times. At a tick, funding due
  at or before it is booked first (at each symbol's latest price), then ``on_mid`` with the exit
  sub-bar close for every symbol holding a position (name order), then one
  ``evaluate_sub_bar`` with the entry sub-bar closes.
* Funding: each event ``F`` is booked once, at the first tick or main step at or after ``F``, in
  ``(F, symbol)`` order, only on a symbol holding a position then; at a main step after its
  candles, before its ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubBar:
    """One closed sub-bar: its close time (open + interval) and close price."""

    symbol: str
    close_ms: int
    price: float


@dataclass(frozen=True, slots=True)
class Tick:
    """One sub-bar tick: the exit and entry sub-bar closes due at ``t``, in symbol name order."""

    t: int
    exits: tuple[tuple[str, float], ...]
    entries: tuple[tuple[str, float], ...]

    def prices(self) -> list[tuple[str, float]]:
        """Each symbol's latest price after this tick (an entry close over an exit close)."""
        px = dict(self.exits)
        px.update(self.entries)
        return sorted(px.items())


def merge(entry: Iterable[SubBar], exit_: Iterable[SubBar]) -> list[Tick]:
    """Entry and exit sub-bars as ticks, ascending by time."""
    by_t: dict[int, tuple[dict[str, float], dict[str, float]]] = {}
    for bars, k in ((exit_, 0), (entry, 1)):
        for b in bars:
            by_t.setdefault(b.close_ms, ({}, {}))[k][b.symbol] = b.price
    return [
        Tick(t, tuple(sorted(ex.items())), tuple(sorted(en.items()))) for t, (ex, en) in sorted(by_t.items())
    ]


@dataclass(frozen=True, slots=True)
class Step:
    """One kernel step of a schedule: a sub-bar tick, or the main evaluate at ``t`` (a bar close)."""

    t: int
    tick: Tick | None  # None: the main step whose bars close at t


def schedule(
    main_closes: Sequence[int], ticks: Sequence[Tick], last_eval: int | None, interval_ms: int
) -> tuple[list[Step], int | None, int | None]:
    """Interleave main decisions (bar close times, ascending) and sub-bar ticks as the replay does.

    ``last_eval`` is the decision time of the last main evaluate already run (None: none yet).
    Returns ``(steps, last_eval, done_ms)``: ``done_ms`` is the time up to which ticks are consumed
    (run, or skipped by the rules); later ticks wait for their main bar (a tick at or after the next
    main close cannot run before it). ``done_ms`` is None when nothing was consumed."""
    steps: list[Step] = []
    done: int | None = None
    j = 0
    for tc in main_closes:
        while j < len(ticks) and ticks[j].t < tc:
            tau = ticks[j].t
            if last_eval is not None and tau > last_eval:
                steps.append(Step(tau, ticks[j]))
            done = tau
            j += 1
        steps.append(Step(tc, None))
        last_eval = done = tc
    if last_eval is not None:
        while j < len(ticks) and ticks[j].t < last_eval + interval_ms:
            if ticks[j].t > last_eval:
                steps.append(Step(ticks[j].t, ticks[j]))
            done = ticks[j].t if done is None else max(done, ticks[j].t)
            j += 1
    return steps, last_eval, done


def funding_due(
    events: Iterable[tuple[int, str, float]], after_ms: int | None, until_ms: int
) -> list[tuple[int, str, float]]:
    """Funding events ``(time, symbol, rate)`` in ``(after_ms, until_ms]``, in ``(time, symbol)`` order."""
    lo = after_ms if after_ms is not None else -(2**62)
    return sorted(e for e in events if lo < e[0] <= until_ms)


__all__ = ["Step", "SubBar", "Tick", "funding_due", "merge", "schedule"]
