"""ShadowDecisionTracker, and the orchestrator's SHADOW mode on real bars."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from exchange.model import Bar
from strategy.kernel_orchestrator import Decision, KernelMode, KernelOrchestrator
from strategy.mei_alpha_v1 import Confidence, Signal
from strategy.shadow_mode import ShadowAlert, ShadowDecision, ShadowDecisionTracker

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
BUY = ShadowDecision("buy", "high")
SELL = ShadowDecision("sell", "medium")


def test_window_rolls_off_old_decisions() -> None:
    tr = ShadowDecisionTracker(window=10, min_decisions=1, threshold=0.0)
    for i in range(3):
        tr.record("BTC", i, BUY, SELL)
    assert tr.stats().agreement == pytest.approx(0.0)
    for i in range(7):
        tr.record("BTC", 10 + i, BUY, BUY)
    s = tr.stats()
    assert s.window == 10 and s.agreement == pytest.approx(0.7)
    for i in range(3):  # the three disagreements leave the window one by one
        tr.record("BTC", 20 + i, BUY, BUY)
        assert tr.stats().agreement == pytest.approx(0.8 + 0.1 * i)
    s = tr.stats()
    assert s.window == 10 and s.agreement == 1.0
    assert s.decisions == 13 and s.disagreement_count == 3, "lifetime counts are not windowed"


def test_alert_fires_once_per_crossing() -> None:
    alerts: list[ShadowAlert] = []
    tr = ShadowDecisionTracker(window=100, threshold=0.95, on_alert=alerts.append, min_decisions=10)
    for i in range(100):
        tr.record("BTC", i, BUY, BUY)
    assert tr.stats().agreement == 1.0 and not alerts
    for i in range(5):  # 95%: at the threshold, not below it
        tr.record("BTC", 100 + i, BUY, SELL)
    assert not alerts
    for i in range(10):  # 94% .. 85%: one alert, not ten
        tr.record("BTC", 105 + i, BUY, SELL)
    assert len(alerts) == 1
    assert alerts[0].agreement == pytest.approx(0.94) and "94.0%" in alerts[0].message
    assert alerts[0].threshold == 0.95 and alerts[0].window == 100
    assert tr.stats().below_threshold and tr.stats().alerts == 1
    for i in range(200):  # disagreements roll out of the window: recovered, no alert
        tr.record("BTC", 200 + i, BUY, BUY)
    assert not tr.stats().below_threshold and len(alerts) == 1
    for i in range(6):
        tr.record("BTC", 500 + i, BUY, SELL)
    assert len(alerts) == 2, "a new crossing alerts again"
    assert tr.stats().alerts == 2


def test_no_alert_before_min_decisions_and_default_threshold() -> None:
    alerts: list[ShadowAlert] = []
    tr = ShadowDecisionTracker(on_alert=alerts.append)
    assert tr.stats().threshold == 0.95 and tr.stats().window_size == 1000
    tr.record("ETH", 0, BUY, SELL)  # 0% after one decision: too early to alert
    assert not alerts
    for i in range(48):
        tr.record("ETH", i + 1, BUY, BUY)
    assert not alerts
    tr.record("ETH", 49, BUY, BUY)  # 50 decisions, 98%: fine
    assert not alerts
    for i in range(3):
        tr.record("ETH", 50 + i, BUY, SELL)  # 49/53 = 92.5%
    assert len(alerts) == 1


def test_failing_alert_callback_does_not_break_recording() -> None:
    def boom(alert: ShadowAlert) -> None:
        raise RuntimeError("sink down")

    tr = ShadowDecisionTracker(window=10, min_decisions=1, on_alert=boom)
    assert tr.record("BTC", 0, BUY, SELL) is False
    assert tr.stats().alerts == 1


def test_neutral_confidence_is_ignored_and_last_50_kept_with_both_inputs() -> None:
    tr = ShadowDecisionTracker(window=1000, keep_disagreements=50)
    assert tr.record("ETH", 0, ShadowDecision("neutral", "low"), ShadowDecision("neutral", "high"))
    assert not tr.record("ETH", 0, ShadowDecision("buy", "low"), ShadowDecision("buy", "high"))
    for i in range(120):
        tr.record("ETH", i, BUY, SELL, {"i": i, "side": "kernel"}, {"i": i, "side": "reference"})
    kept = tr.stats().disagreements
    assert len(kept) == 50 and tr.stats().disagreement_count == 121
    assert kept[0].kernel_inputs["i"] == 70 and kept[-1].kernel_inputs["i"] == 119
    assert kept[-1].kernel_inputs["side"] == "kernel" and kept[-1].reference_inputs["side"] == "reference"
    assert kept[-1].kernel == BUY and kept[-1].reference == SELL
    assert [d.seq for d in kept] == sorted(d.seq for d in kept)


def test_shared_inputs_are_copied_for_both_sides() -> None:
    tr = ShadowDecisionTracker()
    inputs = {"close": 1.0}
    tr.record("SOL", 5, BUY, SELL, inputs)
    inputs["close"] = 2.0  # the caller's dict changing later does not alter the record
    d = tr.stats().disagreements[0]
    assert d.kernel_inputs == {"close": 1.0} and d.reference_inputs == {"close": 1.0}
    assert d.symbol == "SOL" and d.t == 5


def test_decisions_accept_enums_and_kernel_codes_and_reject_garbage() -> None:
    assert ShadowDecision(Signal.BUY, Confidence.HIGH) == BUY
    assert ShadowDecision.from_codes(-1, 1) == SELL
    assert ShadowDecision.from_codes(0, 0).key() == ("neutral", "")
    with pytest.raises(ValueError):
        ShadowDecision("long", "high")
    with pytest.raises(ValueError):
        ShadowDecision("buy", "very")
    with pytest.raises(ValueError):
        ShadowDecisionTracker(window=0)
    with pytest.raises(ValueError):
        ShadowDecisionTracker(threshold=1.5)


def test_tracker_is_thread_safe() -> None:
    alerts: list[ShadowAlert] = []
    tr = ShadowDecisionTracker(window=100_000, keep_disagreements=50, on_alert=alerts.append)
    start = threading.Barrier(6)

    def work(k: int) -> None:
        start.wait()
        for i in range(2000):
            tr.record("SOL", i, BUY, BUY if (i + k) % 4 else SELL, {"k": k})
            if i % 100 == 0:
                tr.stats()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    stats = tr.stats()
    assert stats.decisions == 12_000 and stats.window == 12_000
    assert stats.disagreement_count == 3000 and stats.agreement == pytest.approx(0.75)
    assert len(stats.disagreements) == 50
    assert stats.alerts == len(alerts) == 1, "agreement stayed below 95%: exactly one alert"


def test_orchestrator_shadow_mode_agrees_on_real_bars() -> None:
    path = DATA / "hyperliquid" / "futures" / "ETH_USDC_USDC-5m-futures.feather"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set AI_QUANT_SHARED_DATA)")
    df = pd.read_feather(path).iloc[:1200]
    df["t"] = df["date"].astype("int64") // 1_000_000
    cfg = {
        "indicators": {"ema_fast_window": 8, "ema_slow_window": 15},
        "thresholds": {"entry": {"min_adx": 15.0}},
    }
    tracker = ShadowDecisionTracker(window=1000)

    def recorder(decision: Decision, reference: tuple[str, str], inputs: dict) -> None:
        kernel = ShadowDecision.from_codes(decision.signal, decision.confidence)
        tracker.record(decision.symbol, decision.t, kernel, ShadowDecision(*reference), inputs)

    orch = KernelOrchestrator(cfg, mode=KernelMode.SHADOW, shadow_recorder=recorder)
    for row in df.itertuples():
        orch.on_candle(Bar("ETH", int(row.t), row.open, row.high, row.low, row.close, row.volume))
        orch.evaluate(int(row.t) + 300_000)
    stats = tracker.stats()
    assert stats.decisions == 1199  # the first bar has no previous bar, hence no decision
    # The reference sees the orchestrator's bounded history; the kernel has seen everything.
    assert stats.agreement >= 0.999, stats.disagreements[:3]
