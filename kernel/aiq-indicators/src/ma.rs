//! Moving averages: [`Sma`] (TA-Lib `SMA`) and [`Ema`] (TA-Lib `EMA`).

use serde::{Deserialize, Serialize};

use crate::{check_window, IndicatorError};

/// Fixed-capacity ring of the last `cap` values. Allocated once at construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ring {
    buf: Vec<f64>,
    /// Slot the next value goes into (once full, it holds the oldest value).
    pos: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Self { buf: vec![0.0; cap.max(1)], pos: 0 }
    }

    /// Store `x`, overwriting the oldest value once full.
    #[inline]
    pub(crate) fn push(&mut self, x: f64) {
        self.buf[self.pos] = x;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
    }

    /// All stored slots (in storage order, not time order).
    pub(crate) fn values(&self) -> &[f64] {
        &self.buf
    }

    /// The oldest stored value (valid once `cap` values were pushed).
    #[inline]
    pub(crate) fn oldest(&self) -> f64 {
        self.buf[self.pos]
    }
}

/// Simple moving average over `period` values, bit-identical to TA-Lib `SMA`.
///
/// Arithmetic (TA-Lib `TA_INT_SMA`): a running total accumulated from `0.0` in input order;
/// each output adds the newest value, divides the total by `period`, then subtracts the oldest
/// value of the window. Reproducing the running total (rather than a compensated or recomputed
/// sum) is deliberate: TA-Lib itself uses it, so this is what makes the results bit-identical
/// to TA-Lib, including TA-Lib's own rounding drift (bounded by about
/// `eps * max|x| * sqrt(bars)`, far below 1e-9 relative for prices and volumes).
///
/// **Warm-up:** the first value is produced by the `period`-th update (index `period - 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sma {
    period: u32,
    ring: Ring,
    count: u64,
    total: f64,
    #[serde(with = "crate::num::serde_f64")]
    value: f64,
}

impl Sma {
    /// `period >= 1`.
    pub fn new(period: u32) -> Result<Self, IndicatorError> {
        check_window("sma period", period, 1)?;
        Ok(Self { period, ring: Ring::new(period as usize), count: 0, total: 0.0, value: f64::NAN })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.period as u64 - 1
    }

    pub fn period(&self) -> u32 {
        self.period
    }

    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.total += x;
        self.ring.push(x);
        self.count += 1;
        if self.count < self.period as u64 {
            return None;
        }
        let out = self.total / self.period as f64;
        self.total -= self.ring.oldest();
        self.value = out;
        Some(out)
    }

    /// Latest value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.count >= self.period as u64).then_some(self.value)
    }
}

/// Exponential moving average, bit-identical to TA-Lib `EMA` (default compatibility).
///
/// `k = 2 / (period + 1)`. Seeded with the simple average of the first `period` inputs (summed
/// from `0.0` in input order, divided by `period`); afterwards `ema = (x - ema) * k + ema`.
///
/// **Warm-up:** the first value (the seed) is produced by the `period`-th update
/// (index `period - 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    period: u32,
    k: f64,
    count: u64,
    seed_sum: f64,
    value: f64,
}

impl Ema {
    /// `period >= 1`.
    pub fn new(period: u32) -> Result<Self, IndicatorError> {
        check_window("ema period", period, 1)?;
        Ok(Self { period, k: 2.0 / (period as f64 + 1.0), count: 0, seed_sum: 0.0, value: 0.0 })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.period as u64 - 1
    }

    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.count += 1;
        let p = self.period as u64;
        if self.count < p {
            self.seed_sum += x;
            None
        } else if self.count == p {
            self.seed_sum += x;
            self.value = self.seed_sum / self.period as f64;
            Some(self.value)
        } else {
            self.value = (x - self.value) * self.k + self.value;
            Some(self.value)
        }
    }

    /// Latest value, if warmed up.
    pub fn value(&self) -> Option<f64> {
        (self.count >= self.period as u64).then_some(self.value)
    }
}
