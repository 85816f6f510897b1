"""Mei Alpha v1: the independent pandas/numpy reference implementation (the second opinion).

Written from `docs/strategy/mei_alpha_v1.md` and `docs/indicators.md` without calling the Rust
kernel for indicators or decisions; shadow mode and the parity test compare the two. Defaults come
from `bt_runtime.defaults()` (the one source), never from this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
NAN = float("nan")
TA_EPSILON = 1e-14


class Signal(StrEnum):
    BUY = "buy"
    SELL = "sell"
    NEUTRAL = "neutral"


class Confidence(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


CONF_RANK = {Confidence.LOW: 0, Confidence.MEDIUM: 1, Confidence.HIGH: 2}
SIGNAL_CODE = {Signal.BUY: 1, Signal.SELL: -1, Signal.NEUTRAL: 0}


def default_config() -> dict[str, Any]:
    import bt_runtime

    return bt_runtime.defaults()


def merged_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge a (partial) config over the kernel's defaults."""
    base = default_config()

    def merge(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    if cfg:
        merge(base, cfg)
    return base


# ---- indicators (TA-Lib conventions, see docs/indicators.md) ---------------------------------


def sma(x: FloatArray, n: int) -> FloatArray:
    """Simple moving average as a running total (add newest, divide, subtract oldest)."""
    out = np.full(len(x), NAN)
    if len(x) < n:
        return out
    total = float(np.sum(x[: n - 1])) if n > 1 else 0.0
    for i in range(n - 1, len(x)):
        total += x[i]
        out[i] = total / n
        total -= x[i - n + 1]
    return out


def sma_of_valid(x: FloatArray, n: int) -> FloatArray:
    """SMA over a series that starts with NaN warm-up values."""
    out = np.full(len(x), NAN)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid) == 0:
        return out
    start = int(valid[0])
    out[start:] = sma(x[start:], n)
    return out


def ema(x: FloatArray, n: int, seed_end: int | None = None) -> FloatArray:
    """EMA seeded with the SMA of the `n` values ending at `seed_end` (default `n - 1`)."""
    out = np.full(len(x), NAN)
    end = n - 1 if seed_end is None else seed_end
    if len(x) <= end:
        return out
    k = 2.0 / (n + 1)
    prev = float(np.sum(x[end - n + 1 : end + 1])) / n
    out[end] = prev
    for i in range(end + 1, len(x)):
        prev = (x[i] - prev) * k + prev
        out[i] = prev
    return out


def rsi(c: FloatArray, n: int) -> FloatArray:
    out = np.full(len(c), NAN)
    if len(c) <= n:
        return out
    inv = 1.0 / n
    diff = np.diff(c)
    gain = float(np.sum(np.where(diff[:n] > 0, diff[:n], 0.0))) * inv
    loss = float(np.sum(np.where(diff[:n] < 0, -diff[:n], 0.0))) * inv

    def value(g: float, lo: float) -> float:
        return (g / (lo + g)) * 100.0 if lo + g > 0 else 0.0

    out[n] = value(gain, loss)
    for i in range(n + 1, len(c)):
        d = c[i] - c[i - 1]
        gain = (gain * (n - 1) + (d if d > 0 else 0.0)) * inv
        loss = (loss * (n - 1) + (-d if d < 0 else 0.0)) * inv
        out[i] = value(gain, loss)
    return out


def true_range(h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    tr = np.full(len(c), NAN)
    prev = c[:-1]
    tr[1:] = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))
    return tr


def atr(h: FloatArray, lo: FloatArray, c: FloatArray, n: int) -> FloatArray:
    out = np.full(len(c), NAN)
    if len(c) <= n:
        return out
    tr = true_range(h, lo, c)
    prev = float(np.sum(tr[1 : n + 1])) / n
    out[n] = prev
    for i in range(n + 1, len(c)):
        prev = (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


def adx(h: FloatArray, lo: FloatArray, c: FloatArray, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(ADX, +DI, -DI) with Wilder sums as TA-Lib computes them."""
    size = len(c)
    adx_out, pdi, mdi = np.full(size, NAN), np.full(size, NAN), np.full(size, NAN)
    if size <= n:
        return adx_out, pdi, mdi
    tr = true_range(h, lo, c)
    pdm = np.zeros(size)
    mdm = np.zeros(size)
    for i in range(1, size):
        up = h[i] - h[i - 1]
        down = lo[i - 1] - lo[i]
        if down > 0 and up < down:
            mdm[i] = down
        elif up > 0 and up > down:
            pdm[i] = up
    sp = float(np.sum(pdm[1:n]))
    sm = float(np.sum(mdm[1:n]))
    st = float(np.sum(tr[1:n]))
    dx = np.full(size, NAN)
    for i in range(n, size):
        sp = sp - sp / n + pdm[i]
        sm = sm - sm / n + mdm[i]
        st = st - st / n + tr[i]
        p = 100.0 * sp / st if abs(st) >= TA_EPSILON else 0.0
        m = 100.0 * sm / st if abs(st) >= TA_EPSILON else 0.0
        pdi[i], mdi[i] = p, m
        if abs(p + m) >= TA_EPSILON:
            dx[i] = 100.0 * abs(m - p) / (m + p)
        else:
            dx[i] = dx[i - 1] if i > n else 0.0
    if size <= 2 * n - 1:
        return adx_out, pdi, mdi
    prev = float(np.sum(dx[n : 2 * n])) / n
    adx_out[2 * n - 1] = prev
    for i in range(2 * n, size):
        prev = (prev * (n - 1) + dx[i]) / n
        adx_out[i] = prev
    return adx_out, pdi, mdi


def rolling_std_population(x: FloatArray, n: int) -> FloatArray:
    s = pd.Series(x).rolling(n).std(ddof=0).to_numpy()
    # A flat window has exactly zero deviation.
    flat = pd.Series(x).rolling(n).max().to_numpy() == pd.Series(x).rolling(n).min().to_numpy()
    s[flat] = 0.0
    return np.asarray(s, dtype=float)


def stoch_rsi_smoothed(c: FloatArray, n: int, s1: int, s2: int) -> tuple[FloatArray, FloatArray]:
    r = rsi(c, n)
    rs = pd.Series(r)
    lo = rs.rolling(n).min().to_numpy()
    hi = rs.rolling(n).max().to_numpy()
    rng = hi - lo
    flat = np.abs(rng) <= TA_EPSILON * (np.abs(hi) + np.abs(lo))
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(flat, 0.0, ((r - lo) / rng) * 100.0) / 100.0
    raw[np.isnan(lo)] = NAN
    k = sma_of_valid(raw, s1)
    d = sma_of_valid(k, s2)
    return k, d


def macd_hist(c: FloatArray, fast: int, slow: int, signal: int) -> FloatArray:
    if fast > slow:
        fast, slow = slow, fast
    slow_e = ema(c, slow)
    fast_e = ema(c, fast, seed_end=slow - 1)
    line = fast_e - slow_e
    sig = np.full(len(c), NAN)
    start = slow - 1
    if len(c) > start + signal - 1:
        sig[start:] = ema(line[start:], signal)
    return line - sig


def compute_indicators(df: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Every indicator the strategy reads, one row per bar (NaN before warm-up)."""
    config = merged_config(cfg)
    ind = config["indicators"]
    entry = config["thresholds"]["entry"]
    o = df["open"].to_numpy(dtype=float)
    h = df["high"].to_numpy(dtype=float)
    lo = df["low"].to_numpy(dtype=float)
    c = df["close"].to_numpy(dtype=float)
    v = df["volume"].to_numpy(dtype=float)
    out = pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": v}, index=df.index)
    out["ema_fast"] = ema(c, ind["ema_fast_window"])
    out["ema_slow"] = ema(c, ind["ema_slow_window"])
    out["ema_macro"] = ema(c, ind["ema_macro_window"])
    a, p, m = adx(h, lo, c, ind["adx_window"])
    out["adx"], out["adx_pos"], out["adx_neg"] = a, p, m
    out["adx_slope"] = out["adx"].diff()
    mid = sma(c, ind["bb_window"])
    sd = rolling_std_population(c, ind["bb_window"])
    out["bb_upper"] = mid + ind["bb_std"] * sd
    out["bb_lower"] = mid - ind["bb_std"] * sd
    out["bb_width"] = (out["bb_upper"] - out["bb_lower"]) / out["close"]
    out["bb_width_avg"] = sma_of_valid(out["bb_width"].to_numpy(), ind["bb_width_avg_window"])
    ratio = out["bb_width"] / out["bb_width_avg"]
    out["bb_width_ratio"] = ratio.where(out["bb_width_avg"] != 0, 1.0).where(out["bb_width_avg"].notna())
    out["atr"] = atr(h, lo, c, ind["atr_window"])
    out["atr_slope"] = out["atr"].diff()
    out["avg_atr"] = sma_of_valid(out["atr"].to_numpy(), entry["ave_avg_atr_window"])
    out["rsi"] = rsi(c, ind["rsi_window"])
    k, d = stoch_rsi_smoothed(c, ind["stoch_rsi_window"], ind["stoch_rsi_smooth1"], ind["stoch_rsi_smooth2"])
    out["stoch_rsi_k"], out["stoch_rsi_d"] = k, d
    hist = macd_hist(c, ind["macd_fast"], ind["macd_slow"], ind["macd_signal"])
    out["macd_hist"] = hist
    out["prev_macd_hist"] = out["macd_hist"].shift(1)
    out["prev2_macd_hist"] = out["macd_hist"].shift(2)
    out["prev3_macd_hist"] = out["macd_hist"].shift(3)
    out["vol_sma"] = sma(v, ind["vol_sma_window"])
    vol_trend_sma = sma(v, ind["vol_trend_window"])
    out["vol_trend"] = vol_trend_sma > out["vol_sma"].to_numpy()
    out["prev_close"] = out["close"].shift(1)
    out["prev_ema_fast"] = out["ema_fast"].shift(1)
    out["prev_ema_slow"] = out["ema_slow"].shift(1)
    n = entry["slow_drift_slope_window"]
    before = out["ema_slow"].shift(n)
    out["ema_slow_slope_pct"] = (out["ema_slow"] - before) / before
    numeric = out.drop(columns=["vol_trend"])
    out["ready"] = numeric.notna().all(axis=1) & pd.Series(vol_trend_sma, index=df.index).notna()
    return out


# ---- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateAudit:
    name: str
    value: float
    threshold: float
    passed: bool


@dataclass(frozen=True)
class Latest:
    """The last bar's indicator values and the audit of every gate."""

    values: dict[str, float]
    gates: tuple[GateAudit, ...] = field(default_factory=tuple)


def _decide_arrays(
    s: pd.DataFrame, cfg: Mapping[str, Any], symbol: str, btc: FloatArray
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    """Vectorised section 1 of the spec. `btc`: 1.0 bullish, 0.0 bearish, NaN unknown."""
    f = cfg["filters"]
    th = cfg["thresholds"]
    e = th["entry"]
    r = th["ranging"]
    tp = th["tp_and_momentum"]
    sr = th["stoch_rsi"]

    def col(name: str) -> FloatArray:
        return s[name].to_numpy(dtype=float)

    close, ema_f, ema_s, ema_m = col("close"), col("ema_fast"), col("ema_slow"), col("ema_macro")
    adx_v, adx_slope, rsi_v = col("adx"), col("adx_slope"), col("rsi")
    vol, vol_sma = col("volume"), col("vol_sma")
    prev_adx = np.roll(adx_v, 1)
    prev_vol = np.roll(vol, 1)
    prev_vol_sma = np.roll(vol_sma, 1)
    prev_close = col("prev_close")
    prev_ema_f = col("prev_ema_fast")
    hist, prev_hist = col("macd_hist"), col("prev_macd_hist")
    ready = s["ready"].to_numpy(dtype=bool)
    prev_ready = np.roll(ready, 1)
    prev_ready[0] = False

    signals = (
        (adx_v < r["adx_below"]).astype(int)
        + (col("bb_width_ratio") < r["bb_width_ratio_below"]).astype(int)
        + ((r["rsi_low"] < rsi_v) & (rsi_v < r["rsi_high"])).astype(int)
    )
    ranging = f["enable_ranging_filter"] & (signals >= r["min_signals"])
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.abs(close - ema_f) / ema_f
        anomaly = f["enable_anomaly_filter"] & (
            (np.abs(close / prev_close - 1.0) > th["anomaly"]["price_change_pct_gt"])
            | (dev > th["anomaly"]["ema_fast_dev_pct_gt"])
        )
        extended = f["enable_extension_filter"] & (dev > e["max_dist_ema_fast"])
        min_adx = np.full(len(s), float(e["min_adx"]))
        min_adx = np.where(adx_slope > 0.5, np.minimum(min_adx, 25.0), min_adx)
        avg_atr, atr_v = col("avg_atr"), col("atr")
        ave = e["ave_enabled"] & (avg_atr > 0) & (atr_v / avg_atr > e["ave_atr_ratio_gt"])
        min_adx = np.where(ave, min_adx * e["ave_adx_mult"], min_adx)
    adx_ok = adx_v > min_adx
    trending = (not f["require_adx_rising"]) | (adx_v > prev_adx) | (adx_v > f["adx_rising_saturation"])
    vol_ok = (not f["require_volume_confirmation"]) | (
        ((vol > vol_sma) | (f["vol_confirm_include_prev"] & (prev_vol > prev_vol_sma)))
        & s["vol_trend"].to_numpy(dtype=bool)
    )
    all_gates = adx_ok & ~ranging & ~anomaly & ~extended & vol_ok & trending

    macro_l = (not f["require_macro_alignment"]) | (ema_s > ema_m)
    macro_s = (not f["require_macro_alignment"]) | (ema_s < ema_m)
    bull = (ema_f > ema_s) & macro_l
    bear = (ema_f < ema_s) & macro_s
    btc_free = (not f["require_btc_alignment"]) | (symbol == "BTC") | (adx_v > e["btc_adx_override"])
    btc_long = btc_free | (btc != 0.0)  # unknown (NaN) or bullish passes
    btc_short = btc_free | (btc != 1.0)

    denom = tp["adx_strong_gt"] - e["min_adx"]
    if denom > 0:
        w = np.clip((adx_v - e["min_adx"]) / denom, 0.0, 1.0)
    else:
        w = np.where(adx_v >= tp["adx_strong_gt"], 1.0, 0.0)
    rsi_long = tp["rsi_long_weak"] + w * (tp["rsi_long_strong"] - tp["rsi_long_weak"])
    rsi_short = tp["rsi_short_weak"] + w * (tp["rsi_short_strong"] - tp["rsi_short_weak"])

    mode = e["macd_hist_entry_mode"]
    if mode == "accel":
        macd_l, macd_s = hist > prev_hist, hist < prev_hist
    elif mode == "sign":
        macd_l, macd_s = hist > 0, hist < 0
    else:
        macd_l = macd_s = np.ones(len(s), dtype=bool)
    stoch_k = col("stoch_rsi_k")
    block_l = f["use_stoch_rsi_filter"] & (stoch_k > sr["block_long_if_k_gt"])
    block_s = f["use_stoch_rsi_filter"] & (stoch_k < sr["block_short_if_k_lt"])

    long_ = all_gates & bull & (close > ema_f) & (rsi_v > rsi_long) & macd_l & ~block_l & btc_long
    short = all_gates & bear & (close < ema_f) & (rsi_v < rsi_short) & macd_s & ~block_s & btc_short
    sig = np.where(long_, 1, np.where(short, -1, 0))
    high = vol > vol_sma * e["high_conf_volume_mult"]
    conf = np.where(sig != 0, np.where(high, 2, 1), 0)

    if e["enable_pullback_entries"]:
        base = (sig == 0) & (adx_v > e["pullback_min_adx"]) & ~anomaly
        msl = (not e["pullback_require_macd_sign"]) | (hist > 0)
        mss = (not e["pullback_require_macd_sign"]) | (hist < 0)
        pl = (
            base & bull & (prev_close <= prev_ema_f) & (close > ema_f) & (rsi_v >= e["pullback_rsi_long_min"])
        )
        pl &= msl & btc_long
        ps = (
            base
            & bear
            & (prev_close >= prev_ema_f)
            & (close < ema_f)
            & (rsi_v <= e["pullback_rsi_short_max"])
        )
        ps &= mss & btc_short
        pconf = CONF_RANK[Confidence(e["pullback_confidence"])]
        conf = np.where(pl | ps, pconf, conf)
        sig = np.where(pl, 1, np.where(ps, -1, sig))

    if e["enable_slow_drift_entries"]:
        slope = col("ema_slow_slope_pct")
        base = (sig == 0) & (adx_v >= e["slow_drift_min_adx"]) & ~anomaly
        msl = (not e["slow_drift_require_macd_sign"]) | (hist > 0)
        mss = (not e["slow_drift_require_macd_sign"]) | (hist < 0)
        dl = base & (slope >= e["slow_drift_min_slope_pct"]) & (close > ema_s)
        dl &= (rsi_v >= e["slow_drift_rsi_long_min"]) & msl & btc_long
        ds = base & (slope <= -e["slow_drift_min_slope_pct"]) & (close < ema_s)
        ds &= (rsi_v <= e["slow_drift_rsi_short_max"]) & mss & btc_short
        conf = np.where(dl | ds, 0, conf)
        sig = np.where(dl, 1, np.where(ds, -1, sig))

    if cfg["trade"]["reverse_entry_signal"]:
        sig = -sig
    valid = ready & prev_ready
    sig = np.where(valid, sig, 0)
    conf = np.where(sig != 0, conf, 0)
    audit = {
        "ranging": ranging,
        "anomaly": anomaly,
        "extended": extended,
        "adx_above_min": adx_ok,
        "effective_min_adx": min_adx,
        "trending_up": trending,
        "vol_confirm": vol_ok,
        "bullish": bull,
        "bearish": bear,
        "rsi_long_limit": rsi_long,
        "rsi_short_limit": rsi_short,
    }
    return sig, conf, audit


def _btc_array(btc_bullish: Sequence[bool | None] | pd.Series | bool | None, n: int) -> FloatArray:
    if btc_bullish is None:
        return np.full(n, NAN)
    if isinstance(btc_bullish, bool):
        return np.full(n, 1.0 if btc_bullish else 0.0)
    vals = list(btc_bullish)
    return np.array(
        [NAN if b is None or (isinstance(b, float) and math.isnan(b)) else float(bool(b)) for b in vals]
    )


def analyze_series(
    df: pd.DataFrame,
    symbol: str,
    btc_bullish: Sequence[bool | None] | pd.Series | None = None,
    cfg: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Signal (1/-1/0) and confidence (0/1/2) for every bar, plus the indicators behind them."""
    config = merged_config(cfg)
    ind = compute_indicators(df, config)
    sig, conf, audit = _decide_arrays(ind, config, symbol, _btc_array(btc_bullish, len(df)))
    out = ind.copy()
    out["signal"] = sig
    out["confidence"] = conf
    for k, v in audit.items():
        out[f"gate_{k}"] = v
    return out


def analyze(
    df: pd.DataFrame,
    symbol: str,
    btc_bullish: bool | None,
    cfg: Mapping[str, Any] | None = None,
) -> tuple[Signal, Confidence, Latest]:
    """The decision on the last bar of `df` (the reference's `analyze`)."""
    series = analyze_series(df, symbol, None if btc_bullish is None else [btc_bullish] * len(df), cfg)
    last = series.iloc[-1]
    code = int(last["signal"])
    signal = Signal.BUY if code == 1 else Signal.SELL if code == -1 else Signal.NEUTRAL
    confidence = [Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH][int(last["confidence"])]
    values = {k: float(last[k]) for k in series.columns if not k.startswith("gate_") and k not in ("ready",)}
    gates = tuple(
        GateAudit(k.removeprefix("gate_"), float(last[k]), NAN, bool(last[k]))
        for k in series.columns
        if k.startswith("gate_") and series[k].dtype == bool
    )
    return signal, confidence, Latest(values=values, gates=gates)


# ---- exits (section 3 of the spec) -----------------------------------------------------------


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    BREAKEVEN_STOP = "breakeven_stop"
    TRAILING_STOP = "trailing_stop"
    TAKE_PROFIT_PARTIAL = "take_profit_partial"
    TAKE_PROFIT = "take_profit"
    TREND_BREAKDOWN = "trend_breakdown"
    ADX_EXHAUSTION = "adx_exhaustion"
    MACRO_BREAKDOWN = "macro_breakdown"
    STAGNATION = "stagnation"
    TSME = "tsme"
    MMDE = "mmde"
    RSI_OVEREXTENSION = "rsi_overextension"


@dataclass(frozen=True)
class Position:
    side: str  # "long" | "short"
    quantity: float
    entry: float
    entry_atr: float
    confidence: Confidence = Confidence.MEDIUM
    tp_mult: float = 4.0
    tp1_taken: bool = False
    trailing_sl: float | None = None

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "long" else -1.0

    def profit_atr(self, px: float) -> float:
        return self.sign * (px - self.entry) / self.entry_atr if self.entry_atr > 0 else 0.0

    def level(self, atr_mult: float) -> float:
        return self.entry + self.sign * atr_mult * self.entry_atr


@dataclass(frozen=True)
class ExitDecision:
    fraction: float
    reason: ExitReason


def _low_conf(pos: Position, low_conf: float, main: float) -> float:
    return low_conf if pos.confidence is Confidence.LOW and low_conf > 0 else main


def _against(pos: Position, px: float, level: float) -> bool:
    return px <= level if pos.side == "long" else px >= level


def _favour(pos: Position, px: float, level: float) -> bool:
    return px >= level if pos.side == "long" else px <= level


def _ratchet(pos: Position, current: float | None, candidate: float) -> float:
    if current is None:
        return candidate
    return max(current, candidate) if pos.side == "long" else min(current, candidate)


def check_exit(
    pos: Position, px: float, s: Mapping[str, float], cfg: Mapping[str, Any] | None = None
) -> tuple[ExitDecision | None, float | None]:
    """The exit for `pos` at price `px` given the bar's indicators `s`, and the trailing stop to keep."""
    config = merged_config(cfg)
    t = config["trade"]
    trailing = pos.trailing_sl
    if t["block_exits_on_extreme_dev"] and (
        abs(px / s["close"] - 1.0) > t["glitch_price_dev_pct"]
        or abs(px - s["close"]) > t["glitch_atr_mult"] * s["atr"]
    ):
        return None, trailing
    profit = pos.profit_atr(px)

    mult = t["sl_atr_mult"]
    if s["adx_slope"] < 0 and profit < 0:
        mult *= 0.80
    if s["adx"] > 40 and profit > 0:
        mult *= 1.15
    if s["adx"] > 45:
        mult *= 1.10
    sl, breakeven = pos.level(-mult), False
    if t["enable_breakeven_stop"] and profit >= t["breakeven_start_atr"]:
        be = pos.level(t["breakeven_buffer_atr"])
        if (be > sl) if pos.side == "long" else (be < sl):
            sl, breakeven = be, True
    if _against(pos, px, sl):
        return ExitDecision(1.0, ExitReason.BREAKEVEN_STOP if breakeven else ExitReason.STOP_LOSS), trailing

    start = _low_conf(pos, t["trailing_start_atr_low_conf"], t["trailing_start_atr"])
    if profit >= start:
        dist = _low_conf(pos, t["trailing_distance_atr_low_conf"], t["trailing_distance_atr"])
        if t["enable_vol_buffered_trailing"] and s["bb_width_ratio"] > 1.2:
            dist *= 1.25
        if profit > 2.0:
            if s["adx"] > 35 and s["adx_slope"] > 0:
                pass
            elif s["atr_slope"] > 0:
                dist *= 0.75
            else:
                dist *= 0.5
        if s["adx"] < 25:
            dist *= 0.7
        favourable = s["rsi"] > 50 if pos.side == "long" else s["rsi"] < 50
        dist = max(dist, 0.7 if favourable else 0.5)
        trailing = _ratchet(pos, trailing, px - pos.sign * dist * pos.entry_atr)
    if trailing is not None and _against(pos, px, trailing):
        return ExitDecision(1.0, ExitReason.TRAILING_STOP), trailing

    tp = pos.level(pos.tp_mult)
    if t["enable_partial_tp"] and not pos.tp1_taken:
        level = pos.level(t["tp_partial_atr_mult"]) if t["tp_partial_atr_mult"] > 0 else tp
        if _favour(pos, px, level):
            part = pos.quantity * t["tp_partial_pct"] * px
            rest = pos.quantity * (1.0 - t["tp_partial_pct"]) * px
            if part < t["tp_partial_min_notional_usd"] or rest < t["tp_partial_min_notional_usd"]:
                return ExitDecision(1.0, ExitReason.TAKE_PROFIT), trailing
            trailing = _ratchet(pos, trailing, pos.level(t["breakeven_buffer_atr"]))
            return ExitDecision(t["tp_partial_pct"], ExitReason.TAKE_PROFIT_PARTIAL), trailing
    elif (not t["enable_partial_tp"] or t["tp_partial_atr_mult"] > 0) and _favour(pos, px, tp):
        return ExitDecision(1.0, ExitReason.TAKE_PROFIT), trailing

    smart = _smart_exit(pos, px, s, config)
    return (ExitDecision(1.0, smart) if smart else None), trailing


def _smart_exit(
    pos: Position, px: float, s: Mapping[str, float], cfg: Mapping[str, Any]
) -> ExitReason | None:
    t = cfg["trade"]
    long_ = pos.side == "long"
    profit = pos.profit_atr(px)
    crossed = s["ema_fast"] < s["ema_slow"] if long_ else s["ema_fast"] > s["ema_slow"]
    weak = abs(s["ema_fast"] - s["ema_slow"]) / s["ema_slow"] < 0.001 and s["adx"] > 25
    if crossed and not weak:
        return ExitReason.TREND_BREAKDOWN
    if s["adx"] < _low_conf(
        pos, t["smart_exit_adx_exhaustion_lt_low_conf"], t["smart_exit_adx_exhaustion_lt"]
    ):
        return ExitReason.ADX_EXHAUSTION
    if cfg["filters"]["require_macro_alignment"] and (
        s["close"] < s["ema_macro"] if long_ else s["close"] > s["ema_macro"]
    ):
        return ExitReason.MACRO_BREAKDOWN
    if s["atr"] < 0.7 * pos.entry_atr and profit < 0:
        return ExitReason.STAGNATION
    h = [s["macd_hist"], s["prev_macd_hist"], s["prev2_macd_hist"], s["prev3_macd_hist"]]

    def falling(bars: int) -> bool:
        return all((h[i] < h[i + 1]) if long_ else (h[i] > h[i + 1]) for i in range(bars))

    if (
        s["adx"] > 50
        and profit >= t["tsme_min_profit_atr"]
        and (not t["tsme_require_adx_slope_negative"] or s["adx_slope"] < 0)
        and falling(2)
    ):
        return ExitReason.TSME
    if profit > 1.5 and s["adx"] > 35 and falling(3):
        return ExitReason.MMDE
    if t["enable_rsi_overextension_exit"]:
        if profit < t["rsi_exit_profit_atr_switch"]:
            ub = _low_conf(pos, t["rsi_exit_ub_lo_profit_low_conf"], t["rsi_exit_ub_lo_profit"])
            lb = _low_conf(pos, t["rsi_exit_lb_lo_profit_low_conf"], t["rsi_exit_lb_lo_profit"])
        else:
            ub = _low_conf(pos, t["rsi_exit_ub_hi_profit_low_conf"], t["rsi_exit_ub_hi_profit"])
            lb = _low_conf(pos, t["rsi_exit_lb_hi_profit_low_conf"], t["rsi_exit_lb_hi_profit"])
        if (s["rsi"] > ub) if long_ else (s["rsi"] < lb):
            return ExitReason.RSI_OVEREXTENSION
    return None
