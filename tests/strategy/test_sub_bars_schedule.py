"""strategy/sub_bars.py: the replay's sub-bar schedule, run incrementally as the daemon runs it
(whatever has closed by each loop's clock, several ticks and bars per loop or none) gives exactly
the steps of one pass over the whole run; ticks wait for their main bar; none run before the first
main decision; funding is due in (after, until] in (time, symbol) order."""

from __future__ import annotations

import random

import pytest

from strategy.sub_bars import Step, SubBar, funding_due, merge, schedule

MAIN, SUB = 1_800_000, 180_000
SYMS = ("BTC", "ETH", "kPEPE")


def _market(seed: int) -> tuple[list[int], list[SubBar], list[SubBar]]:
    rng = random.Random(seed)
    t0 = 1_750_000_000_000 // MAIN * MAIN
    closes = [t0 + k * MAIN for k in range(1, 40)]
    entry, exit_ = [], []
    for s in SYMS:
        for k in range(1, 39 * MAIN // SUB + 1):
            if rng.random() < 0.05:
                continue  # a symbol without a sub-bar at some ticks (a gap)
            b = SubBar(s, t0 + k * SUB, 100.0 + rng.random())
            exit_.append(b)
            if rng.random() < 0.8:
                entry.append(b)
    return closes, entry, exit_


@pytest.mark.parametrize("seed", range(6))
def test_incremental_schedule_equals_one_pass(seed: int) -> None:
    closes, entry, exit_ = _market(seed)
    ticks = merge(entry, exit_)
    whole, _, _ = schedule(closes, ticks, None, MAIN)
    assert whole[0] == Step(closes[0], None)  # nothing before the first main decision
    assert {s.t for s in whole if s.tick is not None}.isdisjoint(closes)  # a main close is its own step

    rng = random.Random(100 + seed)
    got: list[Step] = []
    last_eval: int | None = None
    done: int | None = None
    mains_done = 0
    now = closes[0] - MAIN
    while now < closes[-1]:
        now = min(closes[-1], now + rng.choice([SUB, 2 * SUB, 7 * SUB, MAIN, 2 * MAIN + SUB]))
        # a main bar may arrive a loop later than its sub-bars (a lagging source)
        lag = rng.random() < 0.3
        mains = [c for c in closes[mains_done:] if c <= now - (SUB if lag else 0)]
        mine = [t for t in ticks if (done is None or t.t > done) and t.t <= now]
        steps, last_eval, new_done = schedule(mains, mine, last_eval, MAIN)
        mains_done += len(mains)
        done = new_done if new_done is not None else done
        got += steps
    mains = closes[mains_done:]
    steps, _, _ = schedule(mains, [t for t in ticks if done is None or t.t > done], last_eval, MAIN)
    got += steps
    assert got == whole


def test_ticks_wait_for_their_main_bar() -> None:
    closes, entry, exit_ = _market(0)
    ticks = merge(entry, exit_)
    steps, last_eval, done = schedule(closes[:1], ticks, None, MAIN)
    assert last_eval == closes[0]
    assert steps[-1].t < closes[0] + MAIN and done == steps[-1].t  # the rest waits for closes[1]
    assert all(s.tick is not None for s in steps[1:])


def test_funding_due_is_half_open_and_ordered() -> None:
    ev = [(7_200_000, "ETH", 0.2), (3_600_000, "ETH", 0.1), (3_600_000, "BTC", 0.3), (0, "BTC", 0.0)]
    assert funding_due(ev, 0, 3_600_000) == [(3_600_000, "BTC", 0.3), (3_600_000, "ETH", 0.1)]
    assert funding_due(ev, None, 0) == [(0, "BTC", 0.0)]
    assert funding_due(ev, 3_600_000, 7_199_999) == []
