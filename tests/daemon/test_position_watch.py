"""The kernel-vs-venue position check of the live loop (engine/position_watch.py)."""

from __future__ import annotations

import pytest

from engine.position_watch import Divergence, DivergenceWatch, divergences


def test_divergences_by_signed_size_with_float_noise_tolerated() -> None:
    kernel = {"BTC": 0.04466 + 0.05327, "ETH": 1.5, "SOL": -2.0, "kPEPE": 1000.0}
    venue = {"BTC": 0.09793, "ETH": 1.4, "SOL": 2.0, "DOGE": -10.0}
    assert divergences(kernel, venue) == [
        Divergence("DOGE", 0.0, -10.0),  # the venue holds what the kernel does not
        Divergence("ETH", 1.5, 1.4),
        Divergence("SOL", -2.0, 2.0),  # same size, other side
        Divergence("kPEPE", 1000.0, 0.0),  # the kernel holds what the venue does not
    ]
    # 0.04466 + 0.05327 = 0.09792999999999999: the same position as the venue's 0.09793
    assert divergences({"BTC": 0.04466 + 0.05327}, {"BTC": 0.09793}) == []
    # a sub-lot remainder is a divergence (the venue cannot hold it)
    assert divergences({"BTC": 0.00001}, {}) == [Divergence("BTC", 0.00001, 0.0)]
    assert divergences(kernel, venue, skip={"DOGE", "ETH", "SOL", "kPEPE"}) == []


def test_a_divergence_counts_once_it_lasts_and_its_end_is_reported() -> None:
    w = DivergenceWatch(loops=3)
    d = Divergence("ETH", 1.0, 0.0)
    assert w.observe([d]) == ([], [])
    assert w.observe([d]) == ([], [])
    assert w.observe([d]) == ([d], [])  # third loop in a row: confirmed, once
    assert w.observe([d]) == ([], [])
    # it changes (the kernel closed half): the new one is confirmed after three loops again
    e = Divergence("ETH", 0.5, 0.0)
    assert [w.observe([e]) for _ in range(3)] == [([], []), ([], []), ([e], [])]
    assert w.observe([]) == ([], ["ETH"])  # agrees again
    assert w.observe([]) == ([], [])


def test_a_one_loop_difference_is_not_a_divergence() -> None:
    # an order filled within the loop: the kernel has it, the account read at the loop's start not
    w = DivergenceWatch(loops=3)
    for k in range(1, 10):
        assert w.observe([Divergence("BTC", 0.1 * k, 0.1 * (k - 1))]) == ([], [])
    # interrupted streaks do not add up
    d = Divergence("SOL", 1.0, 0.0)
    for found in ([d], [d], [], [d], [d], []):
        assert w.observe(found) == ([], [])
    with pytest.raises(ValueError):
        DivergenceWatch(loops=0)
