from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from strategy.factory import report as rpt
from strategy.factory.thresholds import THRESHOLDS
from strategy.factory.validation import (
    DAY_MS,
    concentration,
    concentration_checks,
    slippage_check,
    verdict,
    walk_forward,
    walk_forward_checks,
)


def test_walk_forward_hand_example() -> None:
    # 2 windows over 9 daily points; equity +1%/day throughout -> efficiency ~1, all profitable
    t = [i * DAY_MS for i in range(9)]
    eq = [10_000 * (1 + 0.01 * i) for i in range(9)]
    wf = walk_forward(t, eq, 2, 0.5)
    assert len(wf.windows) == 2
    w0 = wf.windows[0]
    assert (w0.train_start_ms, w0.test_start_ms, w0.test_end_ms) == (0, 2 * DAY_MS, 4 * DAY_MS)
    assert w0.train_daily_return == pytest.approx((10_200 / 10_000 - 1) / 2)
    assert w0.test_daily_return == pytest.approx((10_400 / 10_200 - 1) / 2)
    assert wf.profitable_share == 1.0 and 0.9 < wf.efficiency < 1.0
    assert all(c.passed for c in walk_forward_checks(wf, THRESHOLDS))
    # gains only in the train halves -> OOS flat -> rejected
    eq2 = [10_000, 10_100, 10_200, 10_200, 10_200, 10_300, 10_400, 10_400, 10_400]
    wf2 = walk_forward(t, eq2, 2, 0.5)
    assert wf2.efficiency == 0.0 and wf2.profitable_share == 0.0
    assert not any(c.passed for c in walk_forward_checks(wf2, THRESHOLDS))
    with pytest.raises(ValueError):
        walk_forward(t[:5], eq[:5], 4, 0.5)


def test_slippage_sign_flip() -> None:
    ok = slippage_check(100.0, {10.0: 80.0, 20.0: 40.0, 30.0: -5.0}, THRESHOLDS)
    assert ok.passed  # only 20 bps is the gate
    flip = slippage_check(100.0, {10.0: 50.0, 20.0: -1.0, 30.0: -30.0}, THRESHOLDS)
    assert not flip.passed and "flips sign at 20 bps" in flip.detail


def test_concentration() -> None:
    c = concentration({"A": 70.0, "B": 20.0, "C": 10.0, "D": -50.0}, {"A": 3, "B": 2, "C": 1, "D": 4, "E": 0})
    assert c.top1_share == pytest.approx(0.7) and c.top5_share == 1.0 and c.symbols_traded == 4
    names = {ch.name: ch.passed for ch in concentration_checks(c, THRESHOLDS)}
    assert names == {"top1_symbol_share": False, "top5_symbol_share": False, "min_symbols_traded": False}
    assert concentration({"A": -1.0}, {"A": 1}).top1_share == 1.0  # no positive PnL: worst case
    v, reasons = verdict(concentration_checks(c, THRESHOLDS))
    assert v == "rejected" and len(reasons) == 3


def test_plot_written_or_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = [i * 300_000 for i in range(50)]
    eq = list(10_000 + np.cumsum(np.ones(50)))
    msg = rpt.plot_equity(tmp_path / "e.png", t, eq, "title")
    if "skipped" not in msg:
        assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    msg2 = rpt.plot_equity(tmp_path / "f.png", t, eq, "title")
    assert "matplotlib is not installed" in msg2 and not (tmp_path / "f.png").exists()
