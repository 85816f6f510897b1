"""ShadowDecisionTracker, the orchestrator's SHADOW mode, and the reference exit checks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from strategy import mei_alpha_v1 as ref
from strategy.kernel_orchestrator import Bar, Decision, KernelMode, KernelOrchestrator
from strategy.shadow_mode import ShadowDecision, ShadowDecisionTracker

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
BUY = ShadowDecision("buy", "high")
SELL = ShadowDecision("sell", "medium")


def test_rolling_window_and_single_alert_per_crossing() -> None:
    alerts: list[str] = []
    tr = ShadowDecisionTracker(window=100, threshold=0.95, on_alert=alerts.append, min_decisions=10)
    for i in range(100):
        tr.record("BTC", i, BUY, BUY)
    assert tr.stats().agreement == 1.0 and not alerts
    for i in range(6):  # 94% agreement: one alert, not six
        tr.record("BTC", 100 + i, BUY, SELL)
    assert len(alerts) == 1 and "94.0%" in alerts[0]
    assert tr.stats().below_threshold
    for i in range(200):  # disagreements roll out of the window: recovered
        tr.record("BTC", 200 + i, BUY, BUY)
    assert tr.stats().agreement == 1.0 and not tr.stats().below_threshold
    for i in range(6):
        tr.record("BTC", 500 + i, BUY, SELL)
    assert len(alerts) == 2, "a new crossing alerts again"


def test_neutral_confidence_is_ignored_and_last_50_kept() -> None:
    tr = ShadowDecisionTracker(window=1000, keep_disagreements=50)
    assert tr.record("ETH", 0, ShadowDecision("neutral", "low"), ShadowDecision("neutral", "high"))
    for i in range(120):
        tr.record("ETH", i, BUY, SELL, {"i": i})
    kept = tr.stats().disagreements
    assert len(kept) == 50 and kept[0].inputs["i"] == 70 and kept[-1].inputs["i"] == 119


def test_tracker_is_thread_safe() -> None:
    tr = ShadowDecisionTracker(window=100_000)

    def work(k: int) -> None:
        for i in range(2000):
            tr.record("SOL", i, BUY, BUY if (i + k) % 4 else SELL)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    stats = tr.stats()
    assert stats.decisions == 8000 and stats.agreement == pytest.approx(0.75)


def test_orchestrator_shadow_mode_agrees_on_real_bars() -> None:
    path = DATA / "hyperliquid" / "futures" / "ETH_USDC_USDC-5m-futures.feather"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    df = pd.read_feather(path).iloc[:1200]
    df["t"] = df["date"].astype("int64") // 1_000_000
    cfg = {
        "indicators": {"ema_fast_window": 8, "ema_slow_window": 15},
        "thresholds": {"entry": {"min_adx": 15.0}},
    }
    tracker = ShadowDecisionTracker(window=1000)

    def recorder(decision: Decision, reference: tuple[str, str], inputs: dict) -> None:
        kernel = ShadowDecision(
            {1: "buy", -1: "sell", 0: "neutral"}[decision.signal],
            ["low", "medium", "high"][decision.confidence],
        )
        tracker.record(decision.symbol, decision.t, kernel, ShadowDecision(*reference), inputs)

    orch = KernelOrchestrator(cfg, mode=KernelMode.SHADOW, shadow_recorder=recorder)
    for row in df.itertuples():
        orch.on_candle(Bar("ETH", int(row.t), row.open, row.high, row.low, row.close, row.volume))
        orch.evaluate(int(row.t) + 300_000)
    stats = tracker.stats()
    assert stats.decisions == 1199  # the first bar has no previous bar, hence no decision
    # The reference sees a 1,000-bar window; the kernel has seen everything. Decisions still agree.
    assert stats.agreement >= 0.999, stats.disagreements[:3]


def _snap(**over: float) -> dict[str, float]:
    s = {
        "close": 100.0, "atr": 1.0, "adx": 30.0, "adx_slope": 1.0, "atr_slope": 0.0, "bb_width_ratio": 1.2,
        "rsi": 60.0, "ema_fast": 99.0, "ema_slow": 97.0, "ema_macro": 90.0, "macd_hist": 0.2,
        "prev_macd_hist": 0.1, "prev2_macd_hist": 0.05, "prev3_macd_hist": 0.0,
    }  # fmt: skip
    s.update(over)
    return s


def test_reference_exits_follow_the_spec() -> None:
    pos = ref.Position(side="long", quantity=10.0, entry=100.0, entry_atr=1.0)
    d, _ = ref.check_exit(pos, 97.9, _snap())
    assert d == ref.ExitDecision(1.0, ref.ExitReason.STOP_LOSS)
    d, tsl = ref.check_exit(pos, 101.5, _snap())
    assert d is None and tsl == pytest.approx(100.7)
    d, _ = ref.check_exit(ref.Position("long", 10.0, 100.0, 1.0, trailing_sl=tsl), 100.7, _snap())
    assert d is not None and d.reason is ref.ExitReason.TRAILING_STOP
    d, _ = ref.check_exit(ref.Position("long", 10.0, 100.0, 1.0, trailing_sl=103.9), 104.0, _snap())
    assert d == ref.ExitDecision(0.5, ref.ExitReason.TAKE_PROFIT_PARTIAL)
    d, _ = ref.check_exit(pos, 99.5, _snap(ema_fast=96.0, adx=10.0))
    assert d is not None and d.reason is ref.ExitReason.TREND_BREAKDOWN
    d, _ = ref.check_exit(pos, 99.5, _snap(adx=10.0))
    assert d is not None and d.reason is ref.ExitReason.ADX_EXHAUSTION
    d, _ = ref.check_exit(pos, 100.2, _snap(rsi=81.0))
    assert d is not None and d.reason is ref.ExitReason.RSI_OVEREXTENSION
    short = ref.Position(side="short", quantity=10.0, entry=100.0, entry_atr=1.0)
    d, _ = ref.check_exit(short, 102.1, _snap(ema_fast=96.0, ema_slow=97.0))
    assert d is not None and d.reason is ref.ExitReason.STOP_LOSS


def test_analyze_returns_the_last_bar_with_an_audit() -> None:
    path = DATA / "hyperliquid" / "futures" / "SOL_USDC_USDC-5m-futures.feather"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    df = pd.read_feather(path).iloc[:3000]
    series = ref.analyze_series(df, "SOL")
    hits = series.index[series["signal"] != 0]
    assert len(hits) > 0
    i = int(hits[0])
    signal, confidence, latest = ref.analyze(df.iloc[: i + 1], "SOL", None)
    assert signal is (ref.Signal.BUY if series["signal"].iat[i] == 1 else ref.Signal.SELL)
    assert ref.CONF_RANK[confidence] == series["confidence"].iat[i]
    assert {g.name for g in latest.gates} >= {"ranging", "anomaly", "adx_above_min", "bullish"}
    assert latest.values["close"] == pytest.approx(float(df["close"].iat[i]))
