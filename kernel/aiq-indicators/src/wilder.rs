//! Wilder-smoothed indicators: [`Rsi`], [`Atr`] and [`Adx`] (with +DI / -DI), each
//! bit-identical to TA-Lib's `RSI`, `ATR`, `ADX`, `PLUS_DI` and `MINUS_DI` with TA-Lib's
//! default unstable period (0) and default compatibility.

use serde::{Deserialize, Serialize};

use crate::num::{is_zero, true_range};
use crate::{check_window, IndicatorError};

/// Relative strength index (Wilder), as TA-Lib `RSI`.
///
/// The first average gain / loss are the simple averages of the first `period` close-to-close
/// changes (a change of exactly 0 counts as a gain of 0). Afterwards, for each change `d`:
/// `avg = (avg * (period - 1) + part) * (1 / period)`, evaluated in that order (TA-Lib 0.8
/// multiplies by the reciprocal; the seed averages too). `RSI = (gain / (loss + gain)) * 100`,
/// and `0` when `loss + gain` is not positive (flat prices).
///
/// **Warm-up:** first value at index `period` (it needs `period` changes, i.e. `period + 1`
/// closes). `period` must be `>= 1`; for `period == 1` this computes Wilder's formula, whereas
/// TA-Lib's `RSI(1)` special-cases to returning the input unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rsi {
    period: u32,
    count: u64,
    prev: f64,
    gain: f64,
    loss: f64,
}

impl Rsi {
    pub fn new(period: u32) -> Result<Self, IndicatorError> {
        check_window("rsi period", period, 1)?;
        Ok(Self { period, count: 0, prev: 0.0, gain: 0.0, loss: 0.0 })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.period as u64
    }

    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.count += 1;
        if self.count == 1 {
            self.prev = x;
            return None;
        }
        let d = x - self.prev;
        self.prev = x;
        // TA-Lib 0.8 multiplies by the reciprocal of the period instead of dividing.
        let inv = 1.0 / self.period as f64;
        let seeding_end = self.period as u64 + 1;
        if self.count <= seeding_end {
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            if self.count < seeding_end {
                return None;
            }
            self.loss *= inv;
            self.gain *= inv;
        } else {
            let m = (self.period - 1) as f64;
            self.loss *= m;
            self.gain *= m;
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            self.loss *= inv;
            self.gain *= inv;
        }
        Some(self.current())
    }

    #[inline]
    fn current(&self) -> f64 {
        let s = self.loss + self.gain;
        if s > 0.0 {
            (self.gain / s) * 100.0
        } else {
            0.0
        }
    }

    /// Latest value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.count > self.period as u64).then(|| self.current())
    }
}

/// Average true range (Wilder), as TA-Lib `ATR`.
///
/// True range needs the previous close, so bar 0 has none. The first ATR is the simple average
/// of the first `period` true ranges (bars `1..=period`); afterwards
/// `atr = (atr * (period - 1) + tr) / period` as three separate steps.
///
/// **Warm-up:** first value at index `period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atr {
    period: u32,
    count: u64,
    prev_close: f64,
    value: f64,
}

impl Atr {
    pub fn new(period: u32) -> Result<Self, IndicatorError> {
        check_window("atr period", period, 1)?;
        Ok(Self { period, count: 0, prev_close: 0.0, value: 0.0 })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.period as u64
    }

    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        self.count += 1;
        if self.count == 1 {
            self.prev_close = close;
            return None;
        }
        let tr = true_range(high, low, self.prev_close);
        self.prev_close = close;
        let seeding_end = self.period as u64 + 1;
        if self.count <= seeding_end {
            self.value += tr;
            if self.count < seeding_end {
                return None;
            }
            self.value /= self.period as f64;
        } else {
            self.value *= (self.period - 1) as f64;
            self.value += tr;
            self.value /= self.period as f64;
        }
        Some(self.value)
    }

    /// Latest value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.count > self.period as u64).then_some(self.value)
    }
}

/// One ADX update's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdxOutput {
    /// Average directional index; `None` until index `2 * period - 1`.
    pub adx: Option<f64>,
    /// +DI (0..100).
    pub plus_di: f64,
    /// -DI (0..100).
    pub minus_di: f64,
}

/// Average directional index with +DI / -DI (Wilder), as TA-Lib `ADX`, `PLUS_DI`, `MINUS_DI`.
///
/// Per bar (from bar 1): `up = high - prev_high`, `down = prev_low - low`; `-DM1 = down` if
/// `down > 0 && up < down`, else `+DM1 = up` if `up > 0 && up > down`, else both 0. Over bars
/// `1..period-1` the DM1 and TR1 are summed; from bar `period` on they are Wilder-smoothed as
/// `dm = dm - dm / period + dm1` (same for TR). `DI = 100 * dm / tr` (0 when `tr` is within
/// TA-Lib's zero band). `DX = 100 * |(-DI) - (+DI)| / ((-DI) + (+DI))`, skipped (not
/// accumulated) when either denominator is within the zero band. The first ADX is the sum of
/// the DX of bars `period..=2*period-1` divided by `period`; afterwards
/// `adx = (adx * (period - 1) + dx) / period`.
///
/// **Warm-up:** +DI / -DI first at index `period`; ADX first at index `2 * period - 1`.
/// `period` must be `>= 1` (TA-Lib requires 2 for ADX; `PLUS_DI(1)` is special-cased there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adx {
    period: u32,
    count: u64,
    prev_high: f64,
    prev_low: f64,
    prev_close: f64,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
    plus_di: f64,
    minus_di: f64,
}

impl Adx {
    pub fn new(period: u32) -> Result<Self, IndicatorError> {
        check_window("adx period", period, 1)?;
        Ok(Self {
            period,
            count: 0,
            prev_high: 0.0,
            prev_low: 0.0,
            prev_close: 0.0,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: 0.0,
            plus_di: 0.0,
            minus_di: 0.0,
        })
    }

    /// Index of the first bar with an ADX value.
    pub fn warmup(&self) -> u64 {
        2 * self.period as u64 - 1
    }

    /// Index of the first bar with +DI / -DI values.
    pub fn di_warmup(&self) -> u64 {
        self.period as u64
    }

    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<AdxOutput> {
        let idx = self.count; // bar index of this update
        self.count += 1;
        if idx == 0 {
            self.prev_high = high;
            self.prev_low = low;
            self.prev_close = close;
            return None;
        }
        let diff_p = high - self.prev_high;
        let diff_m = self.prev_low - low;
        let tr1 = true_range(high, low, self.prev_close);
        self.prev_high = high;
        self.prev_low = low;
        self.prev_close = close;
        let p = self.period as u64;
        let n = self.period as f64;
        if idx < p {
            // Initial accumulation over bars 1..period-1.
            if diff_m > 0.0 && diff_p < diff_m {
                self.minus_dm += diff_m;
            } else if diff_p > 0.0 && diff_p > diff_m {
                self.plus_dm += diff_p;
            }
            self.tr += tr1;
            return None;
        }
        self.minus_dm -= self.minus_dm / n;
        self.plus_dm -= self.plus_dm / n;
        if diff_m > 0.0 && diff_p < diff_m {
            self.minus_dm += diff_m;
        } else if diff_p > 0.0 && diff_p > diff_m {
            self.plus_dm += diff_p;
        }
        self.tr = self.tr - self.tr / n + tr1;

        let mut dx = None;
        if is_zero(self.tr) {
            self.minus_di = 0.0;
            self.plus_di = 0.0;
        } else {
            self.minus_di = 100.0 * (self.minus_dm / self.tr);
            self.plus_di = 100.0 * (self.plus_dm / self.tr);
            let s = self.minus_di + self.plus_di;
            if !is_zero(s) {
                dx = Some(100.0 * ((self.minus_di - self.plus_di).abs() / s));
            }
        }
        let last_seed = 2 * p - 1;
        let adx = if idx < last_seed {
            if let Some(dx) = dx {
                self.sum_dx += dx;
            }
            None
        } else if idx == last_seed {
            if let Some(dx) = dx {
                self.sum_dx += dx;
            }
            self.adx = self.sum_dx / n;
            Some(self.adx)
        } else {
            if let Some(dx) = dx {
                self.adx = (self.adx * (self.period - 1) as f64 + dx) / n;
            }
            Some(self.adx)
        };
        Some(AdxOutput { adx, plus_di: self.plus_di, minus_di: self.minus_di })
    }
}
