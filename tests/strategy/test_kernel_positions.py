"""KernelOrchestrator.positions: the kernel's own positions, typed, as the daemon reads them."""

from __future__ import annotations

import json

import pytest

from strategy.kernel_orchestrator import KernelOrchestrator, KernelPosition


def test_positions_are_the_kernels_own_json_typed() -> None:
    orch = KernelOrchestrator({}, fill_mode="external")
    k = orch.kernel
    assert orch.positions() == {}
    k.step_candle("BTC", 0, 100.0, 100.0, 100.0, 100.0, 1.0)
    k.step_candle("ETH", 0, 10.0, 10.0, 10.0, 10.0, 1.0)
    k.apply_fill("BTC", "long", 2.0, 100.0, 0.0, 0)
    k.apply_fill("ETH", "short", 3.0, 10.0, 0.0, 0)
    raw = json.loads(k.positions_json())
    got = orch.positions()
    assert set(got) == {"BTC", "ETH"} and all(isinstance(p, KernelPosition) for p in got.values())
    for sym, p in got.items():
        assert (p.symbol, p.side, p.quantity) == (sym, raw[sym]["side"].lower(), raw[sym]["quantity"])
        assert (p.entry_atr, p.tp1_taken, p.trailing_sl) == (
            raw[sym]["entry_atr"], raw[sym]["tp1_taken"], raw[sym]["trailing_sl"],
        )  # fmt: skip
        assert p.entry_adx_threshold == raw[sym]["entry_adx_threshold"]
    assert got["BTC"].signed_quantity == pytest.approx(2.0)
    assert got["ETH"].signed_quantity == pytest.approx(-3.0)
    k.apply_fill("ETH", "long", 3.0, 10.0, 0.0, 1)  # closed: gone from both
    assert set(orch.positions()) == {"BTC"} == set(json.loads(k.positions_json()))
