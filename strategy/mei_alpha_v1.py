"""Mei Alpha v1: the independent pandas/numpy reference implementation (the second opinion).

Written from `docs/strategy/mei_alpha_v1.md` (the contract) and `docs/indicators.md` without calling
the Rust kernel for indicators or decisions; shadow mode and the parity test compare the two.
Config defaults come from `bt_runtime.defaults()` (the one source), never from this module.

Public API:

* `compute_indicators(df, cfg)`: every indicator of the snapshot, one row per bar, vectorised
  (TA-Lib conventions; NaN before warm-up).
* `decide(s, p, cfg, symbol, btc_bullish)`: section 1 of the spec for one bar `s` with previous bar
  `p`; returns the signal, the confidence and an audit of every gate.
* `analyze(df, symbol, btc_bullish, cfg)`: the decision on the last bar -> `(Signal, Confidence, Latest)`.
* `analyze_series(df, symbol, btc_bullish, cfg)`: signal and confidence for every bar (vectorised).
* `check_exit(position, px, snapshot, prev_snapshot, cfg)`: section 3 of the spec, pure.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
Config: TypeAlias = Mapping[str, Any]
BtcInput: TypeAlias = bool | Sequence[bool | None] | pd.Series | np.ndarray[Any, Any] | None

NAN = float("nan")
# TA-Lib's zero test (`TA_IS_ZERO`): |x| < 1e-14.
TA_EPSILON = 1e-14


class Signal(StrEnum):
    BUY = "buy"
    SELL = "sell"
    NEUTRAL = "neutral"

    @property
    def code(self) -> int:
        """1 buy, -1 sell, 0 neutral (the kernel's encoding)."""
        return {"buy": 1, "sell": -1, "neutral": 0}[self.value]

    @classmethod
    def from_code(cls, code: int) -> Signal:
        return {1: cls.BUY, -1: cls.SELL, 0: cls.NEUTRAL}[int(code)]


class Confidence(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 low, 1 medium, 2 high (the kernel's encoding)."""
        return {"low": 0, "medium": 1, "high": 2}[self.value]

    @classmethod
    def from_rank(cls, rank: int) -> Confidence:
        return (cls.LOW, cls.MEDIUM, cls.HIGH)[int(rank)]


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> float:
        return 1.0 if self is Side.LONG else -1.0


# ---- config ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    import bt_runtime

    return dict(bt_runtime.defaults())


def default_config() -> dict[str, Any]:
    """A fresh copy of the kernel's defaults (`bt_runtime.defaults()`)."""
    return copy.deepcopy(_defaults())


def merged_config(cfg: Config | None) -> dict[str, Any]:
    """Deep-merge a (partial) config over the kernel's defaults."""
    base = default_config()

    def merge(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)

    if cfg:
        merge(base, cfg)
    return base


# ---- indicators (TA-Lib conventions, docs/indicators.md) -------------------------------------


def _nan(n: int) -> FloatArray:
    return np.full(n, NAN)


def sma(x: FloatArray, n: int) -> FloatArray:
    """TA-Lib SMA: a running total (add newest, divide by n, subtract oldest); NaN before `n - 1`."""
    out = _nan(len(x))
    if n < 1 or len(x) < n:
        return out
    total = 0.0
    for i in range(n - 1):
        total += float(x[i])
    vals = x.tolist()
    for i in range(n - 1, len(vals)):
        total += vals[i]
        out[i] = total / n
        total -= vals[i - n + 1]
    return out


def sma_after_warmup(x: FloatArray, n: int) -> FloatArray:
    """SMA of a series that starts with NaN warm-up values (starts at its first value)."""
    out = _nan(len(x))
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid):
        start = int(valid[0])
        out[start:] = sma(x[start:], n)
    return out


def ema(x: FloatArray, n: int, seed_end: int | None = None) -> FloatArray:
    """TA-Lib EMA: `k = 2/(n+1)`, seeded with the mean of the `n` values ending at `seed_end`."""
    out = _nan(len(x))
    end = n - 1 if seed_end is None else seed_end
    if n < 1 or len(x) <= end:
        return out
    k = 2.0 / (n + 1)
    total = 0.0
    for v in x[end - n + 1 : end + 1].tolist():
        total += v
    prev = total / n
    out[end] = prev
    vals = x.tolist()
    for i in range(end + 1, len(vals)):
        prev = (vals[i] - prev) * k + prev
        out[i] = prev
    return out


def rsi(c: FloatArray, n: int) -> FloatArray:
    """TA-Lib 0.8 RSI (Wilder, times the reciprocal of n; 0 when gain + loss <= 0)."""
    out = _nan(len(c))
    if n < 1 or len(c) <= n:
        return out
    inv = 1.0 / n
    vals = c.tolist()
    gain = loss = 0.0
    for i in range(1, n + 1):
        d = vals[i] - vals[i - 1]
        if d > 0:
            gain += d
        elif d < 0:
            loss -= d
    gain *= inv
    loss *= inv

    def value(g: float, lo: float) -> float:
        return (g / (lo + g)) * 100.0 if lo + g > 0 else 0.0

    out[n] = value(gain, loss)
    for i in range(n + 1, len(vals)):
        d = vals[i] - vals[i - 1]
        gain = (gain * (n - 1) + (d if d > 0 else 0.0)) * inv
        loss = (loss * (n - 1) + (-d if d < 0 else 0.0)) * inv
        out[i] = value(gain, loss)
    return out


def true_range(h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    """max(h - l, |h - prev close|, |l - prev close|); NaN on bar 0."""
    tr = _nan(len(c))
    if len(c) > 1:
        pc = c[:-1]
        tr[1:] = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - pc), np.abs(lo[1:] - pc)))
    return tr


def atr(h: FloatArray, lo: FloatArray, c: FloatArray, n: int) -> FloatArray:
    """TA-Lib ATR: seed = mean TR of bars 1..n, then `(atr * (n - 1) + tr) / n`."""
    out = _nan(len(c))
    if n < 1 or len(c) <= n:
        return out
    tr = true_range(h, lo, c).tolist()
    total = 0.0
    for v in tr[1 : n + 1]:
        total += v
    prev = total / n
    out[n] = prev
    for i in range(n + 1, len(tr)):
        prev = (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


def adx(h: FloatArray, lo: FloatArray, c: FloatArray, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(ADX, +DI, -DI) with Wilder sums as TA-Lib computes them (DX skipped on a zero denominator)."""
    size = len(c)
    adx_out, pdi, mdi = _nan(size), _nan(size), _nan(size)
    if n < 1 or size <= n:
        return adx_out, pdi, mdi
    tr = true_range(h, lo, c).tolist()
    hv, lv = h.tolist(), lo.tolist()
    pdm = [0.0] * size
    mdm = [0.0] * size
    for i in range(1, size):
        up = hv[i] - hv[i - 1]
        down = lv[i - 1] - lv[i]
        if down > 0 and up < down:
            mdm[i] = down
        elif up > 0 and up > down:
            pdm[i] = up
    sp = sm = st = 0.0
    for i in range(1, n):
        sp += pdm[i]
        sm += mdm[i]
        st += tr[i]
    dx: list[float | None] = [None] * size
    for i in range(n, size):
        sp = sp - sp / n + pdm[i]
        sm = sm - sm / n + mdm[i]
        st = st - st / n + tr[i]
        if abs(st) < TA_EPSILON:
            pdi[i] = mdi[i] = 0.0
            continue
        p = 100.0 * (sp / st)
        m = 100.0 * (sm / st)
        pdi[i], mdi[i] = p, m
        if abs(p + m) >= TA_EPSILON:
            dx[i] = 100.0 * (abs(m - p) / (m + p))
    first = 2 * n - 1
    if size <= first:
        return adx_out, pdi, mdi
    total = 0.0
    for i in range(n, first + 1):
        total += dx[i] or 0.0  # a skipped DX adds nothing to the seed (TA-Lib)
    prev = total / n
    adx_out[first] = prev
    for i in range(first + 1, size):
        d = dx[i]
        if d is not None:  # a skipped DX leaves ADX unchanged (TA-Lib)
            prev = (prev * (n - 1) + d) / n
        adx_out[i] = prev
    return adx_out, pdi, mdi


def rolling_std_population(x: FloatArray, n: int) -> FloatArray:
    """Population standard deviation of the last `n` values (two-pass per window; 0 on a flat one)."""
    out = _nan(len(x))
    if n < 1 or len(x) < n:
        return out
    win = sliding_window_view(x, n)
    mean = win.mean(axis=1)
    dev = win - mean[:, None]
    sd = np.sqrt((dev * dev).mean(axis=1))
    sd[win.max(axis=1) == win.min(axis=1)] = 0.0
    out[n - 1 :] = sd
    return out


def rolling_min_max(x: FloatArray, n: int) -> tuple[FloatArray, FloatArray]:
    lo, hi = _nan(len(x)), _nan(len(x))
    if n < 1 or len(x) < n:
        return lo, hi
    win = sliding_window_view(x, n)
    lo[n - 1 :] = win.min(axis=1)  # NaN propagates: windows reaching into warm-up stay NaN
    hi[n - 1 :] = win.max(axis=1)
    return lo, hi


def stoch_rsi_smoothed(c: FloatArray, n: int, s1: int, s2: int) -> tuple[FloatArray, FloatArray]:
    """Mei's StochRSI: raw = stochastic of RSI(n) over n values on 0..1, K = SMA(raw, s1), D = SMA(K, s2)."""
    r = rsi(c, n)
    lo, hi = rolling_min_max(r, n)
    rng = hi - lo
    flat = np.abs(rng) <= TA_EPSILON * (np.abs(hi) + np.abs(lo))
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(flat, 0.0, (r - lo) / rng)
    raw[np.isnan(rng)] = NAN
    k = sma_after_warmup(raw, s1)
    d = sma_after_warmup(k, s2)
    return k, d


def macd(c: FloatArray, fast: int, slow: int, signal: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """TA-Lib MACD (line, signal, hist): the fast EMA's seed window ends where the slow one's does."""
    if fast > slow:
        fast, slow = slow, fast
    slow_e = ema(c, slow)
    fast_e = ema(c, fast, seed_end=slow - 1)
    line = fast_e - slow_e
    sig = _nan(len(c))
    start = slow - 1
    if len(c) > start:
        sig[start:] = ema(line[start:], signal)
    line = np.where(np.isnan(sig), NAN, line)  # TA-Lib reports all three from the signal's warm-up
    return line, sig, line - sig


INDICATOR_COLUMNS: tuple[str, ...] = (
    "ema_fast", "ema_slow", "ema_macro",
    "adx", "adx_pos", "adx_neg", "adx_slope",
    "bb_upper", "bb_middle", "bb_lower", "bb_width", "bb_width_avg", "bb_width_ratio",
    "atr", "atr_slope", "avg_atr", "rsi", "stoch_rsi_k", "stoch_rsi_d",
    "macd", "macd_signal", "macd_hist", "prev_macd_hist", "prev2_macd_hist", "prev3_macd_hist",
    "vol_sma", "vol_trend_sma", "prev_close", "prev_ema_fast", "prev_ema_slow", "ema_slow_slope_pct",
)  # fmt: skip


def _times(df: pd.DataFrame) -> IntArray:
    if "t" in df.columns:
        raw: Any = df["t"].to_numpy()
    elif "date" in df.columns:
        raw = pd.to_datetime(df["date"], utc=True).astype("int64").to_numpy() // 1_000_000
    else:
        raw = np.arange(len(df))
    out: IntArray = np.asarray(raw, dtype=np.int64)
    return out


def compute_indicators(df: pd.DataFrame, cfg: Config | None = None) -> pd.DataFrame:
    """Every snapshot field (docs/indicators.md), one row per bar, NaN before each warm-up.

    `df` needs `open, high, low, close, volume` (and `t` in ms or `date`, optional). `ready` is true
    from the first bar on which every field has a value.
    """
    config = merged_config(cfg)
    ind = config["indicators"]
    entry = config["thresholds"]["entry"]
    o, h, lo, c, v = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume"))
    n = len(c)
    col: dict[str, Any] = {"t": _times(df), "open": o, "high": h, "low": lo, "close": c, "volume": v}

    def shift(x: FloatArray, k: int) -> FloatArray:
        out = _nan(n)
        if k < n:
            out[k:] = x[: n - k]
        return out

    col["ema_fast"] = ema(c, ind["ema_fast_window"])
    col["ema_slow"] = ema(c, ind["ema_slow_window"])
    col["ema_macro"] = ema(c, ind["ema_macro_window"])
    a, pdi, mdi = adx(h, lo, c, ind["adx_window"])
    col["adx"], col["adx_pos"], col["adx_neg"] = a, pdi, mdi
    col["adx_slope"] = a - shift(a, 1)
    mid = sma(c, ind["bb_window"])
    sd = rolling_std_population(c, ind["bb_window"])
    col["bb_middle"] = mid
    col["bb_upper"] = mid + ind["bb_std"] * sd
    col["bb_lower"] = mid - ind["bb_std"] * sd
    width = (col["bb_upper"] - col["bb_lower"]) / c
    col["bb_width"] = width
    width_avg = sma_after_warmup(width, ind["bb_width_avg_window"])
    col["bb_width_avg"] = width_avg
    with np.errstate(invalid="ignore", divide="ignore"):
        col["bb_width_ratio"] = np.where(width_avg == 0.0, 1.0, width / width_avg)
    t_atr = atr(h, lo, c, ind["atr_window"])
    col["atr"] = t_atr
    col["atr_slope"] = t_atr - shift(t_atr, 1)
    col["avg_atr"] = sma_after_warmup(t_atr, entry["ave_avg_atr_window"])
    col["rsi"] = rsi(c, ind["rsi_window"])
    k, d = stoch_rsi_smoothed(c, ind["stoch_rsi_window"], ind["stoch_rsi_smooth1"], ind["stoch_rsi_smooth2"])
    col["stoch_rsi_k"], col["stoch_rsi_d"] = k, d
    line, sig, hist = macd(c, ind["macd_fast"], ind["macd_slow"], ind["macd_signal"])
    col["macd"], col["macd_signal"], col["macd_hist"] = line, sig, hist
    col["prev_macd_hist"] = shift(hist, 1)
    col["prev2_macd_hist"] = shift(hist, 2)
    col["prev3_macd_hist"] = shift(hist, 3)
    vol_sma = sma(v, ind["vol_sma_window"])
    vol_trend_sma = sma(v, ind["vol_trend_window"])
    col["vol_sma"] = vol_sma
    col["vol_trend_sma"] = vol_trend_sma
    col["vol_trend"] = vol_trend_sma > vol_sma  # False while either is NaN
    col["prev_close"] = shift(c, 1)
    col["prev_ema_fast"] = shift(col["ema_fast"], 1)
    col["prev_ema_slow"] = shift(col["ema_slow"], 1)
    w = entry["slow_drift_slope_window"]
    before = shift(col["ema_slow"], w)
    with np.errstate(invalid="ignore", divide="ignore"):
        col["ema_slow_slope_pct"] = (col["ema_slow"] - before) / before
    ready = np.ones(n, dtype=bool)
    for name in INDICATOR_COLUMNS:
        ready &= ~np.isnan(col[name])
    col["ready"] = ready
    return pd.DataFrame(col, index=df.index)


# ---- snapshots -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One bar's indicator values (field names as in docs/indicators.md; NaN = not warmed up)."""

    t: int = 0
    open: float = NAN
    high: float = NAN
    low: float = NAN
    close: float = NAN
    volume: float = NAN
    ema_fast: float = NAN
    ema_slow: float = NAN
    ema_macro: float = NAN
    adx: float = NAN
    adx_pos: float = NAN
    adx_neg: float = NAN
    adx_slope: float = NAN
    bb_upper: float = NAN
    bb_middle: float = NAN
    bb_lower: float = NAN
    bb_width: float = NAN
    bb_width_avg: float = NAN
    bb_width_ratio: float = NAN
    atr: float = NAN
    atr_slope: float = NAN
    avg_atr: float = NAN
    rsi: float = NAN
    stoch_rsi_k: float = NAN
    stoch_rsi_d: float = NAN
    macd: float = NAN
    macd_signal: float = NAN
    macd_hist: float = NAN
    prev_macd_hist: float = NAN
    prev2_macd_hist: float = NAN
    prev3_macd_hist: float = NAN
    vol_sma: float = NAN
    vol_trend_sma: float = NAN
    vol_trend: bool = False
    prev_close: float = NAN
    prev_ema_fast: float = NAN
    prev_ema_slow: float = NAN
    ema_slow_slope_pct: float = NAN
    ready: bool = False

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any] | pd.Series) -> Snapshot:
        """Build from a dict or a `compute_indicators` row (unknown keys are ignored)."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in row:
                continue
            val = row[f.name]
            if f.name == "t":
                kw["t"] = int(val)
            elif f.name in ("ready", "vol_trend"):
                kw[f.name] = bool(val)
            else:
                kw[f.name] = float(val)
        return cls(**kw)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SnapshotLike: TypeAlias = Snapshot | Mapping[str, Any] | pd.Series


def _snapshot(x: SnapshotLike) -> Snapshot:
    return x if isinstance(x, Snapshot) else Snapshot.from_mapping(x)


# ---- decisions (section 1 of the spec) -------------------------------------------------------


@dataclass(frozen=True)
class GateAudit:
    """One comparison of the decision: `passed` is true when it does not stand in the way of an entry
    (for a filter such as `ranging` that means the filter did not fire)."""

    name: str
    value: float
    threshold: float
    passed: bool
    # True for flags and counts (readiness, BTC state, ranging votes): exact values that rounding
    # cannot move across the threshold, as opposed to comparisons of computed floats.
    discrete: bool = False


@dataclass(frozen=True)
class Decision:
    signal: Signal
    confidence: Confidence
    gates: tuple[GateAudit, ...]

    def gate(self, name: str) -> GateAudit:
        """The audit of gate ``name``; KeyError when the decision has no such gate."""
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(name)


@dataclass(frozen=True)
class Latest(Decision):
    """The decision on the last bar, with its symbol and the indicator values it read."""

    symbol: str = field(kw_only=True)
    snapshot: Snapshot = field(kw_only=True)

    @property
    def values(self) -> dict[str, Any]:
        return self.snapshot.as_dict()


@dataclass(frozen=True)
class _Check:
    name: str
    value: FloatArray
    threshold: FloatArray
    passed: BoolArray
    discrete: bool


def _core(
    s: Mapping[str, Any],
    p: Mapping[str, Any],
    cfg: Config,
    symbol: str,
    btc: FloatArray,
) -> tuple[IntArray, IntArray, list[_Check]]:
    """Section 1 of the spec over arrays (one element per bar). `btc`: 1 bullish, 0 bearish, NaN unknown.

    `s[name]` / `p[name]` are the current / previous bar's values. Returns signal codes (1/-1/0),
    confidence ranks (0/1/2; 0 when neutral) and every comparison for the audit.
    """
    f = cfg["filters"]
    th = cfg["thresholds"]
    e = th["entry"]
    r = th["ranging"]
    tp = th["tp_and_momentum"]
    sr = th["stoch_rsi"]
    n = len(btc)
    checks: list[_Check] = []

    def arr(x: Any) -> FloatArray:
        return np.broadcast_to(np.asarray(x, dtype=float), (n,))

    def check(name: str, value: Any, threshold: Any, passed: Any, discrete: bool = False) -> BoolArray:
        ok = np.broadcast_to(np.asarray(passed, dtype=bool), (n,))
        checks.append(_Check(name, arr(value), arr(threshold), ok, discrete))
        return ok

    def g(name: str) -> FloatArray:
        return np.asarray(s[name], dtype=float)

    close, ema_f, ema_s, ema_m = g("close"), g("ema_fast"), g("ema_slow"), g("ema_macro")
    adx_v, adx_slope, rsi_v, vol, vol_sma = g("adx"), g("adx_slope"), g("rsi"), g("volume"), g("vol_sma")
    hist, prev_hist = g("macd_hist"), g("prev_macd_hist")
    p_adx = np.asarray(p["adx"], dtype=float)
    p_close = np.asarray(p["close"], dtype=float)
    p_ema_f = np.asarray(p["ema_fast"], dtype=float)
    p_vol = np.asarray(p["volume"], dtype=float)
    p_vol_sma = np.asarray(p["vol_sma"], dtype=float)
    ready = np.asarray(s["ready"], dtype=bool)
    check("ready", ready.astype(float), 1.0, ready, discrete=True)

    with np.errstate(invalid="ignore", divide="ignore"):
        # 1.1 gates
        ranging_on = bool(f["enable_ranging_filter"])
        r_adx = check("ranging_adx", adx_v, r["adx_below"], ~(adx_v < r["adx_below"]))
        bbr = g("bb_width_ratio")
        r_bb = check(
            "ranging_bb_width_ratio", bbr, r["bb_width_ratio_below"], ~(bbr < r["bb_width_ratio_below"])
        )
        in_band = (r["rsi_low"] < rsi_v) & (rsi_v < r["rsi_high"])
        nearer_edge = np.where(
            np.abs(rsi_v - r["rsi_low"]) <= np.abs(rsi_v - r["rsi_high"]), r["rsi_low"], r["rsi_high"]
        )
        r_rsi = check("ranging_rsi_band", rsi_v, nearer_edge, ~in_band)
        votes = (~r_adx).astype(int) + (~r_bb).astype(int) + (~r_rsi).astype(int)
        ranging = ranging_on & (votes >= r["min_signals"])
        check("ranging", votes, r["min_signals"], ~ranging, discrete=True)

        anomaly_on = bool(f["enable_anomaly_filter"])
        change = np.abs(close / g("prev_close") - 1.0)
        dev = np.abs(close - ema_f) / ema_f
        a_px = anomaly_on & (change > th["anomaly"]["price_change_pct_gt"])
        a_dev = anomaly_on & (dev > th["anomaly"]["ema_fast_dev_pct_gt"])
        check("anomaly_price_change", change, th["anomaly"]["price_change_pct_gt"], ~a_px)
        check("anomaly_ema_fast_dev", dev, th["anomaly"]["ema_fast_dev_pct_gt"], ~a_dev)
        anomaly = a_px | a_dev
        extended = bool(f["enable_extension_filter"]) & (dev > e["max_dist_ema_fast"])
        check("extended", dev, e["max_dist_ema_fast"], ~extended)

        min_adx = np.full(n, float(e["min_adx"]))
        lowered = adx_slope > 0.5
        check("min_adx_lowered_by_slope", adx_slope, 0.5, lowered)
        min_adx = np.where(lowered, np.minimum(min_adx, 25.0), min_adx)
        atr_ratio = g("atr") / g("avg_atr")
        ave = bool(e["ave_enabled"]) & (g("avg_atr") > 0) & (atr_ratio > e["ave_atr_ratio_gt"])
        check("ave", atr_ratio, e["ave_atr_ratio_gt"], ave)
        min_adx = np.where(ave, min_adx * e["ave_adx_mult"], min_adx)
        adx_ok = check("adx_above_min", adx_v, min_adx, adx_v > min_adx)

        rising = adx_v > p_adx
        saturated = adx_v > f["adx_rising_saturation"]
        check("adx_rising", adx_v, p_adx, rising)
        check("adx_saturated", adx_v, f["adx_rising_saturation"], saturated)
        trending = check(
            "trending_up",
            adx_v,
            np.fmin(p_adx, f["adx_rising_saturation"]),
            (not f["require_adx_rising"]) | rising | saturated,
        )

        vol_now = vol > vol_sma
        vol_prev = bool(f["vol_confirm_include_prev"]) & (p_vol > p_vol_sma)
        check("volume_above_sma", vol, vol_sma, vol_now)
        check("prev_volume_above_sma", p_vol, p_vol_sma, vol_prev)
        vol_trend = np.asarray(s["vol_trend"], dtype=bool)
        check("vol_trend", g("vol_trend_sma"), vol_sma, vol_trend)
        vol_ok = check(
            "vol_confirm",
            vol,
            vol_sma,
            (not f["require_volume_confirmation"]) | ((vol_now | vol_prev) & vol_trend),
        )
        all_gates = check(
            "all_gates", np.nan, np.nan, adx_ok & ~ranging & ~anomaly & ~extended & vol_ok & trending
        )

        # 1.2 alignment and limits
        macro = bool(f["require_macro_alignment"])
        bull = check("bullish", ema_f, ema_s, (ema_f > ema_s) & ((not macro) | (ema_s > ema_m)))
        bear = check("bearish", ema_f, ema_s, (ema_f < ema_s) & ((not macro) | (ema_s < ema_m)))
        if macro:
            check("macro_long", ema_s, ema_m, ema_s > ema_m)
            check("macro_short", ema_s, ema_m, ema_s < ema_m)

        override = adx_v > e["btc_adx_override"]
        check("btc_adx_override", adx_v, e["btc_adx_override"], override)
        btc_free = (not f["require_btc_alignment"]) | (symbol == "BTC") | override
        # btc: 1 bullish, 0 bearish, NaN unknown (NaN != 0 and NaN != 1: unknown passes both)
        btc_long = check("btc_ok_long", btc, 0.0, btc_free | (btc != 0.0), discrete=True)
        btc_short = check("btc_ok_short", btc, 1.0, btc_free | (btc != 1.0), discrete=True)

        denom = tp["adx_strong_gt"] - e["min_adx"]
        if denom > 0:
            w = np.clip((adx_v - e["min_adx"]) / denom, 0.0, 1.0)
        else:
            w = np.where(adx_v >= tp["adx_strong_gt"], 1.0, 0.0)
        rsi_long_limit = tp["rsi_long_weak"] + w * (tp["rsi_long_strong"] - tp["rsi_long_weak"])
        rsi_short_limit = tp["rsi_short_weak"] + w * (tp["rsi_short_strong"] - tp["rsi_short_weak"])

        mode = e["macd_hist_entry_mode"]
        if mode == "accel":
            macd_l = check("macd_long", hist, prev_hist, hist > prev_hist)
            macd_s = check("macd_short", hist, prev_hist, hist < prev_hist)
        elif mode == "sign":
            macd_l = check("macd_long", hist, 0.0, hist > 0)
            macd_s = check("macd_short", hist, 0.0, hist < 0)
        elif mode == "none":
            macd_l = macd_s = np.ones(n, dtype=bool)
        else:
            raise ValueError(f"thresholds.entry.macd_hist_entry_mode: unknown mode {mode!r}")

        stoch_on = bool(f["use_stoch_rsi_filter"])
        k = g("stoch_rsi_k")
        no_block_l = check(
            "stoch_rsi_long", k, sr["block_long_if_k_gt"], ~(stoch_on & (k > sr["block_long_if_k_gt"]))
        )
        no_block_s = check(
            "stoch_rsi_short", k, sr["block_short_if_k_lt"], ~(stoch_on & (k < sr["block_short_if_k_lt"]))
        )

        # 1.3 trend entry
        above = check("close_above_ema_fast", close, ema_f, close > ema_f)
        below = check("close_below_ema_fast", close, ema_f, close < ema_f)
        rsi_l = check("rsi_long", rsi_v, rsi_long_limit, rsi_v > rsi_long_limit)
        rsi_s = check("rsi_short", rsi_v, rsi_short_limit, rsi_v < rsi_short_limit)
        long_ = all_gates & bull & above & rsi_l & macd_l & no_block_l & btc_long
        short = all_gates & bear & below & rsi_s & macd_s & no_block_s & btc_short
        sig = np.where(long_, 1, np.where(short, -1, 0))
        high_level = vol_sma * e["high_conf_volume_mult"]
        high = check("high_confidence_volume", vol, high_level, vol > high_level)
        conf = np.where(sig != 0, np.where(high, 2, 1), 0)

        # 1.4 pullback entry
        if e["enable_pullback_entries"]:
            adx_pb = check("pullback_adx", adx_v, e["pullback_min_adx"], adx_v > e["pullback_min_adx"])
            base = (sig == 0) & adx_pb & ~anomaly
            need_sign = bool(e["pullback_require_macd_sign"])
            was_below = check("pullback_prev_close_le_ema_fast", p_close, p_ema_f, p_close <= p_ema_f)
            was_above = check("pullback_prev_close_ge_ema_fast", p_close, p_ema_f, p_close >= p_ema_f)
            rsi_pl = check(
                "pullback_rsi_long", rsi_v, e["pullback_rsi_long_min"], rsi_v >= e["pullback_rsi_long_min"]
            )
            rsi_ps = check(
                "pullback_rsi_short", rsi_v, e["pullback_rsi_short_max"], rsi_v <= e["pullback_rsi_short_max"]
            )
            sign_l = check("pullback_macd_sign_long", hist, 0.0, (not need_sign) | (hist > 0))
            sign_s = check("pullback_macd_sign_short", hist, 0.0, (not need_sign) | (hist < 0))
            pl = base & bull & was_below & above & rsi_pl & sign_l & btc_long
            ps = base & bear & was_above & below & rsi_ps & sign_s & btc_short
            conf = np.where(pl | ps, Confidence(e["pullback_confidence"]).rank, conf)
            sig = np.where(pl, 1, np.where(ps, -1, sig))

        # 1.5 slow-drift entry
        if e["enable_slow_drift_entries"]:
            slope = g("ema_slow_slope_pct")
            min_slope = e["slow_drift_min_slope_pct"]
            adx_sd = check("slow_drift_adx", adx_v, e["slow_drift_min_adx"], adx_v >= e["slow_drift_min_adx"])
            base = (sig == 0) & adx_sd & ~anomaly
            need_sign = bool(e["slow_drift_require_macd_sign"])
            up = check("slow_drift_slope_long", slope, min_slope, slope >= min_slope)
            down = check("slow_drift_slope_short", slope, -min_slope, slope <= -min_slope)
            over = check("slow_drift_close_above_ema_slow", close, ema_s, close > ema_s)
            under = check("slow_drift_close_below_ema_slow", close, ema_s, close < ema_s)
            rsi_dl = check(
                "slow_drift_rsi_long",
                rsi_v,
                e["slow_drift_rsi_long_min"],
                rsi_v >= e["slow_drift_rsi_long_min"],
            )
            rsi_ds = check(
                "slow_drift_rsi_short",
                rsi_v,
                e["slow_drift_rsi_short_max"],
                rsi_v <= e["slow_drift_rsi_short_max"],
            )
            sign_l = check("slow_drift_macd_sign_long", hist, 0.0, (not need_sign) | (hist > 0))
            sign_s = check("slow_drift_macd_sign_short", hist, 0.0, (not need_sign) | (hist < 0))
            dl = base & up & over & rsi_dl & sign_l & btc_long
            ds = base & down & under & rsi_ds & sign_s & btc_short
            conf = np.where(dl | ds, Confidence.LOW.rank, conf)
            sig = np.where(dl, 1, np.where(ds, -1, sig))

    # 1.6 reverse
    if cfg["trade"]["reverse_entry_signal"]:
        sig = -sig
    sig = np.where(ready, sig, 0).astype(np.int64)
    conf = np.where(sig != 0, conf, 0).astype(np.int64)
    return sig, conf, checks


def decide(
    s: SnapshotLike,
    p: SnapshotLike,
    cfg: Config | None = None,
    symbol: str = "",
    btc_bullish: bool | None = None,
) -> Decision:
    """Section 1 of the spec for bar `s` with previous bar `p` (snapshots, dicts or indicator rows).

    `cfg` is a complete config (as from `merged_config`); None means the defaults.
    """
    config = cfg if cfg is not None else default_config()
    cur, prev = _snapshot(s).as_dict(), _snapshot(p).as_dict()
    btc = np.array([NAN if btc_bullish is None else float(bool(btc_bullish))])
    sig, conf, checks = _core(
        {k: np.array([v]) for k, v in cur.items()},
        {k: np.array([v]) for k, v in prev.items()},
        config,
        symbol,
        btc,
    )
    gates = tuple(
        GateAudit(c.name, float(c.value[0]), float(c.threshold[0]), bool(c.passed[0]), c.discrete)
        for c in checks
    )
    return Decision(Signal.from_code(int(sig[0])), Confidence.from_rank(int(conf[0])), gates)


def _btc_array(btc_bullish: BtcInput, n: int) -> FloatArray:
    """1.0 bullish, 0.0 bearish, NaN unknown, one per bar."""
    if btc_bullish is None:
        return _nan(n)
    if isinstance(btc_bullish, bool | np.bool_):
        return np.full(n, 1.0 if btc_bullish else 0.0)
    vals = list(btc_bullish)
    if len(vals) != n:
        raise ValueError(f"btc_bullish has {len(vals)} values for {n} bars")
    out = _nan(n)
    for i, b in enumerate(vals):
        if b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b)):
            continue
        out[i] = 1.0 if bool(b) else 0.0
    return out


def _previous(ind: pd.DataFrame) -> dict[str, FloatArray]:
    prev: dict[str, FloatArray] = {}
    for name in ("adx", "close", "ema_fast", "volume", "vol_sma"):
        x = ind[name].to_numpy(dtype=float)
        prev[name] = np.concatenate(([NAN], x[:-1])) if len(x) else x
    return prev


def analyze_series(
    df: pd.DataFrame,
    symbol: str,
    btc_bullish: BtcInput = None,
    cfg: Config | None = None,
) -> pd.DataFrame:
    """Signal (1 buy / -1 sell / 0 neutral) and confidence (0 low / 1 medium / 2 high) for every bar,
    followed by the indicator columns behind them. `btc_bullish`: None (unknown), one bool for every
    bar, or one value per bar (True, False or None/NaN for unknown)."""
    config = merged_config(cfg)
    ind = compute_indicators(df, config)
    cur: dict[str, Any] = {name: ind[name].to_numpy() for name in ind.columns}
    sig, conf, _ = _core(cur, _previous(ind), config, symbol, _btc_array(btc_bullish, len(ind)))
    out = ind.copy()
    out.insert(0, "confidence", conf)
    out.insert(0, "signal", sig)
    return out


def analyze(
    df: pd.DataFrame,
    symbol: str,
    btc_bullish: bool | None,
    cfg: Config | None = None,
) -> tuple[Signal, Confidence, Latest]:
    """The decision on the last bar of `df` (the reference's `analyze`)."""
    config = merged_config(cfg)
    ind = compute_indicators(df, config)
    if len(ind) == 0:
        return (
            Signal.NEUTRAL,
            Confidence.LOW,
            Latest(Signal.NEUTRAL, Confidence.LOW, (), symbol=symbol, snapshot=Snapshot()),
        )
    s = Snapshot.from_mapping(ind.iloc[-1])
    p = Snapshot.from_mapping(ind.iloc[-2]) if len(ind) > 1 else Snapshot()
    d = decide(s, p, config, symbol, btc_bullish)
    return d.signal, d.confidence, Latest(d.signal, d.confidence, d.gates, symbol=symbol, snapshot=s)


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
    """An open position as the exit checks see it.

    `entry_atr` is the ATR stored at entry (after the ATR floor), `tp_mult` the dynamic TP multiplier
    stored at entry (`dynamic_tp_mult`), `trailing_sl` the current trailing stop (None until armed),
    `last_entry_ms` the time of the last entry or add (for `trade.exit_cooldown_s`).
    """

    side: Side
    quantity: float
    entry: float
    entry_atr: float
    confidence: Confidence
    tp_mult: float
    tp1_taken: bool = False
    trailing_sl: float | None = None
    last_entry_ms: int | None = None
    adds: int = 0

    def profit_atr(self, px: float) -> float:
        return self.side.sign * (px - self.entry) / self.entry_atr if self.entry_atr > 0 else 0.0

    def level(self, atr_mult: float) -> float:
        """The price `atr_mult` entry-ATRs from the entry in the position's favour."""
        return self.entry + self.side.sign * atr_mult * self.entry_atr


@dataclass(frozen=True)
class ExitDecision:
    """Close `fraction` of the quantity (1.0 = all) for `reason`. `level` is the stop or target that
    was hit (NaN for smart exits); `trailing_sl` is the trailing stop to keep on the remainder."""

    reason: ExitReason
    fraction: float = 1.0
    level: float = NAN
    trailing_sl: float | None = None


def dynamic_tp_mult(adx_value: float, cfg: Config | None = None) -> float:
    """The TP multiplier stored at entry (section 3.4): strong / weak / `trade.tp_atr_mult`."""
    config = cfg if cfg is not None else default_config()
    tp = config["thresholds"]["tp_and_momentum"]
    if adx_value > tp["adx_strong_gt"]:
        return float(tp["tp_mult_strong"])
    if adx_value < tp["adx_weak_lt"]:
        return float(tp["tp_mult_weak"])
    return float(config["trade"]["tp_atr_mult"])


def _low_conf(pos: Position, low_conf: float, main: float) -> float:
    return low_conf if pos.confidence is Confidence.LOW and low_conf > 0 else main


def _against(pos: Position, px: float, level: float) -> bool:
    return px <= level if pos.side is Side.LONG else px >= level


def _favour(pos: Position, px: float, level: float) -> bool:
    return px >= level if pos.side is Side.LONG else px <= level


def _ratchet(pos: Position, current: float | None, candidate: float) -> float:
    if current is None:
        return candidate
    return max(current, candidate) if pos.side is Side.LONG else min(current, candidate)


def stop_loss_level(pos: Position, px: float, s: Snapshot, cfg: Config) -> tuple[float, bool]:
    """The stop (3.2) with ASE / DASE / SLB and breakeven; True when breakeven set it."""
    t = cfg["trade"]
    profit = pos.profit_atr(px)
    mult = float(t["sl_atr_mult"])
    if s.adx_slope < 0 and profit < 0:
        mult *= 0.80  # ASE
    if s.adx > 40 and profit > 0:
        mult *= 1.15  # DASE
    if s.adx > 45:
        mult *= 1.10  # SLB
    sl = pos.level(-mult)
    if t["enable_breakeven_stop"] and profit >= t["breakeven_start_atr"]:
        be = pos.level(t["breakeven_buffer_atr"])
        if (be > sl) if pos.side is Side.LONG else (be < sl):
            return be, True
    return sl, False


def next_trailing_stop(pos: Position, px: float, s: SnapshotLike, cfg: Config | None = None) -> float | None:
    """The trailing stop after seeing `px` (3.3): armed from the start profit, only ratchets toward profit."""
    config = cfg if cfg is not None else default_config()
    snap = _snapshot(s)
    t = config["trade"]
    profit = pos.profit_atr(px)
    start = _low_conf(pos, t["trailing_start_atr_low_conf"], t["trailing_start_atr"])
    if not profit >= start:
        return pos.trailing_sl
    dist = float(_low_conf(pos, t["trailing_distance_atr_low_conf"], t["trailing_distance_atr"]))
    if t["enable_vol_buffered_trailing"] and snap.bb_width_ratio > 1.2:
        dist *= 1.25
    if profit > 2.0:
        if snap.adx > 35 and snap.adx_slope > 0:
            pass
        elif snap.atr_slope > 0:
            dist *= 0.75
        else:
            dist *= 0.5
    if snap.adx < 25:
        dist *= 0.7
    favourable = snap.rsi > 50 if pos.side is Side.LONG else snap.rsi < 50
    dist = max(dist, 0.7 if favourable else 0.5)
    return _ratchet(pos, pos.trailing_sl, px - pos.side.sign * dist * pos.entry_atr)


def check_exit(
    position: Position,
    px: float,
    snapshot: SnapshotLike,
    prev_snapshot: SnapshotLike | None = None,
    cfg: Config | None = None,
    now_ms: int | None = None,
) -> ExitDecision | None:
    """Section 3: the first exit that fires for `position` at price `px`, or None.

    `snapshot` is the bar's indicators. `prev_snapshot` is accepted for symmetry with `decide`; the v1
    exits read only `snapshot` (its `prev*_macd_hist` fields carry the history they need). `now_ms`
    (default: the snapshot's `t`) is checked against `trade.exit_cooldown_s`. To keep the trailing stop
    when nothing fires, call `next_trailing_stop` with the same arguments.
    """
    del prev_snapshot
    config = cfg if cfg is not None else default_config()
    s = _snapshot(snapshot)
    t = config["trade"]
    now = s.t if now_ms is None else now_ms
    if position.last_entry_ms is not None and now - position.last_entry_ms < t["exit_cooldown_s"] * 1000.0:
        return None
    # 1. glitch guard
    if t["block_exits_on_extreme_dev"] and (
        abs(px / s.close - 1.0) > t["glitch_price_dev_pct"]
        or abs(px - s.close) > t["glitch_atr_mult"] * s.atr
    ):
        return None
    # 2. stop loss
    sl, breakeven = stop_loss_level(position, px, s, config)
    trailing = next_trailing_stop(position, px, s, config)
    if _against(position, px, sl):
        reason = ExitReason.BREAKEVEN_STOP if breakeven else ExitReason.STOP_LOSS
        return ExitDecision(reason, 1.0, sl, trailing)
    # 3. trailing stop
    if trailing is not None and _against(position, px, trailing):
        return ExitDecision(ExitReason.TRAILING_STOP, 1.0, trailing, trailing)
    # 4. take profit
    tp = position.level(position.tp_mult)
    partial_mult = float(t["tp_partial_atr_mult"])
    if t["enable_partial_tp"] and not position.tp1_taken:
        level = position.level(partial_mult) if partial_mult > 0 else tp
        if _favour(position, px, level):
            pct = float(t["tp_partial_pct"])
            part = position.quantity * pct * px
            rest = position.quantity * (1.0 - pct) * px
            if part < t["tp_partial_min_notional_usd"] or rest < t["tp_partial_min_notional_usd"]:
                return ExitDecision(ExitReason.TAKE_PROFIT, 1.0, level, trailing)
            be = _ratchet(position, trailing, position.level(t["breakeven_buffer_atr"]))
            return ExitDecision(ExitReason.TAKE_PROFIT_PARTIAL, pct, level, be)
    elif (not t["enable_partial_tp"] or partial_mult > 0) and _favour(position, px, tp):
        return ExitDecision(ExitReason.TAKE_PROFIT, 1.0, tp, trailing)
    # 5. smart exits
    smart = _smart_exit(position, px, s, config)
    return ExitDecision(smart, 1.0, NAN, trailing) if smart is not None else None


def _smart_exit(pos: Position, px: float, s: Snapshot, cfg: Config) -> ExitReason | None:
    t = cfg["trade"]
    long_ = pos.side is Side.LONG
    profit = pos.profit_atr(px)
    crossed = s.ema_fast < s.ema_slow if long_ else s.ema_fast > s.ema_slow
    weak = abs(s.ema_fast - s.ema_slow) / s.ema_slow < 0.001 and s.adx > 25
    if crossed and not weak:
        return ExitReason.TREND_BREAKDOWN
    if s.adx < _low_conf(pos, t["smart_exit_adx_exhaustion_lt_low_conf"], t["smart_exit_adx_exhaustion_lt"]):
        return ExitReason.ADX_EXHAUSTION
    if cfg["filters"]["require_macro_alignment"] and (
        s.close < s.ema_macro if long_ else s.close > s.ema_macro
    ):
        return ExitReason.MACRO_BREAKDOWN
    if s.atr < 0.7 * pos.entry_atr and profit < 0:
        return ExitReason.STAGNATION
    hist = (s.macd_hist, s.prev_macd_hist, s.prev2_macd_hist, s.prev3_macd_hist)
    worse: Callable[[float, float], bool] = (lambda a, b: a < b) if long_ else (lambda a, b: a > b)

    def fading(bars: int) -> bool:
        return all(worse(hist[i], hist[i + 1]) for i in range(bars))

    if (
        s.adx > 50
        and profit >= t["tsme_min_profit_atr"]
        and (not t["tsme_require_adx_slope_negative"] or s.adx_slope < 0)
        and fading(2)
    ):
        return ExitReason.TSME
    if profit > 1.5 and s.adx > 35 and fading(3):
        return ExitReason.MMDE
    if t["enable_rsi_overextension_exit"]:
        if profit < t["rsi_exit_profit_atr_switch"]:
            ub = _low_conf(pos, t["rsi_exit_ub_lo_profit_low_conf"], t["rsi_exit_ub_lo_profit"])
            lb = _low_conf(pos, t["rsi_exit_lb_lo_profit_low_conf"], t["rsi_exit_lb_lo_profit"])
        else:
            ub = _low_conf(pos, t["rsi_exit_ub_hi_profit_low_conf"], t["rsi_exit_ub_hi_profit"])
            lb = _low_conf(pos, t["rsi_exit_lb_hi_profit_low_conf"], t["rsi_exit_lb_hi_profit"])
        if (s.rsi > ub) if long_ else (s.rsi < lb):
            return ExitReason.RSI_OVEREXTENSION
    return None
