//! Rolling min/max and stochastic RSI: [`StochRsi`] (TA-Lib `STOCHRSI`) and
//! [`StochRsiSmoothed`] (the smoothed 0..1 variant Mei Alpha v1 uses).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ma::Sma;
use crate::wilder::Rsi;
use crate::{check_window, IndicatorError};

/// Rolling minimum and maximum over the last `window` values, with monotonic deques
/// (amortised O(1) per update; capacity reserved up front, so no allocation after
/// construction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingMinMax {
    window: u32,
    count: u64,
    /// (index, value), values strictly increasing from front to back.
    mins: VecDeque<(u64, f64)>,
    /// (index, value), values strictly decreasing from front to back.
    maxs: VecDeque<(u64, f64)>,
}

impl RollingMinMax {
    /// `window >= 1`.
    pub fn new(window: u32) -> Result<Self, IndicatorError> {
        check_window("min/max window", window, 1)?;
        let cap = window as usize + 1;
        Ok(Self { window, count: 0, mins: VecDeque::with_capacity(cap), maxs: VecDeque::with_capacity(cap) })
    }

    /// Push `x`; returns `(min, max)` of the last `window` values once `window` values were seen.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<(f64, f64)> {
        let idx = self.count;
        self.count += 1;
        while self.mins.back().is_some_and(|&(_, v)| v >= x) {
            self.mins.pop_back();
        }
        self.mins.push_back((idx, x));
        while self.maxs.back().is_some_and(|&(_, v)| v <= x) {
            self.maxs.pop_back();
        }
        self.maxs.push_back((idx, x));
        let w = self.window as u64;
        // Drop entries that left the window [idx + 1 - w, idx].
        while self.mins.front().is_some_and(|&(i, _)| i + w <= idx) {
            self.mins.pop_front();
        }
        while self.maxs.front().is_some_and(|&(i, _)| i + w <= idx) {
            self.maxs.pop_front();
        }
        if self.count < w {
            return None;
        }
        Some((self.mins[0].1, self.maxs[0].1))
    }
}

/// TA-Lib 0.8's scale-aware zero test for a stochastic window's range.
#[inline]
fn flat(range: f64, hi: f64, lo: f64) -> bool {
    range.abs() <= crate::num::TA_EPSILON * (hi.abs() + lo.abs())
}

/// One stochastic update's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StochOutput {
    pub k: f64,
    pub d: f64,
}

/// Stochastic RSI as TA-Lib `STOCHRSI(timeperiod, fastk_period, fastd_period, MA_Type.SMA)`.
///
/// `rsi = RSI(timeperiod)`; over the last `fastk_period` RSI values,
/// `K = ((rsi - lowest) / (highest - lowest)) * 100`, or `0` when the window is flat
/// (`|highest - lowest| <= 1e-14 * (|highest| + |lowest|)`, TA-Lib 0.8's scale-aware zero test,
/// which also absorbs rounding residue of a machine-flat RSI); `D = SMA(K, fastd_period)`.
/// Scale 0..100.
///
/// **Warm-up:** K and D both first at index `timeperiod + fastk_period - 1 + fastd_period - 1`
/// (TA-Lib reports K from the same index as D).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StochRsi {
    rsi: Rsi,
    minmax: RollingMinMax,
    d: Sma,
}

impl StochRsi {
    pub fn new(timeperiod: u32, fastk_period: u32, fastd_period: u32) -> Result<Self, IndicatorError> {
        Ok(Self {
            rsi: Rsi::new(timeperiod)?,
            minmax: RollingMinMax::new(fastk_period)?,
            d: Sma::new(fastd_period)?,
        })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.rsi.warmup() + self.minmax.window as u64 - 1 + self.d.warmup()
    }

    #[inline]
    pub fn update(&mut self, close: f64) -> Option<StochOutput> {
        let r = self.rsi.update(close)?;
        let (lo, hi) = self.minmax.update(r)?;
        let range = hi - lo;
        let k = if flat(range, hi, lo) { 0.0 } else { ((r - lo) / range) * 100.0 };
        let d = self.d.update(k)?;
        Some(StochOutput { k, d })
    }
}

/// Smoothed stochastic RSI on a 0..1 scale (the `ta` library's `StochRSIIndicator`, used by
/// Mei Alpha v1): `raw = (rsi - lowest) / (highest - lowest)` (evaluated as TA-Lib's 0..100
/// fast-K divided by 100) over the last `window` RSI values
/// of `RSI(window)` (`0` when the window is flat, with TA-Lib's scale-aware test; see
/// [`StochRsi`]), `K = SMA(raw, smooth1)`,
/// `D = SMA(K, smooth2)`.
///
/// **Warm-up:** raw first at index `2 * window - 1`; K at `2 * window + smooth1 - 2`; D at
/// `2 * window + smooth1 + smooth2 - 3` (27 / 29 / 31 for 14/3/3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StochRsiSmoothed {
    rsi: Rsi,
    minmax: RollingMinMax,
    k: Sma,
    d: Sma,
}

/// Outputs of [`StochRsiSmoothed::update`]; `None` fields are still warming up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StochSmoothedOutput {
    pub k: Option<f64>,
    pub d: Option<f64>,
}

impl StochRsiSmoothed {
    pub fn new(window: u32, smooth1: u32, smooth2: u32) -> Result<Self, IndicatorError> {
        Ok(Self {
            rsi: Rsi::new(window)?,
            minmax: RollingMinMax::new(window)?,
            k: Sma::new(smooth1)?,
            d: Sma::new(smooth2)?,
        })
    }

    /// Index of the first bar with a K value.
    pub fn k_warmup(&self) -> u64 {
        self.rsi.warmup() + self.minmax.window as u64 - 1 + self.k.warmup()
    }

    /// Index of the first bar with a D value.
    pub fn d_warmup(&self) -> u64 {
        self.k_warmup() + self.d.warmup()
    }

    #[inline]
    pub fn update(&mut self, close: f64) -> StochSmoothedOutput {
        let none = StochSmoothedOutput { k: None, d: None };
        let Some(r) = self.rsi.update(close) else { return none };
        let Some((lo, hi)) = self.minmax.update(r) else { return none };
        let range = hi - lo;
        // TA-Lib's 0..100 fast-K, rescaled: composes bit-identically with `talib.SMA(k / 100)`.
        let raw = if flat(range, hi, lo) { 0.0 } else { (((r - lo) / range) * 100.0) / 100.0 };
        let Some(k) = self.k.update(raw) else { return none };
        StochSmoothedOutput { k: Some(k), d: self.d.update(k) }
    }
}
