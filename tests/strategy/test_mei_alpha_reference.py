"""The Python reference Mei Alpha v1: indicators vs TA-Lib, every entry gate, every exit check."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from strategy import mei_alpha_v1 as ref
from strategy.mei_alpha_v1 import Confidence, ExitReason, Position, Side, Signal, Snapshot

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("AI_QUANT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HL = DATA / "hyperliquid" / "futures"
REL_TOL = 1e-9
SWEEP: dict[str, Any] = {
    "indicators": {"ema_fast_window": 8, "ema_slow_window": 15, "adx_window": 10, "bb_window": 15},
    "thresholds": {"entry": {"min_adx": 15.0}},
}


def _load(coin: str) -> pd.DataFrame:
    path = HL / f"{coin}_USDC_USDC-5m-futures.feather"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set AI_QUANT_SHARED_DATA)")
    return pd.read_feather(path)


# ---- indicators vs TA-Lib --------------------------------------------------------------------


def _talib_columns(df: pd.DataFrame, cfg: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Every reference column rebuilt from TA-Lib outputs: name -> (expected, scale or None).

    `scale` None means relative to the value itself; otherwise the error is taken relative to that
    scale (for differences of nearly equal numbers such as slopes, and for StochRSI on 0..1).
    """
    talib = pytest.importorskip("talib")
    ind, e = cfg["indicators"], cfg["thresholds"]["entry"]
    h, lo, c, v = (df[k].to_numpy(dtype=float) for k in ("high", "low", "close", "volume"))
    up, mid, low = talib.BBANDS(c, ind["bb_window"], ind["bb_std"], ind["bb_std"], 0)
    line, sig, hist = talib.MACD(c, ind["macd_fast"], ind["macd_slow"], ind["macd_signal"])
    n = ind["stoch_rsi_window"]
    fastk, _ = talib.STOCHRSI(c, n, n, 1, 0)  # raw stochastic of RSI(n) over n values, 0..100
    k = talib.SMA(fastk / 100.0, ind["stoch_rsi_smooth1"])
    d = talib.SMA(k, ind["stoch_rsi_smooth2"])
    a = talib.ADX(h, lo, c, ind["adx_window"])
    tr_atr = talib.ATR(h, lo, c, ind["atr_window"])
    width = (up - low) / c
    width_avg = talib.SMA(width, ind["bb_width_avg_window"])
    ema_slow = talib.EMA(c, ind["ema_slow_window"])
    w = e["slow_drift_slope_window"]
    slow_before = pd.Series(ema_slow).shift(w).to_numpy()
    vol_sma, vol_trend_sma = talib.SMA(v, ind["vol_sma_window"]), talib.SMA(v, ind["vol_trend_window"])
    shift = lambda x, k=1: pd.Series(x).shift(k).to_numpy()  # noqa: E731
    one = np.ones(len(c))
    return {
        "ema_fast": (talib.EMA(c, ind["ema_fast_window"]), None),
        "ema_slow": (ema_slow, None),
        "ema_macro": (talib.EMA(c, ind["ema_macro_window"]), None),
        "adx": (a, None),
        "adx_pos": (talib.PLUS_DI(h, lo, c, ind["adx_window"]), None),
        "adx_neg": (talib.MINUS_DI(h, lo, c, ind["adx_window"]), None),
        "adx_slope": (a - shift(a), a),
        "bb_upper": (up, None),
        "bb_middle": (mid, None),
        "bb_lower": (low, None),
        "bb_width": (width, None),
        "bb_width_avg": (width_avg, None),
        "bb_width_ratio": (width / width_avg, None),
        "atr": (tr_atr, None),
        "atr_slope": (tr_atr - shift(tr_atr), tr_atr),
        "avg_atr": (talib.SMA(tr_atr, e["ave_avg_atr_window"]), None),
        "rsi": (talib.RSI(c, ind["rsi_window"]), None),
        "stoch_rsi_k": (k, one),
        "stoch_rsi_d": (d, one),
        "macd": (line, None),
        "macd_signal": (sig, None),
        "macd_hist": (hist, None),
        "prev_macd_hist": (shift(hist), None),
        "prev2_macd_hist": (shift(hist, 2), None),
        "prev3_macd_hist": (shift(hist, 3), None),
        "vol_sma": (vol_sma, None),
        "vol_trend_sma": (vol_trend_sma, None),
        "prev_close": (shift(c), None),
        "prev_ema_fast": (shift(talib.EMA(c, ind["ema_fast_window"])), None),
        "prev_ema_slow": (shift(ema_slow), None),
        "ema_slow_slope_pct": ((ema_slow - slow_before) / slow_before, one),
    }


def _assert_matches_talib(df: pd.DataFrame, cfg: dict[str, Any], label: str) -> dict[str, float]:
    ours = ref.compute_indicators(df, cfg)
    worst: dict[str, float] = {}
    for name, (expected, scale) in _talib_columns(df, cfg).items():
        got = ours[name].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), (
            f"{label} {name}: warm-up differs from TA-Lib"
        )
        m = ~np.isnan(expected)
        denom = np.maximum(np.abs(expected[m] if scale is None else scale[m]), 1e-12)
        rel = np.abs(got[m] - expected[m]) / denom
        worst[name] = float(rel.max())
        assert worst[name] <= REL_TOL, f"{label} {name}: max relative error {worst[name]:.3e}"
    # vol_trend and ready follow from the columns above
    assert np.array_equal(
        ours["vol_trend"].to_numpy(), _talib_columns(df, cfg)["vol_trend_sma"][0] > ours["vol_sma"]
    )
    return worst


@pytest.mark.parametrize("coin", ["BTC", "ETH", "SOL"])
def test_indicators_match_talib_on_real_candles(coin: str) -> None:
    df = _load(coin)
    worst = _assert_matches_talib(df, ref.merged_config(None), coin)
    print(coin, " ".join(f"{k}={v:.1e}" for k, v in worst.items()))


def test_indicators_match_talib_with_sweep_windows() -> None:
    df = _load("ETH")
    _assert_matches_talib(df, ref.merged_config(SWEEP), "ETH/sweep")


def test_ready_index_and_first_signal_bar() -> None:
    df = _load("BTC")
    out = ref.analyze_series(df.iloc[:3000], "BTC")
    ready = out["ready"].to_numpy()
    first = int(np.flatnonzero(ready)[0])
    assert (
        first == ref.merged_config(None)["indicators"]["ema_macro_window"] - 1
    )  # 199: EMA(200) warms up last
    assert ready[first:].all()
    assert (out["signal"].to_numpy()[:first] == 0).all()
    assert list(out.columns[:2]) == ["signal", "confidence"]
    assert (out["t"].to_numpy() == df["date"].iloc[:3000].astype("int64").to_numpy() // 1_000_000).all()


def test_flat_candles_do_not_break_the_indicators() -> None:
    n = 400
    df = pd.DataFrame({k: np.full(n, 5.0) for k in ("open", "high", "low", "close")} | {"volume": np.ones(n)})
    ind = ref.compute_indicators(df)
    last = ind.iloc[-1]
    assert last["bb_width"] == 0.0 and last["bb_width_ratio"] == 1.0
    assert last["rsi"] == 0.0 and last["stoch_rsi_k"] == 0.0 and last["atr"] == 0.0
    assert last["adx_pos"] == 0.0 and last["adx_neg"] == 0.0
    assert (ref.analyze_series(df, "X")["signal"] == 0).all()


def test_analyze_series_handles_40k_bars_quickly() -> None:
    df = _load("BTC")
    df = pd.concat([df, df.iloc[: max(0, 40_000 - len(df))]], ignore_index=True)
    started = time.perf_counter()
    out = ref.analyze_series(df, "BTC", None, SWEEP)
    took = time.perf_counter() - started
    print(f"analyze_series: {len(df)} bars in {took:.2f} s")
    assert len(out) >= 40_000
    assert took < 15.0  # ~0.3 s on a quiet machine; loose for a loaded shared runner


# ---- entry decision, gate by gate ------------------------------------------------------------

# Every number the gate tests depend on is pinned here, so they do not lean on the defaults.
PINNED: dict[str, Any] = {
    "filters": {
        "enable_ranging_filter": True, "enable_anomaly_filter": True, "enable_extension_filter": True,
        "require_adx_rising": True, "adx_rising_saturation": 40.0, "require_volume_confirmation": False,
        "vol_confirm_include_prev": True, "require_macro_alignment": False, "require_btc_alignment": True,
        "use_stoch_rsi_filter": True,
    },
    "thresholds": {
        "entry": {
            "min_adx": 22.0, "ave_enabled": True, "ave_atr_ratio_gt": 1.5, "ave_adx_mult": 1.25,
            "max_dist_ema_fast": 0.04, "btc_adx_override": 40.0, "high_conf_volume_mult": 2.5,
            "macd_hist_entry_mode": "accel", "enable_pullback_entries": False, "enable_slow_drift_entries": False,
            "pullback_min_adx": 22.0, "pullback_rsi_long_min": 50.0, "pullback_rsi_short_max": 50.0,
            "pullback_require_macd_sign": True, "pullback_confidence": "low", "slow_drift_min_adx": 10.0,
            "slow_drift_min_slope_pct": 0.0006, "slow_drift_rsi_long_min": 50.0, "slow_drift_rsi_short_max": 50.0,
            "slow_drift_require_macd_sign": True,
        },
        "ranging": {"min_signals": 2, "adx_below": 21.0, "bb_width_ratio_below": 0.8, "rsi_low": 47.0, "rsi_high": 53.0},
        "anomaly": {"price_change_pct_gt": 0.1, "ema_fast_dev_pct_gt": 0.5},
        "tp_and_momentum": {
            "adx_strong_gt": 40.0, "adx_weak_lt": 30.0, "rsi_long_weak": 56.0, "rsi_long_strong": 52.0,
            "rsi_short_weak": 44.0, "rsi_short_strong": 48.0, "tp_mult_strong": 7.0, "tp_mult_weak": 3.0,
        },
        "stoch_rsi": {"block_long_if_k_gt": 0.85, "block_short_if_k_lt": 0.15},
    },
    "trade": {"reverse_entry_signal": False, "tp_atr_mult": 4.0},
}  # fmt: skip


def _cfg(**over: Any) -> dict[str, Any]:
    """The pinned config with `section__key=value` (or `section__sub__key=value`) overrides."""
    cfg = ref.merged_config(PINNED)
    for path, value in over.items():
        node = cfg
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        assert leaf in node, f"unknown config key {path}"
        node[leaf] = value
    return cfg


# A bar on which every long condition holds with room to spare (w = 8/18, rsi_long_limit = 54.22).
LONG = Snapshot(
    t=1_000_000, open=100.5, high=101.5, low=100.0, close=101.0, volume=100.0,
    ema_fast=100.0, ema_slow=99.0, ema_macro=90.0, adx=30.0, adx_pos=30.0, adx_neg=10.0, adx_slope=1.0,
    bb_upper=103.0, bb_middle=100.0, bb_lower=97.0, bb_width=0.06, bb_width_avg=0.06, bb_width_ratio=1.0,
    atr=1.0, atr_slope=0.0, avg_atr=1.0, rsi=60.0, stoch_rsi_k=0.5, stoch_rsi_d=0.5,
    macd=0.5, macd_signal=0.3, macd_hist=0.2, prev_macd_hist=0.1, prev2_macd_hist=0.05, prev3_macd_hist=0.0,
    vol_sma=80.0, vol_trend_sma=90.0, vol_trend=True, prev_close=100.5, prev_ema_fast=99.9, prev_ema_slow=98.9,
    ema_slow_slope_pct=0.001, ready=True,
)  # fmt: skip
LONG_P = replace(LONG, t=700_000, close=100.5, adx=29.0, volume=90.0, vol_sma=80.0, ema_fast=99.9, ready=True)
# The mirror image: a clean short.
SHORT = replace(
    LONG, close=99.0, open=99.5, ema_fast=100.0, ema_slow=101.0, ema_macro=110.0, rsi=40.0,
    macd_hist=-0.2, prev_macd_hist=-0.1, prev_close=99.5, ema_slow_slope_pct=-0.001,
)  # fmt: skip
SHORT_P = replace(LONG_P, close=99.5, ema_fast=100.1)


def _decide(
    s: Snapshot = LONG, p: Snapshot = LONG_P, cfg: dict[str, Any] | None = None, **kw: Any
) -> ref.Decision:
    return ref.decide(s, p, cfg if cfg is not None else _cfg(), kw.pop("symbol", "ETH"), kw.pop("btc", None))


def test_base_bars_are_a_clean_buy_and_sell() -> None:
    d = _decide()
    assert (d.signal, d.confidence) == (Signal.BUY, Confidence.MEDIUM)
    assert d.gate("rsi_long").threshold == pytest.approx(56.0 - 4.0 * 8.0 / 18.0)
    assert d.gate("adx_above_min") == ref.GateAudit("adx_above_min", 30.0, 22.0, True)
    assert all(
        g.passed for g in d.gates if g.name in ("ranging", "anomaly_price_change", "extended", "all_gates")
    )
    s = _decide(SHORT, SHORT_P)
    assert (s.signal, s.confidence) == (Signal.SELL, Confidence.MEDIUM)


# (description, snapshot overrides, previous-bar overrides, config overrides, kwargs, expected signal)
GATE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], Signal]] = [
    ("not ready", {"ready": False}, {}, {}, {}, Signal.NEUTRAL),
    # ranging: 2 of 3 votes (min_adx lowered so the ADX gate itself passes)
    ("ranging adx+bbw", {"adx": 20.0, "bb_width_ratio": 0.7}, {"adx": 19.0}, {"thresholds__entry__min_adx": 15.0}, {}, Signal.NEUTRAL),
    ("ranging off", {"adx": 20.0, "bb_width_ratio": 0.7}, {"adx": 19.0}, {"thresholds__entry__min_adx": 15.0, "filters__enable_ranging_filter": False}, {}, Signal.BUY),
    ("one ranging vote", {"adx": 20.0}, {"adx": 19.0}, {"thresholds__entry__min_adx": 15.0}, {}, Signal.BUY),
    ("ranging min_signals 1", {"adx": 20.0}, {"adx": 19.0}, {"thresholds__entry__min_adx": 15.0, "thresholds__ranging__min_signals": 1}, {}, Signal.NEUTRAL),
    ("ranging rsi band", {"rsi": 52.9, "bb_width_ratio": 0.7}, {}, {"thresholds__tp_and_momentum__rsi_long_weak": 50.0, "thresholds__tp_and_momentum__rsi_long_strong": 50.0}, {}, Signal.NEUTRAL),
    ("rsi at band edge", {"rsi": 53.0, "bb_width_ratio": 0.7}, {}, {"thresholds__tp_and_momentum__rsi_long_weak": 50.0, "thresholds__tp_and_momentum__rsi_long_strong": 50.0}, {}, Signal.BUY),
    # anomaly
    ("price jump", {"prev_close": 91.0}, {}, {}, {}, Signal.NEUTRAL),
    ("price jump, filter off", {"prev_close": 91.0}, {}, {"filters__enable_anomaly_filter": False}, {}, Signal.BUY),
    ("ema deviation anomaly", {}, {}, {"thresholds__anomaly__ema_fast_dev_pct_gt": 0.005, "filters__enable_extension_filter": False}, {}, Signal.NEUTRAL),
    # extension
    ("extended", {"ema_fast": 96.0, "ema_slow": 95.0}, {}, {}, {}, Signal.NEUTRAL),
    ("extended, filter off", {"ema_fast": 96.0, "ema_slow": 95.0}, {}, {"filters__enable_extension_filter": False}, {}, Signal.BUY),
    # effective min ADX
    ("adx below min", {"adx": 21.5}, {"adx": 21.0}, {}, {}, Signal.NEUTRAL),
    ("adx equal to min", {"adx": 22.0}, {"adx": 21.0}, {}, {}, Signal.NEUTRAL),
    ("slope lowers min to 25", {"adx": 27.0}, {"adx": 26.0}, {"thresholds__entry__min_adx": 30.0}, {}, Signal.BUY),
    ("no slope, min stays", {"adx": 27.0, "adx_slope": 0.5}, {"adx": 26.0}, {"thresholds__entry__min_adx": 30.0}, {}, Signal.NEUTRAL),
    ("AVE raises min", {"adx": 25.0, "atr": 1.6}, {"adx": 24.0}, {}, {}, Signal.NEUTRAL),
    ("AVE at ratio, no raise", {"adx": 25.0, "atr": 1.5}, {"adx": 24.0}, {}, {}, Signal.BUY),
    ("AVE off", {"adx": 25.0, "atr": 1.6}, {"adx": 24.0}, {"thresholds__entry__ave_enabled": False}, {}, Signal.BUY),
    # ADX rising
    ("adx falling", {}, {"adx": 31.0}, {}, {}, Signal.NEUTRAL),
    ("adx flat", {}, {"adx": 30.0}, {}, {}, Signal.NEUTRAL),
    ("adx falling but saturated", {"adx": 41.0}, {"adx": 42.0}, {}, {}, Signal.BUY),
    ("rising not required", {}, {"adx": 31.0}, {"filters__require_adx_rising": False}, {}, Signal.BUY),
    # volume confirmation
    ("low volume, not required", {"volume": 70.0}, {"volume": 70.0}, {}, {}, Signal.BUY),
    ("low volume both bars", {"volume": 70.0}, {"volume": 70.0}, {"filters__require_volume_confirmation": True}, {}, Signal.NEUTRAL),
    ("previous bar's volume", {"volume": 70.0}, {"volume": 90.0}, {"filters__require_volume_confirmation": True}, {}, Signal.BUY),
    ("previous bar excluded", {"volume": 70.0}, {"volume": 90.0}, {"filters__require_volume_confirmation": True, "filters__vol_confirm_include_prev": False}, {}, Signal.NEUTRAL),
    ("no volume trend", {"vol_trend": False}, {}, {"filters__require_volume_confirmation": True}, {}, Signal.NEUTRAL),
    # alignment
    ("ema fast below slow", {"ema_slow": 100.5}, {}, {}, {}, Signal.NEUTRAL),
    ("ema fast equals slow", {"ema_slow": 100.0}, {}, {}, {}, Signal.NEUTRAL),
    ("macro required, slow below macro", {"ema_macro": 99.5}, {}, {"filters__require_macro_alignment": True}, {}, Signal.NEUTRAL),
    ("macro required and aligned", {}, {}, {"filters__require_macro_alignment": True}, {}, Signal.BUY),
    ("close at ema fast", {"close": 100.0, "prev_close": 100.0}, {}, {}, {}, Signal.NEUTRAL),
    # RSI limit: adx 31 gives w = 0.5, limit 54 exactly
    ("rsi at limit", {"adx": 31.0, "rsi": 54.0}, {}, {}, {}, Signal.NEUTRAL),
    ("rsi above limit", {"adx": 31.0, "rsi": 54.001}, {}, {}, {}, Signal.BUY),
    ("strong adx limit 52", {"adx": 45.0, "rsi": 52.5}, {"adx": 44.0}, {}, {}, Signal.BUY),
    ("weak adx limit ~56", {"adx": 22.5, "rsi": 55.85}, {"adx": 22.0}, {}, {}, Signal.NEUTRAL),
    # min_adx 45 > adx_strong_gt 40 (denominator <= 0); the ADX slope lowers the effective minimum to 25
    ("denominator <= 0, adx below strong: weak limit", {"adx": 30.0, "rsi": 55.9}, {"adx": 29.0}, {"thresholds__entry__min_adx": 45.0}, {}, Signal.NEUTRAL),
    ("denominator <= 0, adx below strong: above weak limit", {"adx": 30.0, "rsi": 56.1}, {"adx": 29.0}, {"thresholds__entry__min_adx": 45.0}, {}, Signal.BUY),
    ("denominator <= 0, adx at strong: strong limit", {"adx": 40.0, "rsi": 52.1}, {"adx": 39.0}, {"thresholds__entry__min_adx": 45.0}, {}, Signal.BUY),
    # MACD
    ("hist not accelerating", {"macd_hist": 0.1}, {}, {}, {}, Signal.NEUTRAL),
    ("sign mode, negative hist", {"macd_hist": -0.1, "prev_macd_hist": -0.2}, {}, {"thresholds__entry__macd_hist_entry_mode": "sign"}, {}, Signal.NEUTRAL),
    ("sign mode, positive hist", {"macd_hist": 0.05}, {}, {"thresholds__entry__macd_hist_entry_mode": "sign"}, {}, Signal.BUY),
    ("none mode", {"macd_hist": -0.5}, {}, {"thresholds__entry__macd_hist_entry_mode": "none"}, {}, Signal.BUY),
    # StochRSI
    ("stoch k above block", {"stoch_rsi_k": 0.86}, {}, {}, {}, Signal.NEUTRAL),
    ("stoch k at block", {"stoch_rsi_k": 0.85}, {}, {}, {}, Signal.BUY),
    ("stoch filter off", {"stoch_rsi_k": 0.99}, {}, {"filters__use_stoch_rsi_filter": False}, {}, Signal.BUY),
    # BTC alignment
    ("btc bearish", {}, {}, {}, {"btc": False}, Signal.NEUTRAL),
    ("btc bullish", {}, {}, {}, {"btc": True}, Signal.BUY),
    ("btc unknown", {}, {}, {}, {"btc": None}, Signal.BUY),
    ("the BTC symbol ignores it", {}, {}, {}, {"btc": False, "symbol": "BTC"}, Signal.BUY),
    ("own adx overrides", {"adx": 41.0}, {"adx": 40.5}, {}, {"btc": False}, Signal.BUY),
    ("own adx at override", {"adx": 40.0}, {"adx": 39.5}, {}, {"btc": False}, Signal.NEUTRAL),
    ("alignment not required", {}, {}, {"filters__require_btc_alignment": False}, {"btc": False}, Signal.BUY),
    # reverse
    ("reverse", {}, {}, {"trade__reverse_entry_signal": True}, {}, Signal.SELL),
]  # fmt: skip


@pytest.mark.parametrize(
    ("s_over", "p_over", "c_over", "kw", "expected"),
    [c[1:] for c in GATE_CASES],
    ids=[c[0] for c in GATE_CASES],
)
def test_each_gate_flips_the_long_entry(
    s_over: dict[str, Any],
    p_over: dict[str, Any],
    c_over: dict[str, Any],
    kw: dict[str, Any],
    expected: Signal,
) -> None:
    d = _decide(replace(LONG, **s_over), replace(LONG_P, **p_over), _cfg(**c_over), **kw)
    assert d.signal is expected, [g for g in d.gates if not g.passed]


SHORT_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], Signal]] = [
    ("clean", {}, {}, {}, Signal.SELL),
    ("rsi at limit 46", {"adx": 31.0, "rsi": 46.0}, {}, {}, Signal.NEUTRAL),
    ("hist not falling", {"macd_hist": -0.05}, {}, {}, Signal.NEUTRAL),
    ("stoch k below block", {"stoch_rsi_k": 0.14}, {}, {}, Signal.NEUTRAL),
    ("close above ema fast", {"close": 100.5}, {}, {}, Signal.NEUTRAL),
    ("macro required, slow above macro", {"ema_macro": 100.5}, {"filters__require_macro_alignment": True}, {}, Signal.NEUTRAL),
    ("btc bullish blocks", {}, {}, {"btc": True}, Signal.NEUTRAL),
    ("btc bearish", {}, {}, {"btc": False}, Signal.SELL),
    ("reverse", {}, {"trade__reverse_entry_signal": True}, {}, Signal.BUY),
]  # fmt: skip


@pytest.mark.parametrize(
    ("s_over", "c_over", "kw", "expected"), [c[1:] for c in SHORT_CASES], ids=[c[0] for c in SHORT_CASES]
)
def test_short_side_mirrors(
    s_over: dict[str, Any], c_over: dict[str, Any], kw: dict[str, Any], expected: Signal
) -> None:
    assert _decide(replace(SHORT, **s_over), SHORT_P, _cfg(**c_over), **kw).signal is expected


def test_confidence_tiers_and_reverse_keeps_confidence() -> None:
    assert _decide(replace(LONG, volume=200.0)).confidence is Confidence.MEDIUM  # not strictly above 2.5 x 80
    assert _decide(replace(LONG, volume=200.5)).confidence is Confidence.HIGH
    d = _decide(replace(LONG, volume=200.5), cfg=_cfg(trade__reverse_entry_signal=True))
    assert (d.signal, d.confidence) == (Signal.SELL, Confidence.HIGH)
    n = _decide(replace(LONG, volume=500.0, ready=False))
    assert (n.signal, n.confidence) == (Signal.NEUTRAL, Confidence.LOW)


# The trend entry fails on RSI (53 < 54.22) but a pullback / slow drift is available.
PB = replace(LONG, rsi=53.0, bb_width_ratio=1.0)
PB_P = replace(LONG_P, close=99.8, ema_fast=99.9)


def test_pullback_entry() -> None:
    on = {"thresholds__entry__enable_pullback_entries": True}
    assert _decide(PB, PB_P).signal is Signal.NEUTRAL
    d = _decide(PB, PB_P, _cfg(**on))
    assert (d.signal, d.confidence) == (Signal.BUY, Confidence.LOW)
    conf = _cfg(**on, thresholds__entry__pullback_confidence="medium")
    assert _decide(PB, PB_P, conf).confidence is Confidence.MEDIUM
    assert _decide(PB, replace(PB_P, close=99.9), _cfg(**on)).signal is Signal.BUY  # p.close <= p.ema_fast
    assert _decide(PB, replace(PB_P, close=100.0), _cfg(**on)).signal is Signal.NEUTRAL  # no cross
    assert _decide(replace(PB, adx=22.0), replace(PB_P, adx=21.0), _cfg(**on)).signal is Signal.NEUTRAL
    assert _decide(replace(PB, rsi=49.9), PB_P, _cfg(**on)).signal is Signal.NEUTRAL
    assert _decide(replace(PB, macd_hist=-0.01), PB_P, _cfg(**on)).signal is Signal.NEUTRAL
    no_sign = _cfg(**on, thresholds__entry__pullback_require_macd_sign=False)
    assert _decide(replace(PB, macd_hist=-0.01), PB_P, no_sign).signal is Signal.BUY
    assert _decide(replace(PB, prev_close=90.0), PB_P, _cfg(**on)).signal is Signal.NEUTRAL  # anomaly
    assert _decide(PB, PB_P, _cfg(**on), btc=False).signal is Signal.NEUTRAL
    # the pullback ignores the trend gates (ADX rising, StochRSI, extension)
    assert _decide(replace(PB, stoch_rsi_k=0.99), replace(PB_P, adx=35.0), _cfg(**on)).signal is Signal.BUY
    short = replace(SHORT, rsi=47.0)
    short_p = replace(SHORT_P, close=100.2, ema_fast=100.1)
    assert _decide(short, short_p, _cfg(**on)).signal is Signal.SELL


def test_slow_drift_entry() -> None:
    on = {"thresholds__entry__enable_slow_drift_entries": True}
    d = _decide(PB, LONG_P, _cfg(**on))
    assert (d.signal, d.confidence) == (Signal.BUY, Confidence.LOW)
    assert _decide(replace(PB, ema_slow_slope_pct=0.0006), LONG_P, _cfg(**on)).signal is Signal.BUY  # >=
    assert _decide(replace(PB, ema_slow_slope_pct=0.0005), LONG_P, _cfg(**on)).signal is Signal.NEUTRAL
    assert _decide(replace(PB, close=98.9, prev_close=99.0), LONG_P, _cfg(**on)).signal is Signal.NEUTRAL
    assert _decide(replace(PB, adx=9.0), replace(LONG_P, adx=8.0), _cfg(**on)).signal is Signal.NEUTRAL
    assert _decide(replace(PB, adx=10.0), replace(LONG_P, adx=8.0), _cfg(**on)).signal is Signal.BUY  # >=
    assert _decide(replace(PB, macd_hist=-0.1), LONG_P, _cfg(**on)).signal is Signal.NEUTRAL
    assert _decide(PB, LONG_P, _cfg(**on), btc=False).signal is Signal.NEUTRAL
    short = replace(SHORT, rsi=47.0)
    assert _decide(short, SHORT_P, _cfg(**on)).signal is Signal.SELL
    both = _cfg(**on, thresholds__entry__enable_pullback_entries=True)
    assert _decide(PB, PB_P, both).confidence is Confidence.LOW  # pullback first, both low


def test_decide_accepts_indicator_rows_and_matches_analyze_series() -> None:
    """The vectorised series and the per-bar `decide` are the same function, on real bars."""
    df = _load("SOL").iloc[:6000]
    for over in (
        None,
        SWEEP,
        {"thresholds": {"entry": {"enable_pullback_entries": True, "enable_slow_drift_entries": True}}},
    ):
        cfg = ref.merged_config(over)
        series = ref.analyze_series(df, "SOL", [i % 3 == 0 if i % 5 else None for i in range(len(df))], cfg)
        hits = np.flatnonzero(series["signal"].to_numpy() != 0)
        assert len(hits) > 20
        rows = list(hits[:40]) + list(range(195, 260, 7))
        for i in rows:
            btc = None if i % 5 == 0 else i % 3 == 0
            d = ref.decide(series.iloc[i], series.iloc[i - 1], cfg, "SOL", btc)
            assert (d.signal.code, d.confidence.rank) == (
                series["signal"].iat[i],
                series["confidence"].iat[i],
            )


def test_analyze_returns_the_last_bar_with_an_audit() -> None:
    df = _load("ETH").iloc[:3000]
    series = ref.analyze_series(df, "ETH", None, SWEEP)
    i = int(np.flatnonzero(series["signal"].to_numpy() != 0)[0])
    signal, confidence, latest = ref.analyze(df.iloc[: i + 1], "ETH", None, SWEEP)
    assert signal.code == series["signal"].iat[i] and confidence.rank == series["confidence"].iat[i]
    assert (latest.signal, latest.confidence, latest.symbol) == (signal, confidence, "ETH")
    assert latest.snapshot.close == float(df["close"].iat[i]) and latest.values["rsi"] == series["rsi"].iat[i]
    names = {g.name for g in latest.gates}
    assert names >= {"ranging", "anomaly_price_change", "extended", "adx_above_min", "trending_up", "vol_confirm",
                     "bullish", "bearish", "btc_ok_long", "rsi_long", "macd_long", "stoch_rsi_long", "all_gates"}  # fmt: skip
    gate = latest.gate("adx_above_min")
    assert gate.value == series["adx"].iat[i] and gate.passed
    # a short frame: neutral, no crash
    assert ref.analyze(df.iloc[:1], "ETH", True)[0] is Signal.NEUTRAL
    assert ref.analyze(df.iloc[:0], "ETH", None)[0] is Signal.NEUTRAL


def test_btc_series_input_forms() -> None:
    df = (
        _load("XRP").iloc[:4000]
        if (HL / "XRP_USDC_USDC-5m-futures.feather").exists()
        else _load("ETH").iloc[:4000]
    )
    n = len(df)
    unknown = ref.analyze_series(df, "XRP", None, SWEEP)["signal"].to_numpy()
    nan_series = ref.analyze_series(df, "XRP", pd.Series([np.nan] * n), SWEEP)["signal"].to_numpy()
    assert (unknown == nan_series).all()
    bear = ref.analyze_series(df, "XRP", [False] * n, SWEEP)["signal"].to_numpy()
    assert (bear <= unknown).all() and (bear[unknown == -1] == -1).all()
    assert ((bear == 1) <= (unknown == 1)).all()
    with pytest.raises(ValueError, match="btc_bullish"):
        ref.analyze_series(df, "XRP", [True] * (n - 1), SWEEP)


# ---- exits -----------------------------------------------------------------------------------

EXIT_PINNED: dict[str, Any] = {
    "trade": {
        "sl_atr_mult": 2.0, "enable_breakeven_stop": True, "breakeven_start_atr": 0.7, "breakeven_buffer_atr": 0.05,
        "trailing_start_atr": 1.0, "trailing_distance_atr": 0.8, "trailing_start_atr_low_conf": 0.0,
        "trailing_distance_atr_low_conf": 0.0, "enable_vol_buffered_trailing": True, "enable_partial_tp": True,
        "tp_partial_pct": 0.5, "tp_partial_atr_mult": 0.0, "tp_partial_min_notional_usd": 10.0,
        "smart_exit_adx_exhaustion_lt": 18.0, "smart_exit_adx_exhaustion_lt_low_conf": 0.0,
        "tsme_min_profit_atr": 1.0, "tsme_require_adx_slope_negative": True, "enable_rsi_overextension_exit": True,
        "rsi_exit_profit_atr_switch": 1.5, "rsi_exit_ub_lo_profit": 80.0, "rsi_exit_lb_lo_profit": 20.0,
        "rsi_exit_ub_hi_profit": 70.0, "rsi_exit_lb_hi_profit": 30.0, "rsi_exit_ub_lo_profit_low_conf": 0.0,
        "rsi_exit_lb_lo_profit_low_conf": 0.0, "rsi_exit_ub_hi_profit_low_conf": 0.0,
        "rsi_exit_lb_hi_profit_low_conf": 0.0, "block_exits_on_extreme_dev": False, "glitch_price_dev_pct": 0.4,
        "glitch_atr_mult": 12.0, "exit_cooldown_s": 15.0,
    },
    "filters": {"require_macro_alignment": False},
}  # fmt: skip

EX = Snapshot(
    t=10_000_000, close=100.0, atr=1.0, adx=30.0, adx_slope=1.0, atr_slope=0.0, bb_width_ratio=1.0, rsi=60.0,
    ema_fast=99.0, ema_slow=97.0, ema_macro=90.0, macd_hist=0.2, prev_macd_hist=0.1, prev2_macd_hist=0.05,
    prev3_macd_hist=0.0, ready=True,
)  # fmt: skip
LONG_POS = Position(Side.LONG, 10.0, 100.0, 1.0, Confidence.MEDIUM, tp_mult=4.0)
SHORT_POS = replace(LONG_POS, side=Side.SHORT)
SHORT_EX = replace(EX, ema_fast=101.0, ema_slow=103.0, rsi=40.0, macd_hist=-0.2, prev_macd_hist=-0.1,
                   prev2_macd_hist=-0.05, ema_macro=110.0)  # fmt: skip


def _xcfg(**over: Any) -> dict[str, Any]:
    cfg = ref.merged_config(EXIT_PINNED)
    for k, v in over.items():
        assert k in cfg["trade"], k
        cfg["trade"][k] = v
    return cfg


def _exit(pos: Position, px: float, s: Snapshot = EX, **over: Any) -> ref.ExitDecision | None:
    return ref.check_exit(pos, px, s, None, _xcfg(**over))


def _reason(pos: Position, px: float, s: Snapshot = EX, **over: Any) -> ExitReason | None:
    d = _exit(pos, px, s, **over)
    return None if d is None else d.reason


def test_stop_loss_and_its_modifiers() -> None:
    assert _reason(LONG_POS, 98.01) is None
    d = _exit(LONG_POS, 98.0)  # sl = 100 - 2 ATR, inclusive
    assert d == ref.ExitDecision(ExitReason.STOP_LOSS, 1.0, 98.0, None)
    # ASE: ADX falling and underwater -> 0.8 x 2 = 1.6 ATR
    ase = replace(EX, adx_slope=-1.0)
    assert _reason(LONG_POS, 98.41, ase) is None
    assert _reason(LONG_POS, 98.4, ase) is ExitReason.STOP_LOSS
    # SLB: ADX > 45 widens by 1.1 -> 2.2 ATR
    slb = replace(EX, adx=46.0)
    assert _reason(LONG_POS, 97.9, slb) is None and _reason(LONG_POS, 97.8, slb) is ExitReason.STOP_LOSS
    # DASE only applies in profit (then the stop sits below the entry): check the level itself
    cfg = _xcfg(enable_breakeven_stop=False)
    assert ref.stop_loss_level(LONG_POS, 101.0, replace(EX, adx=41.0), cfg) == (
        pytest.approx(100 - 2 * 1.15),
        False,
    )
    assert ref.stop_loss_level(LONG_POS, 101.0, replace(EX, adx=46.0), cfg)[0] == pytest.approx(
        100 - 2 * 1.15 * 1.1
    )
    assert ref.stop_loss_level(LONG_POS, 99.0, replace(EX, adx=41.0), cfg)[0] == pytest.approx(98.0)
    # shorts mirror
    assert _reason(SHORT_POS, 101.99, SHORT_EX) is None
    assert _reason(SHORT_POS, 102.0, SHORT_EX) is ExitReason.STOP_LOSS
    assert _reason(SHORT_POS, 101.6, replace(SHORT_EX, adx_slope=-1.0)) is ExitReason.STOP_LOSS


def test_breakeven_stop() -> None:
    # default geometry: at 0.7 ATR profit the stop moves to entry + 0.05 ATR (it cannot fire at that price)
    assert ref.stop_loss_level(LONG_POS, 100.7, EX, _xcfg()) == (pytest.approx(100.05), True)
    assert ref.stop_loss_level(LONG_POS, 100.69, EX, _xcfg()) == (pytest.approx(98.0), False)
    assert ref.stop_loss_level(LONG_POS, 100.7, EX, _xcfg(enable_breakeven_stop=False))[1] is False
    # a buffer beyond the start makes it fire on the same price
    assert _reason(LONG_POS, 100.75, breakeven_buffer_atr=0.8) is ExitReason.BREAKEVEN_STOP
    assert _reason(SHORT_POS, 99.25, SHORT_EX, breakeven_buffer_atr=0.8) is ExitReason.BREAKEVEN_STOP
    assert _reason(LONG_POS, 100.75, breakeven_buffer_atr=0.8, enable_breakeven_stop=False) is None


def test_trailing_stop_arms_ratchets_and_fires() -> None:
    cfg = _xcfg()
    assert ref.next_trailing_stop(LONG_POS, 100.99, EX, cfg) is None  # below the start
    tsl = ref.next_trailing_stop(LONG_POS, 101.5, EX, cfg)
    assert tsl == pytest.approx(101.5 - 0.8)
    assert _exit(LONG_POS, 101.5) is None
    armed = replace(LONG_POS, trailing_sl=tsl)
    assert ref.next_trailing_stop(armed, 101.2, EX, cfg) == tsl, "only ratchets toward profit"
    assert _reason(armed, 100.71) is None
    d = _exit(armed, 100.7)
    assert d is not None and d.reason is ExitReason.TRAILING_STOP and d.level == pytest.approx(100.7)
    # above 2 ATR profit with ADX 30 and a flat ATR: x0.5 -> 0.4, floored to 0.7 (RSI favourable)
    up = ref.next_trailing_stop(armed, 103.0, EX, cfg)
    assert up == pytest.approx(102.3)
    assert _reason(replace(armed, trailing_sl=up), 102.3) is ExitReason.TRAILING_STOP
    # shorts ratchet down
    s_tsl = ref.next_trailing_stop(SHORT_POS, 98.5, SHORT_EX, cfg)
    assert s_tsl == pytest.approx(99.3)
    assert ref.next_trailing_stop(replace(SHORT_POS, trailing_sl=s_tsl), 98.8, SHORT_EX, cfg) == s_tsl
    assert _reason(replace(SHORT_POS, trailing_sl=s_tsl), 99.3, SHORT_EX) is ExitReason.TRAILING_STOP


@pytest.mark.parametrize(
    ("px", "snap", "over", "dist"),
    [
        (101.5, {"bb_width_ratio": 1.3}, {}, 1.0),  # vol-buffered x1.25
        (101.5, {"bb_width_ratio": 1.3}, {"enable_vol_buffered_trailing": False}, 0.8),
        (101.5, {"adx": 20.0}, {}, 0.7),  # x0.7 = 0.56, floored at 0.7 (RSI favourable)
        (101.5, {"adx": 20.0, "rsi": 45.0}, {}, 0.56),  # floor 0.5
        (103.0, {"adx": 36.0, "adx_slope": 1.0}, {}, 0.8),  # strong rising trend keeps x1.0
        (103.0, {"atr_slope": 0.1, "rsi": 45.0}, {}, 0.6),  # x0.75
        (103.0, {"rsi": 45.0}, {}, 0.5),  # x0.5 = 0.4, floor 0.5
        (101.5, {}, {"trailing_distance_atr": 2.0}, 2.0),
    ],
)
def test_trailing_distance_modifiers(
    px: float, snap: dict[str, Any], over: dict[str, Any], dist: float
) -> None:
    got = ref.next_trailing_stop(LONG_POS, px, replace(EX, **snap), _xcfg(**over))
    assert got == pytest.approx(px - dist)


def test_low_confidence_overrides() -> None:
    low = replace(LONG_POS, confidence=Confidence.LOW)
    cfg = _xcfg(trailing_start_atr_low_conf=2.0, trailing_distance_atr_low_conf=1.5)
    assert ref.next_trailing_stop(low, 101.5, EX, cfg) is None
    assert ref.next_trailing_stop(LONG_POS, 101.5, EX, cfg) == pytest.approx(100.7)
    assert ref.next_trailing_stop(low, 102.0, EX, cfg) == pytest.approx(100.5)
    weak = replace(EX, adx=20.0)
    assert _reason(low, 100.2, weak, smart_exit_adx_exhaustion_lt_low_conf=25.0) is ExitReason.ADX_EXHAUSTION
    assert _reason(LONG_POS, 100.2, weak, smart_exit_adx_exhaustion_lt_low_conf=25.0) is None
    assert (
        _reason(low, 100.2, replace(EX, rsi=76.0), rsi_exit_ub_lo_profit_low_conf=75.0)
        is ExitReason.RSI_OVEREXTENSION
    )
    assert _reason(LONG_POS, 100.2, replace(EX, rsi=76.0), rsi_exit_ub_lo_profit_low_conf=75.0) is None


def test_partial_take_profit_then_trailing_manages_the_rest() -> None:
    # tp_partial_atr_mult 0: the partial sits at the full TP (entry + 4 ATR)
    assert _reason(LONG_POS, 103.99) is None
    d = _exit(LONG_POS, 104.0)
    assert d is not None and d.reason is ExitReason.TAKE_PROFIT_PARTIAL and d.fraction == 0.5
    assert d.trailing_sl is not None and d.trailing_sl >= 100.05  # at least breakeven
    after = replace(LONG_POS, quantity=5.0, tp1_taken=True, trailing_sl=d.trailing_sl)
    assert _reason(after, 104.5) is None, "with mult 0 there is no second TP"
    assert _reason(after, d.trailing_sl) is ExitReason.TRAILING_STOP
    # a quiet market: the ratchet to breakeven is what remains
    quiet = replace(LONG_POS, tp_mult=0.5, trailing_sl=None)
    d2 = _exit(quiet, 100.6)
    assert (
        d2 is not None
        and d2.reason is ExitReason.TAKE_PROFIT_PARTIAL
        and d2.trailing_sl == pytest.approx(100.05)
    )


def test_partial_take_profit_then_full_take_profit() -> None:
    over = {"tp_partial_atr_mult": 1.0, "tp_partial_pct": 0.7}
    d = _exit(LONG_POS, 101.0, **over)
    assert (
        d is not None
        and d.reason is ExitReason.TAKE_PROFIT_PARTIAL
        and d.fraction == 0.7
        and d.level == 101.0
    )
    after = replace(LONG_POS, quantity=3.0, tp1_taken=True, trailing_sl=d.trailing_sl)
    assert _reason(after, 103.9, **over) is None
    full = _exit(after, 104.0, **over)
    assert full is not None and full.reason is ExitReason.TAKE_PROFIT and full.fraction == 1.0
    # shorts mirror
    assert _reason(SHORT_POS, 99.0, SHORT_EX, **over) is ExitReason.TAKE_PROFIT_PARTIAL
    assert _reason(replace(SHORT_POS, tp1_taken=True), 96.0, SHORT_EX, **over) is ExitReason.TAKE_PROFIT
    # too small to split: one full close
    tiny = replace(LONG_POS, quantity=0.1)
    d_tiny = _exit(tiny, 101.0, **over)
    assert d_tiny is not None and (d_tiny.reason, d_tiny.fraction, d_tiny.level) == (
        ExitReason.TAKE_PROFIT,
        1.0,
        101.0,
    )
    # partial TP off: full TP at the stored multiplier
    assert _reason(LONG_POS, 104.0, enable_partial_tp=False) is ExitReason.TAKE_PROFIT
    assert _reason(replace(LONG_POS, tp_mult=7.0), 104.0, enable_partial_tp=False) is None


def test_smart_exits_in_priority_order() -> None:
    px = 100.2  # a small profit: no stop, no trailing, no TP
    every = replace(EX, ema_fast=96.0, adx=10.0, rsi=85.0, atr=0.5)
    assert _reason(LONG_POS, px, every) is ExitReason.TREND_BREAKDOWN
    weak_cross = replace(EX, ema_fast=96.95, adx=26.0)  # |diff| / slow < 0.001 with ADX > 25
    assert _reason(LONG_POS, px, weak_cross) is None
    assert _reason(LONG_POS, px, replace(weak_cross, adx=25.0)) is ExitReason.TREND_BREAKDOWN
    assert _reason(LONG_POS, px, replace(every, ema_fast=99.0)) is ExitReason.ADX_EXHAUSTION
    assert _reason(LONG_POS, px, replace(EX, adx=18.0)) is None  # strict
    macro = _xcfg()
    macro["filters"]["require_macro_alignment"] = True
    below_macro = replace(EX, close=89.0, rsi=85.0, atr=0.5)
    assert ref.check_exit(LONG_POS, px, below_macro, None, macro).reason is ExitReason.MACRO_BREAKDOWN  # type: ignore[union-attr]
    assert _reason(LONG_POS, px, below_macro) is ExitReason.RSI_OVEREXTENSION, "macro exit needs the filter"
    stagnant = replace(EX, atr=0.6, rsi=85.0)
    assert _reason(LONG_POS, 99.9, stagnant) is ExitReason.STAGNATION
    assert _reason(LONG_POS, 100.1, stagnant) is ExitReason.RSI_OVEREXTENSION  # in profit: no stagnation
    # TSME: ADX > 50, profit >= 1 ATR, ADX slope < 0, histogram falling 2 bars (not 3)
    tsme = replace(EX, adx=55.0, adx_slope=-1.0, rsi=85.0, macd_hist=0.1, prev_macd_hist=0.2, prev2_macd_hist=0.3,
                   prev3_macd_hist=0.25)  # fmt: skip
    assert _reason(LONG_POS, 101.6, tsme) is ExitReason.TSME
    assert _reason(LONG_POS, 100.9, tsme) is ExitReason.RSI_OVEREXTENSION  # profit < 1 ATR
    assert _reason(LONG_POS, 101.6, replace(tsme, adx_slope=1.0)) is ExitReason.RSI_OVEREXTENSION
    assert (
        _reason(LONG_POS, 101.6, replace(tsme, adx_slope=1.0), tsme_require_adx_slope_negative=False)
        is ExitReason.TSME
    )
    # MMDE: profit > 1.5 ATR, ADX > 35, histogram falling 3 bars
    mmde = replace(tsme, adx=40.0, prev3_macd_hist=0.4)
    assert _reason(LONG_POS, 101.6, mmde) is ExitReason.MMDE
    assert _reason(LONG_POS, 101.6, replace(mmde, adx=55.0)) is ExitReason.TSME, "TSME comes first"
    assert _reason(LONG_POS, 101.5, replace(mmde, rsi=60.0)) is None  # profit not > 1.5
    # RSI overextension: 80 below 1.5 ATR profit, 70 above
    assert _reason(LONG_POS, px, replace(EX, rsi=80.0)) is None
    assert _reason(LONG_POS, px, replace(EX, rsi=80.1)) is ExitReason.RSI_OVEREXTENSION
    assert _reason(LONG_POS, 101.6, replace(EX, rsi=70.1)) is ExitReason.RSI_OVEREXTENSION
    assert _reason(LONG_POS, px, replace(EX, rsi=90.0), enable_rsi_overextension_exit=False) is None


def test_short_smart_exits_mirror() -> None:
    px = 99.8
    assert _reason(SHORT_POS, px, replace(SHORT_EX, ema_fast=104.0)) is ExitReason.TREND_BREAKDOWN
    assert _reason(SHORT_POS, px, replace(SHORT_EX, rsi=19.9)) is ExitReason.RSI_OVEREXTENSION
    assert _reason(SHORT_POS, px, replace(SHORT_EX, rsi=20.0)) is None
    rising = replace(
        SHORT_EX, adx=40.0, macd_hist=-0.1, prev_macd_hist=-0.2, prev2_macd_hist=-0.3, prev3_macd_hist=-0.4
    )
    assert _reason(SHORT_POS, 98.4, rising) is ExitReason.MMDE


def test_exit_priority_stop_before_trailing_before_tp_before_smart() -> None:
    # a price below the stop with every smart exit armed: the stop wins
    assert _reason(LONG_POS, 97.0, replace(EX, ema_fast=96.0, adx=10.0)) is ExitReason.STOP_LOSS
    # trailing stop above the stop loss, trend broken: trailing wins
    pos = replace(LONG_POS, trailing_sl=100.5)
    assert _reason(pos, 100.4, replace(EX, ema_fast=96.0)) is ExitReason.TRAILING_STOP
    # TP reached with a broken trend: TP wins
    assert _reason(LONG_POS, 104.0, replace(EX, ema_fast=96.0)) is ExitReason.TAKE_PROFIT_PARTIAL


def test_glitch_guard_and_exit_cooldown() -> None:
    assert _reason(LONG_POS, 150.0) is ExitReason.TAKE_PROFIT_PARTIAL
    assert _exit(LONG_POS, 150.0, block_exits_on_extreme_dev=True) is None  # 50% from the close
    assert _exit(LONG_POS, 87.0, block_exits_on_extreme_dev=True) is None  # 13 > 12 ATR from the close
    assert (
        _reason(LONG_POS, 87.0, block_exits_on_extreme_dev=True, glitch_atr_mult=14.0) is ExitReason.STOP_LOSS
    )
    assert _reason(LONG_POS, 97.0, block_exits_on_extreme_dev=True) is ExitReason.STOP_LOSS
    recent = replace(LONG_POS, last_entry_ms=EX.t - 10_000)
    assert _exit(recent, 97.0) is None  # 10 s < 15 s since the entry
    assert _reason(replace(LONG_POS, last_entry_ms=EX.t - 15_000), 97.0) is ExitReason.STOP_LOSS
    assert ref.check_exit(recent, 97.0, EX, None, _xcfg(), now_ms=EX.t + 5_000).reason is ExitReason.STOP_LOSS  # type: ignore[union-attr]


def test_dynamic_tp_mult_and_defaults() -> None:
    cfg = ref.merged_config(PINNED)
    assert ref.dynamic_tp_mult(41.0, cfg) == 7.0
    assert ref.dynamic_tp_mult(40.0, cfg) == 4.0
    assert ref.dynamic_tp_mult(29.9, cfg) == 3.0
    d = ref.default_config()
    assert ref.dynamic_tp_mult(35.0) == d["trade"]["tp_atr_mult"]
    # cfg=None means the kernel's defaults, and the defaults are not mutated by merging
    assert ref.check_exit(LONG_POS, 100.0, EX) is None
    ref.merged_config({"trade": {"tp_atr_mult": 99.0}})
    assert ref.default_config()["trade"]["tp_atr_mult"] == d["trade"]["tp_atr_mult"]
