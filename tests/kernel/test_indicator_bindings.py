"""`bt_runtime` indicator bindings: input handling and error reporting (no data files needed)."""

from __future__ import annotations

import json
import math

import bt_runtime as bt
import numpy as np
import pytest


def _walk(n: int = 300) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.003, n)))
    o = np.concatenate([[c[0]], c[:-1]])
    h = np.maximum(o, c) * (1.0 + rng.uniform(0.0, 0.002, n))
    lo = np.minimum(o, c) * (1.0 - rng.uniform(0.0, 0.002, n))
    v = rng.uniform(0.0, 50.0, n)
    t = np.arange(n, dtype=np.int64) * 300_000
    return {"t": t, "o": o, "h": h, "l": lo, "c": c, "v": v}


def test_lists_and_numpy_arrays_agree():
    d = _walk()
    a = bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], d["c"], d["v"])
    b = bt.compute_indicators(*(d[k].tolist() for k in ("t", "o", "h", "l", "c", "v")))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    np.testing.assert_array_equal(bt.ema(d["c"], 10), bt.ema(d["c"].tolist(), 10))


def test_columns_and_warmup():
    d = _walk()
    out = bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], d["c"], d["v"])
    assert {"ema_fast", "adx", "bb_width_ratio", "stoch_rsi_k", "macd_hist", "ready"} <= out.keys()
    assert all(len(col) == 300 for col in out.values())
    ready = np.asarray(out["ready"])
    assert ready[:199].sum() == 0 and ready[199:].all()
    assert math.isnan(out["ema_macro"][198]) and not math.isnan(out["ema_macro"][199])
    ema = bt.ema(d["c"], 5)
    assert all(math.isnan(x) for x in ema[:4]) and not math.isnan(ema[4])


def test_config_shapes():
    d = _walk()
    args = [d[k] for k in ("t", "o", "h", "l", "c", "v")]
    small = bt.compute_indicators(*args, json.dumps({"ema_macro_window": 20, "ave_avg_atr_window": 10}))
    assert np.asarray(small["ready"]).argmax() < 199
    nested = bt.compute_indicators(*args, json.dumps({"indicators": {"ema_macro_window": 20}}))
    assert not math.isnan(nested["ema_macro"][19])


@pytest.mark.parametrize(
    "call",
    [
        lambda d: bt.compute_indicators(d["t"], d["o"], d["h"][:-1], d["l"], d["c"], d["v"]),
        lambda d: bt.compute_indicators(
            d["t"], d["o"], d["h"], d["l"], np.where(d["c"] > 0, d["c"], 0)[:0], d["v"]
        ),
        lambda d: bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], np.r_[d["c"][:-1], np.nan], d["v"]),
        lambda d: bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], -d["c"], d["v"]),
        lambda d: bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], d["c"], d["v"], "{not json"),
        lambda d: bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], d["c"], d["v"], '{"rsi_window": 0}'),
        lambda d: bt.compute_indicators(d["t"], d["o"], d["h"], d["l"], d["c"], d["v"], '{"bogus": 1}'),
        lambda d: bt.compute_indicators(d["t"] + 0.5, d["o"], d["h"], d["l"], d["c"], d["v"]),
        lambda d: bt.ema(d["c"], 0),
        lambda d: bt.sma([1.0, float("nan"), 3.0], 2),
        lambda d: bt.rsi("123", 2),
        lambda d: bt.atr(d["h"], d["l"][:-2], d["c"], 14),
        lambda d: bt.adx(d["h"], d["l"], d["c"], 0),
        lambda d: bt.bbands(d["c"], 20, float("inf")),
        lambda d: bt.macd(d["c"], 12, 0, 9),
        lambda d: bt.stochrsi([1.0, float("inf")], 14, 5, 3),
        lambda d: bt.stochrsi_smoothed(d["c"], 14, 0, 3),
    ],
)
def test_invalid_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call(_walk())


def test_empty_input_is_fine():
    assert bt.ema([], 3) == []
    out = bt.compute_indicators([], [], [], [], [], [])
    assert out["close"] == []
