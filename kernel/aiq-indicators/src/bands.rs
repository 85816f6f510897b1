//! Bollinger bands, bit-identical to TA-Lib `BBANDS(period, nbdev, nbdev, MA_Type.SMA)`.

use serde::{Deserialize, Serialize};

use crate::ma::Ring;
use crate::num::is_zero_or_neg;
use crate::{check_window, IndicatorError};

/// One Bollinger update's outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BollingerOutput {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

/// Bollinger bands: `middle = SMA(period)`, `upper/lower = middle ± nbdev * σ` with `σ` the
/// **population** standard deviation of the window.
///
/// Arithmetic (TA-Lib `BBANDS` with `TA_INT_stddev_using_precalc_ma`): running totals of the
/// values and of their squares (accumulated from `0.0` in input order, newest added before and
/// oldest removed after each output); `var = total_sq / period - middle²`; `σ = sqrt(var)`, or
/// `0` when `var` is below TA-Lib's epsilon. This is the textbook "E[x²] − E[x]²" form, which
/// loses precision for large prices; it is kept on purpose because that is what TA-Lib
/// computes, and parity with TA-Lib is the contract.
///
/// **Warm-up:** first value at index `period - 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bollinger {
    period: u32,
    nbdev: f64,
    ring: Ring,
    count: u64,
    total: f64,
    total_sq: f64,
}

impl Bollinger {
    /// `period >= 1`; `nbdev` must be finite.
    pub fn new(period: u32, nbdev: f64) -> Result<Self, IndicatorError> {
        check_window("bollinger period", period, 1)?;
        if !nbdev.is_finite() {
            return Err(IndicatorError::InvalidParameter { name: "nbdev", value: nbdev });
        }
        Ok(Self { period, nbdev, ring: Ring::new(period as usize), count: 0, total: 0.0, total_sq: 0.0 })
    }

    /// Index of the first bar with a value.
    pub fn warmup(&self) -> u64 {
        self.period as u64 - 1
    }

    #[inline]
    pub fn update(&mut self, x: f64) -> Option<BollingerOutput> {
        self.total += x;
        self.total_sq += x * x;
        self.ring.push(x);
        self.count += 1;
        if self.count < self.period as u64 {
            return None;
        }
        let n = self.period as f64;
        let oldest = self.ring.oldest();
        let middle = self.total / n;
        self.total -= oldest;
        let mut var = self.total_sq / n;
        self.total_sq -= oldest * oldest;
        var -= middle * middle;
        let sd = if is_zero_or_neg(var) { 0.0 } else { var.sqrt() };
        let dev = sd * self.nbdev;
        Some(BollingerOutput { upper: middle + dev, middle, lower: middle - dev })
    }
}
