//! Python bindings for the indicator crate: `compute_indicators` (the columnar "dump
//! indicators" path used for diagnostics and TA-Lib parity) and one function per indicator.
//!
//! Every function returns plain Python lists of floats, `NaN` before the indicator's warm-up
//! (the same indices TA-Lib leaves `NaN`). Invalid input (sequences of different lengths,
//! non-finite values, a window of 0, a malformed config) raises `ValueError`; nothing panics.

use aiq_kernel::indicators::{
    Adx, Atr, BankConfig, Bollinger, Candle, Ema, IndicatorBank, IndicatorError, Macd, Rsi, Sma, StochRsi,
    StochRsiSmoothed, SNAPSHOT_COLUMNS,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

type Series = Vec<f64>;

fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn ind_err(e: IndicatorError) -> PyErr {
    value_err(e)
}

/// Any iterable of numbers (list, tuple, numpy array) to `Vec<f64>`; rejects strings and
/// non-finite values.
fn floats(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Series> {
    if obj.is_instance_of::<PyString>() {
        return Err(value_err(format!("{name} must be a sequence of numbers, not a string")));
    }
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in
        obj.try_iter().map_err(|_| value_err(format!("{name} must be a sequence of numbers")))?.enumerate()
    {
        let x: f64 = item?.extract().map_err(|_| value_err(format!("{name}[{i}] is not a number")))?;
        if !x.is_finite() {
            return Err(value_err(format!("{name}[{i}] is not finite ({x})")));
        }
        out.push(x);
    }
    Ok(out)
}

/// Timestamps: integers (or integral floats) in ms.
fn timestamps(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if obj.is_instance_of::<PyString>() {
        return Err(value_err("t must be a sequence of integers, not a string"));
    }
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in obj.try_iter().map_err(|_| value_err("t must be a sequence of integers"))?.enumerate() {
        let item = item?;
        let t = match item.extract::<i64>() {
            Ok(t) => t,
            Err(_) => {
                let x: f64 = item.extract().map_err(|_| value_err(format!("t[{i}] is not a number")))?;
                if !(x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15) {
                    return Err(value_err(format!("t[{i}] is not an integral timestamp ({x})")));
                }
                x as i64
            }
        };
        out.push(t);
    }
    Ok(out)
}

fn same_len(names: &[&str], lens: &[usize]) -> PyResult<()> {
    if lens.windows(2).any(|w| w[0] != w[1]) {
        let desc: Vec<String> = names.iter().zip(lens).map(|(n, l)| format!("{n}={l}")).collect();
        return Err(value_err(format!("input lengths differ: {}", desc.join(", "))));
    }
    Ok(())
}

/// Parse the optional config JSON for `compute_indicators`.
///
/// Accepted shapes: a (partial) strategy config (an object with `indicators` and/or
/// `thresholds`, merged over the defaults and validated), or a (partial) `indicators` section
/// whose keys may also include `ave_avg_atr_window` and `slow_drift_slope_window`.
fn bank_config(config_json: Option<&str>) -> PyResult<BankConfig> {
    let Some(text) = config_json else { return Ok(BankConfig::default()) };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| value_err(format!("config is not valid JSON: {e}")))?;
    let serde_json::Value::Object(mut map) = v else {
        return Err(value_err("config must be a JSON object"));
    };
    if map.contains_key("indicators") || map.contains_key("thresholds") {
        let mut merged = aiq_config::defaults_json();
        aiq_kernel::envelope::merge(&mut merged, serde_json::Value::Object(map));
        let cfg = aiq_config::from_json_value(merged).map_err(value_err)?;
        return Ok(BankConfig::from_strategy(&cfg));
    }
    let mut bank = BankConfig::default();
    let take_u32 =
        |map: &mut serde_json::Map<String, serde_json::Value>, key: &str| -> PyResult<Option<u32>> {
            match map.remove(key) {
                None => Ok(None),
                Some(x) => x
                    .as_u64()
                    .and_then(|u| u32::try_from(u).ok())
                    .map(Some)
                    .ok_or_else(|| value_err(format!("{key} must be a non-negative integer"))),
            }
        };
    if let Some(w) = take_u32(&mut map, "ave_avg_atr_window")? {
        bank.ave_avg_atr_window = w;
    }
    if let Some(w) = take_u32(&mut map, "slow_drift_slope_window")? {
        bank.slow_drift_slope_window = w;
    }
    bank.indicators = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| value_err(format!("invalid indicators config: {e}")))?;
    Ok(bank)
}

/// Run the indicator bank over candles and return every `IndicatorSnapshot` field as a column:
/// `dict[str, list[float]]` (booleans as 0.0/1.0, `t` and `bar_count` as floats, `NaN` before
/// warm-up).
#[pyfunction]
#[pyo3(signature = (t, o, h, l, c, v, config_json=None))]
#[allow(clippy::too_many_arguments)]
fn compute_indicators<'py>(
    py: Python<'py>,
    t: &Bound<'py, PyAny>,
    o: &Bound<'py, PyAny>,
    h: &Bound<'py, PyAny>,
    l: &Bound<'py, PyAny>,
    c: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    config_json: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let t = timestamps(t)?;
    let (o, h, l, c, v) =
        (floats("o", o)?, floats("h", h)?, floats("l", l)?, floats("c", c)?, floats("v", v)?);
    same_len(&["t", "o", "h", "l", "c", "v"], &[t.len(), o.len(), h.len(), l.len(), c.len(), v.len()])?;
    let mut bank = IndicatorBank::new(bank_config(config_json)?).map_err(ind_err)?;
    let n = t.len();
    let mut cols: Vec<Series> = (0..SNAPSHOT_COLUMNS.len()).map(|_| Vec::with_capacity(n)).collect();
    for i in 0..n {
        let snap = bank
            .try_update(Candle { t: t[i], o: o[i], h: h[i], l: l[i], c: c[i], v: v[i] })
            .map_err(|e| value_err(format!("bar {i}: {e}")))?;
        for (col, (_, x)) in cols.iter_mut().zip(snap.columns()) {
            col.push(x);
        }
    }
    let out = PyDict::new(py);
    for (name, col) in SNAPSHOT_COLUMNS.iter().zip(cols) {
        out.set_item(*name, col)?;
    }
    Ok(out)
}

/// Apply a one-input indicator to every value.
fn map1(values: &[f64], mut f: impl FnMut(f64) -> Option<f64>) -> Series {
    values.iter().map(|&x| f(x).unwrap_or(f64::NAN)).collect()
}

/// The columns of an indicator with `N` outputs per input, `NaN` where it gives no value yet.
fn columns<const N: usize>(outputs: impl ExactSizeIterator<Item = Option<[f64; N]>>) -> [Series; N] {
    let len = outputs.len();
    let mut cols: [Series; N] = std::array::from_fn(|_| Vec::with_capacity(len));
    for o in outputs {
        for (col, x) in cols.iter_mut().zip(o.unwrap_or([f64::NAN; N])) {
            col.push(x);
        }
    }
    cols
}

/// TA-Lib `EMA(values, n)`.
#[pyfunction]
fn ema(values: &Bound<'_, PyAny>, n: u32) -> PyResult<Series> {
    let x = floats("values", values)?;
    let mut e = Ema::new(n).map_err(ind_err)?;
    Ok(map1(&x, |v| e.update(v)))
}

/// TA-Lib `SMA(values, n)`.
#[pyfunction]
fn sma(values: &Bound<'_, PyAny>, n: u32) -> PyResult<Series> {
    let x = floats("values", values)?;
    let mut s = Sma::new(n).map_err(ind_err)?;
    Ok(map1(&x, |v| s.update(v)))
}

/// TA-Lib `RSI(values, n)`.
#[pyfunction]
fn rsi(values: &Bound<'_, PyAny>, n: u32) -> PyResult<Series> {
    let x = floats("values", values)?;
    let mut r = Rsi::new(n).map_err(ind_err)?;
    Ok(map1(&x, |v| r.update(v)))
}

fn hlc(
    h: &Bound<'_, PyAny>,
    l: &Bound<'_, PyAny>,
    c: &Bound<'_, PyAny>,
) -> PyResult<(Series, Series, Series)> {
    let (h, l, c) = (floats("h", h)?, floats("l", l)?, floats("c", c)?);
    same_len(&["h", "l", "c"], &[h.len(), l.len(), c.len()])?;
    Ok((h, l, c))
}

/// TA-Lib `ATR(h, l, c, n)`.
#[pyfunction]
fn atr(h: &Bound<'_, PyAny>, l: &Bound<'_, PyAny>, c: &Bound<'_, PyAny>, n: u32) -> PyResult<Series> {
    let (h, l, c) = hlc(h, l, c)?;
    let mut a = Atr::new(n).map_err(ind_err)?;
    Ok((0..h.len()).map(|i| a.update(h[i], l[i], c[i]).unwrap_or(f64::NAN)).collect())
}

/// TA-Lib `ADX`, `PLUS_DI`, `MINUS_DI` with period `n`: returns `(adx, plus_di, minus_di)`.
#[pyfunction]
fn adx(
    h: &Bound<'_, PyAny>,
    l: &Bound<'_, PyAny>,
    c: &Bound<'_, PyAny>,
    n: u32,
) -> PyResult<(Series, Series, Series)> {
    let (h, l, c) = hlc(h, l, c)?;
    let mut a = Adx::new(n).map_err(ind_err)?;
    let outputs = (0..h.len()).map(|i| a.update(h[i], l[i], c[i]));
    let [adx, pdi, mdi] =
        columns(outputs.map(|o| o.map(|o| [o.adx.unwrap_or(f64::NAN), o.plus_di, o.minus_di])));
    Ok((adx, pdi, mdi))
}

/// TA-Lib `BBANDS(values, n, nbdev, nbdev, SMA)`: returns `(upper, middle, lower)`.
#[pyfunction]
#[pyo3(signature = (values, n, nbdev=2.0))]
fn bbands(values: &Bound<'_, PyAny>, n: u32, nbdev: f64) -> PyResult<(Series, Series, Series)> {
    let x = floats("values", values)?;
    let mut b = Bollinger::new(n, nbdev).map_err(ind_err)?;
    let [up, mid, lo] = columns(x.iter().map(|&v| b.update(v).map(|o| [o.upper, o.middle, o.lower])));
    Ok((up, mid, lo))
}

/// TA-Lib `MACD(values, fast, slow, signal)`: returns `(macd, signal, hist)`.
#[pyfunction]
#[pyo3(signature = (values, fast=12, slow=26, signal=9))]
fn macd(values: &Bound<'_, PyAny>, fast: u32, slow: u32, signal: u32) -> PyResult<(Series, Series, Series)> {
    let x = floats("values", values)?;
    let mut m = Macd::new(fast, slow, signal).map_err(ind_err)?;
    let [line, sig, hist] = columns(x.iter().map(|&v| m.update(v).map(|o| [o.macd, o.signal, o.hist])));
    Ok((line, sig, hist))
}

/// TA-Lib `STOCHRSI(values, timeperiod, fastk_period, fastd_period, SMA)`: returns
/// `(fastk, fastd)` on 0..100.
#[pyfunction]
#[pyo3(signature = (values, timeperiod=14, fastk_period=5, fastd_period=3))]
fn stochrsi(
    values: &Bound<'_, PyAny>,
    timeperiod: u32,
    fastk_period: u32,
    fastd_period: u32,
) -> PyResult<(Series, Series)> {
    let x = floats("values", values)?;
    let mut s = StochRsi::new(timeperiod, fastk_period, fastd_period).map_err(ind_err)?;
    let [k, d] = columns(x.iter().map(|&v| s.update(v).map(|o| [o.k, o.d])));
    Ok((k, d))
}

/// Mei Alpha's smoothed StochRSI on 0..1: returns `(k, d)` with `k = SMA(raw, smooth1)` and
/// `d = SMA(k, smooth2)`, `raw` the stochastic of `RSI(window)` over `window` bars.
#[pyfunction]
#[pyo3(signature = (values, window=14, smooth1=3, smooth2=3))]
fn stochrsi_smoothed(
    values: &Bound<'_, PyAny>,
    window: u32,
    smooth1: u32,
    smooth2: u32,
) -> PyResult<(Series, Series)> {
    let x = floats("values", values)?;
    let mut s = StochRsiSmoothed::new(window, smooth1, smooth2).map_err(ind_err)?;
    let [k, d] = columns(x.iter().map(|&v| {
        let o = s.update(v);
        Some([o.k.unwrap_or(f64::NAN), o.d.unwrap_or(f64::NAN)])
    }));
    Ok((k, d))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compute_indicators, m)?)?;
    m.add_function(wrap_pyfunction!(ema, m)?)?;
    m.add_function(wrap_pyfunction!(sma, m)?)?;
    m.add_function(wrap_pyfunction!(rsi, m)?)?;
    m.add_function(wrap_pyfunction!(atr, m)?)?;
    m.add_function(wrap_pyfunction!(adx, m)?)?;
    m.add_function(wrap_pyfunction!(bbands, m)?)?;
    m.add_function(wrap_pyfunction!(macd, m)?)?;
    m.add_function(wrap_pyfunction!(stochrsi, m)?)?;
    m.add_function(wrap_pyfunction!(stochrsi_smoothed, m)?)?;
    Ok(())
}
