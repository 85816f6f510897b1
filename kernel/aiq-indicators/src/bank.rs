//! [`IndicatorBank`]: every indicator Mei Alpha v1 needs, fed one candle at a time, producing a
//! typed [`IndicatorSnapshot`].

use aiq_config::{IndicatorsConfig, StrategyConfig};
use serde::{Deserialize, Serialize};

use crate::bands::Bollinger;
use crate::ma::{Ema, Ring, Sma};
use crate::macd::Macd;
use crate::stoch::StochRsiSmoothed;
use crate::wilder::{Adx, Atr, Rsi};
use crate::IndicatorError;

/// Indicator values after one candle.
///
/// **Missing values are `f64::NAN`** (a value still warming up, or the previous-bar value on
/// the first bar); every comparison with NaN is false, so a gate that reads a warming-up value
/// simply does not fire. [`ready`](Self::ready) is true once every field has a value. In JSON,
/// NaN is written as `null` (see [`crate::num::serde_f64`]).
///
/// Index `i` below is the 0-based bar index (`bar_count - 1`); warm-ups are for the bank's
/// windows (defaults in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSnapshot {
    /// Candle open time (ms since the epoch), as passed in.
    pub t: i64,
    #[serde(with = "crate::num::serde_f64")]
    pub open: f64,
    #[serde(with = "crate::num::serde_f64")]
    pub high: f64,
    #[serde(with = "crate::num::serde_f64")]
    pub low: f64,
    #[serde(with = "crate::num::serde_f64")]
    pub close: f64,
    #[serde(with = "crate::num::serde_f64")]
    pub volume: f64,
    /// EMA(close, ema_fast_window) [20]; from `i = window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub ema_fast: f64,
    /// EMA(close, ema_slow_window) [50]; from `i = window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub ema_slow: f64,
    /// EMA(close, ema_macro_window) [200]; from `i = window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub ema_macro: f64,
    /// ADX(adx_window) [14]; from `i = 2 * window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub adx: f64,
    /// +DI(adx_window); from `i = window`.
    #[serde(with = "crate::num::serde_f64")]
    pub adx_pos: f64,
    /// -DI(adx_window); from `i = window`.
    #[serde(with = "crate::num::serde_f64")]
    pub adx_neg: f64,
    /// `adx - previous bar's adx`; from `i = 2 * adx_window`.
    #[serde(with = "crate::num::serde_f64")]
    pub adx_slope: f64,
    /// Upper Bollinger band: SMA(close, bb_window) + bb_std * population σ [20, 2.0];
    /// from `i = bb_window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub bb_upper: f64,
    /// Middle Bollinger band (the SMA).
    #[serde(with = "crate::num::serde_f64")]
    pub bb_middle: f64,
    /// Lower Bollinger band.
    #[serde(with = "crate::num::serde_f64")]
    pub bb_lower: f64,
    /// `(bb_upper - bb_lower) / close`; from `i = bb_window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub bb_width: f64,
    /// SMA(bb_width, bb_width_avg_window) [30]; from `i = bb_window + bb_width_avg_window - 2`.
    #[serde(with = "crate::num::serde_f64")]
    pub bb_width_avg: f64,
    /// `bb_width / bb_width_avg` (defined as 1.0 when `bb_width_avg == 0`); same warm-up as
    /// `bb_width_avg`.
    #[serde(with = "crate::num::serde_f64")]
    pub bb_width_ratio: f64,
    /// ATR(atr_window) [14]; from `i = window`.
    #[serde(with = "crate::num::serde_f64")]
    pub atr: f64,
    /// `atr - previous bar's atr`; from `i = atr_window + 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub atr_slope: f64,
    /// SMA(atr, ave_avg_atr_window) [50]; from `i = atr_window + ave_avg_atr_window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub avg_atr: f64,
    /// RSI(rsi_window) [14]; from `i = window`.
    #[serde(with = "crate::num::serde_f64")]
    pub rsi: f64,
    /// Smoothed StochRSI K on 0..1: SMA(raw, smooth1) of the raw stochastic of
    /// RSI(stoch_rsi_window) over stoch_rsi_window bars [14/3/3]; from
    /// `i = 2 * window + smooth1 - 2`.
    #[serde(with = "crate::num::serde_f64")]
    pub stoch_rsi_k: f64,
    /// SMA(stoch_rsi_k, smooth2); from `i = 2 * window + smooth1 + smooth2 - 3`.
    #[serde(with = "crate::num::serde_f64")]
    pub stoch_rsi_d: f64,
    /// MACD line (TA-Lib alignment) [12/26/9]; from `i = slow + signal - 2`.
    #[serde(with = "crate::num::serde_f64")]
    pub macd: f64,
    /// MACD signal line; same warm-up as `macd`.
    #[serde(with = "crate::num::serde_f64")]
    pub macd_signal: f64,
    /// MACD histogram `macd - macd_signal`; same warm-up as `macd`.
    #[serde(with = "crate::num::serde_f64")]
    pub macd_hist: f64,
    /// Histogram one bar earlier.
    #[serde(with = "crate::num::serde_f64")]
    pub prev_macd_hist: f64,
    /// Histogram two bars earlier.
    #[serde(with = "crate::num::serde_f64")]
    pub prev2_macd_hist: f64,
    /// Histogram three bars earlier; from `i = slow + signal + 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub prev3_macd_hist: f64,
    /// SMA(volume, vol_sma_window) [20]; from `i = window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub vol_sma: f64,
    /// SMA(volume, vol_trend_window) [5]; from `i = window - 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub vol_trend_sma: f64,
    /// `vol_trend_sma > vol_sma`; `false` while either is warming up.
    pub vol_trend: bool,
    /// Previous bar's close; from `i = 1`.
    #[serde(with = "crate::num::serde_f64")]
    pub prev_close: f64,
    /// Previous bar's ema_fast; from `i = ema_fast_window`.
    #[serde(with = "crate::num::serde_f64")]
    pub prev_ema_fast: f64,
    /// Previous bar's ema_slow; from `i = ema_slow_window`.
    #[serde(with = "crate::num::serde_f64")]
    pub prev_ema_slow: f64,
    /// `(ema_slow[i] - ema_slow[i - w]) / ema_slow[i - w]` with `w = slow_drift_slope_window`
    /// [20]: the fractional change of the slow EMA over the last `w` bars (0.0006 = +0.06%).
    /// From `i = ema_slow_window - 1 + w`.
    #[serde(with = "crate::num::serde_f64")]
    pub ema_slow_slope_pct: f64,
    /// Number of candles consumed, including this one.
    pub bar_count: u64,
    /// Every field above has a value (`bar_count - 1 >= IndicatorBank::ready_index()`).
    pub ready: bool,
}

impl IndicatorSnapshot {
    /// A snapshot with every value NaN, `bar_count` 0 and `ready` false.
    pub fn empty() -> Self {
        let n = f64::NAN;
        Self {
            t: 0,
            open: n,
            high: n,
            low: n,
            close: n,
            volume: n,
            ema_fast: n,
            ema_slow: n,
            ema_macro: n,
            adx: n,
            adx_pos: n,
            adx_neg: n,
            adx_slope: n,
            bb_upper: n,
            bb_middle: n,
            bb_lower: n,
            bb_width: n,
            bb_width_avg: n,
            bb_width_ratio: n,
            atr: n,
            atr_slope: n,
            avg_atr: n,
            rsi: n,
            stoch_rsi_k: n,
            stoch_rsi_d: n,
            macd: n,
            macd_signal: n,
            macd_hist: n,
            prev_macd_hist: n,
            prev2_macd_hist: n,
            prev3_macd_hist: n,
            vol_sma: n,
            vol_trend_sma: n,
            vol_trend: false,
            prev_close: n,
            prev_ema_fast: n,
            prev_ema_slow: n,
            ema_slow_slope_pct: n,
            bar_count: 0,
            ready: false,
        }
    }

    /// Every field as `(name, value)`, in declaration order; `t` and `bar_count` as `f64`,
    /// booleans as 0.0 / 1.0. Used for columnar dumps (`bt_runtime.compute_indicators`).
    pub fn columns(&self) -> [(&'static str, f64); SNAPSHOT_COLUMNS.len()] {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        let v = [
            self.t as f64,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.ema_fast,
            self.ema_slow,
            self.ema_macro,
            self.adx,
            self.adx_pos,
            self.adx_neg,
            self.adx_slope,
            self.bb_upper,
            self.bb_middle,
            self.bb_lower,
            self.bb_width,
            self.bb_width_avg,
            self.bb_width_ratio,
            self.atr,
            self.atr_slope,
            self.avg_atr,
            self.rsi,
            self.stoch_rsi_k,
            self.stoch_rsi_d,
            self.macd,
            self.macd_signal,
            self.macd_hist,
            self.prev_macd_hist,
            self.prev2_macd_hist,
            self.prev3_macd_hist,
            self.vol_sma,
            self.vol_trend_sma,
            b(self.vol_trend),
            self.prev_close,
            self.prev_ema_fast,
            self.prev_ema_slow,
            self.ema_slow_slope_pct,
            self.bar_count as f64,
            b(self.ready),
        ];
        std::array::from_fn(|i| (SNAPSHOT_COLUMNS[i], v[i]))
    }
}

/// Field names of [`IndicatorSnapshot`], in declaration order (see
/// [`IndicatorSnapshot::columns`]).
pub const SNAPSHOT_COLUMNS: [&str; 40] = [
    "t",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "ema_fast",
    "ema_slow",
    "ema_macro",
    "adx",
    "adx_pos",
    "adx_neg",
    "adx_slope",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_width",
    "bb_width_avg",
    "bb_width_ratio",
    "atr",
    "atr_slope",
    "avg_atr",
    "rsi",
    "stoch_rsi_k",
    "stoch_rsi_d",
    "macd",
    "macd_signal",
    "macd_hist",
    "prev_macd_hist",
    "prev2_macd_hist",
    "prev3_macd_hist",
    "vol_sma",
    "vol_trend_sma",
    "vol_trend",
    "prev_close",
    "prev_ema_fast",
    "prev_ema_slow",
    "ema_slow_slope_pct",
    "bar_count",
    "ready",
];

/// One OHLCV bar. `t` is the open time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
}

/// Why the bank would reject a candle: a non-finite field, a price `<= 0` or a volume `< 0`.
pub(crate) fn candle_error(bar: &Candle) -> Option<IndicatorError> {
    for (field, value) in [("open", bar.o), ("high", bar.h), ("low", bar.l), ("close", bar.c)] {
        if !(value.is_finite() && value > 0.0) {
            return Some(IndicatorError::InvalidInput { field, value });
        }
    }
    if !(bar.v.is_finite() && bar.v >= 0.0) {
        return Some(IndicatorError::InvalidInput { field: "volume", value: bar.v });
    }
    None
}

/// Windows of an [`IndicatorBank`]: the `indicators` config section plus the two windows that
/// live under `thresholds.entry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankConfig {
    pub indicators: IndicatorsConfig,
    /// `thresholds.entry.ave_avg_atr_window` (default 50): window of `avg_atr`.
    pub ave_avg_atr_window: u32,
    /// `thresholds.entry.slow_drift_slope_window` (default 20): lag of `ema_slow_slope_pct`.
    pub slow_drift_slope_window: u32,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self::from_strategy(&StrategyConfig::default())
    }
}

impl BankConfig {
    pub fn from_strategy(cfg: &StrategyConfig) -> Self {
        Self {
            indicators: cfg.indicators.clone(),
            ave_avg_atr_window: cfg.thresholds.entry.ave_avg_atr_window,
            slow_drift_slope_window: cfg.thresholds.entry.slow_drift_slope_window,
        }
    }
}

/// Which indicator groups an [`IndicatorBank`] computes. A group left out holds NaN in every
/// snapshot; `t`, OHLCV, `prev_close`, `bar_count` and `ready` are always set (`ready` keeps the
/// full config's warm-up, so it does not depend on the selection). The replay and the sweep build
/// banks from what the configured strategy reads (`aiq_kernel::reads`); everything else (the
/// daemon, `dump-indicators`, the Python bindings) uses [`Outputs::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outputs(u16);

/// Declares every group once: its constant (`1 << bit`), its name in [`Outputs::GROUPS`] and
/// the [`SNAPSHOT_COLUMNS`] it computes ([`Outputs::of_column`]); [`Outputs::ALL`] is their union.
macro_rules! output_groups {
    ($($(#[$doc:meta])* $konst:ident = $bit:literal, $name:literal: $($column:literal)|+;)+) => {
        impl Outputs {
            $(
                #[doc = concat!($("`", $column, "` "),+)]
                $(#[$doc])*
                pub const $konst: Self = Self(1 << $bit);
            )+
            /// Every group.
            pub const ALL: Self = Self(0 $(| (1 << $bit))+);
            /// Every group with its name, in declaration order.
            pub const GROUPS: [(&'static str, Self); [$($bit),+].len()] = [$(($name, Self::$konst)),+];

            /// The group that computes a [`SNAPSHOT_COLUMNS`] column (`None`: always computed).
            pub fn of_column(column: &str) -> Option<Self> {
                Some(match column {
                    $($($column)|+ => Self::$konst,)+
                    _ => return None,
                })
            }
        }
    };
}

output_groups! {
    EMA_FAST = 0, "ema_fast": "ema_fast" | "prev_ema_fast";
    EMA_SLOW = 1, "ema_slow": "ema_slow" | "prev_ema_slow";
    EMA_MACRO = 2, "ema_macro": "ema_macro";
    /// (computes `ema_slow` too)
    EMA_SLOPE = 3, "ema_slope": "ema_slow_slope_pct";
    ADX = 4, "adx": "adx" | "adx_pos" | "adx_neg" | "adx_slope";
    BB = 5, "bb": "bb_upper" | "bb_middle" | "bb_lower" | "bb_width" | "bb_width_avg" | "bb_width_ratio";
    ATR = 6, "atr": "atr" | "atr_slope";
    /// (computes `atr` too)
    AVG_ATR = 7, "avg_atr": "avg_atr";
    RSI = 8, "rsi": "rsi";
    STOCH_RSI = 9, "stoch_rsi": "stoch_rsi_k" | "stoch_rsi_d";
    MACD = 10, "macd": "macd" | "macd_signal" | "macd_hist" | "prev_macd_hist" | "prev2_macd_hist" | "prev3_macd_hist";
    VOL = 11, "vol": "vol_sma" | "vol_trend_sma" | "vol_trend";
}

impl Outputs {
    /// No group (OHLCV, `prev_close`, `bar_count` and `ready` only).
    pub const NONE: Self = Self(0);

    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }

    /// Names of the groups in the selection.
    pub fn names(self) -> Vec<&'static str> {
        Self::GROUPS.iter().filter(|(_, g)| self.contains(*g)).map(|(n, _)| *n).collect()
    }
}

impl Default for Outputs {
    fn default() -> Self {
        Self::ALL
    }
}

impl std::ops::BitOr for Outputs {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for Outputs {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

/// All of Mei Alpha v1's indicators for one symbol. Feed closed candles in time order with
/// [`update`](Self::update) / [`try_update`](Self::try_update); each call is O(1) and
/// allocation-free. `Clone + Serialize + Deserialize`: a bank restored from JSON continues
/// bit-identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorBank {
    config: BankConfig,
    /// Groups computed (all unless built with [`IndicatorBank::from_config_reading`]); not
    /// written when all, so a full bank's JSON is unchanged.
    #[serde(default, skip_serializing_if = "Outputs::is_all")]
    outputs: Outputs,
    ready_index: u64,
    ema_fast: Ema,
    ema_slow: Ema,
    ema_macro: Ema,
    adx: Adx,
    bb: Bollinger,
    bb_width_avg: Sma,
    atr: Atr,
    avg_atr: Sma,
    rsi: Rsi,
    stoch: StochRsiSmoothed,
    macd: Macd,
    vol_sma: Sma,
    vol_trend_sma: Sma,
    /// Last `slow_drift_slope_window` values of ema_slow.
    ema_slow_hist: Ring,
    ema_slow_hist_len: u64,
    last: IndicatorSnapshot,
}

impl IndicatorBank {
    /// Build a bank from a config. Errors on a zero window or a non-finite `bb_std`.
    pub fn new(config: BankConfig) -> Result<Self, IndicatorError> {
        let i = &config.indicators;
        let w = config.slow_drift_slope_window;
        crate::check_window("slow_drift_slope_window", w, 1)?;
        let mut bank = Self {
            outputs: Outputs::ALL,
            ready_index: 0,
            ema_fast: Ema::new(i.ema_fast_window)?,
            ema_slow: Ema::new(i.ema_slow_window)?,
            ema_macro: Ema::new(i.ema_macro_window)?,
            adx: Adx::new(i.adx_window)?,
            bb: Bollinger::new(i.bb_window, i.bb_std)?,
            bb_width_avg: Sma::new(i.bb_width_avg_window)?,
            atr: Atr::new(i.atr_window)?,
            avg_atr: Sma::new(config.ave_avg_atr_window)?,
            rsi: Rsi::new(i.rsi_window)?,
            stoch: StochRsiSmoothed::new(i.stoch_rsi_window, i.stoch_rsi_smooth1, i.stoch_rsi_smooth2)?,
            macd: Macd::new(i.macd_fast, i.macd_slow, i.macd_signal)?,
            vol_sma: Sma::new(i.vol_sma_window)?,
            vol_trend_sma: Sma::new(i.vol_trend_window)?,
            ema_slow_hist: Ring::new(w as usize),
            ema_slow_hist_len: 0,
            last: IndicatorSnapshot::empty(),
            config,
        };
        bank.ready_index = bank.compute_ready_index();
        Ok(bank)
    }

    /// Build a bank from a full strategy config. Infallible: a window of 0 (which
    /// `aiq_config::validate` rejects) is treated as 1, and a non-finite `bb_std` as 2.0.
    pub fn from_config(cfg: &StrategyConfig) -> Self {
        let mut c = BankConfig::from_strategy(cfg);
        let i = &mut c.indicators;
        for w in [
            &mut i.ema_slow_window,
            &mut i.ema_fast_window,
            &mut i.ema_macro_window,
            &mut i.adx_window,
            &mut i.bb_window,
            &mut i.bb_width_avg_window,
            &mut i.atr_window,
            &mut i.rsi_window,
            &mut i.vol_sma_window,
            &mut i.vol_trend_window,
            &mut i.stoch_rsi_window,
            &mut i.stoch_rsi_smooth1,
            &mut i.stoch_rsi_smooth2,
            &mut i.macd_fast,
            &mut i.macd_slow,
            &mut i.macd_signal,
            &mut c.ave_avg_atr_window,
            &mut c.slow_drift_slope_window,
        ] {
            *w = (*w).max(1);
        }
        if !c.indicators.bb_std.is_finite() {
            c.indicators.bb_std = 2.0;
        }
        Self::new(c).expect("windows clamped to >= 1 and bb_std finite")
    }

    /// [`from_config`](Self::from_config) computing only the groups in `outputs` (every other
    /// field of its snapshots is NaN; `ready` is the full bank's). The values of the groups it
    /// computes are bit-identical to the full bank's.
    pub fn from_config_reading(cfg: &StrategyConfig, outputs: Outputs) -> Self {
        let mut bank = Self::from_config(cfg);
        let mut o = outputs;
        if o.contains(Outputs::EMA_SLOPE) {
            o |= Outputs::EMA_SLOW;
        }
        if o.contains(Outputs::AVG_ATR) {
            o |= Outputs::ATR;
        }
        bank.outputs = o;
        bank
    }

    /// The groups this bank computes.
    pub fn outputs(&self) -> Outputs {
        self.outputs
    }

    pub fn config(&self) -> &BankConfig {
        &self.config
    }

    /// 0-based index of the first bar whose snapshot is `ready` (199 with the defaults,
    /// set by `ema_macro_window`).
    pub fn ready_index(&self) -> u64 {
        self.ready_index
    }

    /// Number of candles consumed so far.
    pub fn bar_count(&self) -> u64 {
        self.last.bar_count
    }

    /// Snapshot of the last candle ([`IndicatorSnapshot::empty`] before the first).
    pub fn last(&self) -> &IndicatorSnapshot {
        &self.last
    }

    fn compute_ready_index(&self) -> u64 {
        let i = &self.config.indicators;
        let w = |x: u32| x as u64;
        let bb_avg = w(i.bb_window) + w(i.bb_width_avg_window) - 2;
        let macd = self.macd.warmup();
        [
            w(i.ema_fast_window),                                              // prev_ema_fast
            w(i.ema_slow_window),                                              // prev_ema_slow
            w(i.ema_macro_window) - 1,                                         // ema_macro
            2 * w(i.adx_window),                                               // adx_slope
            bb_avg,                                                            // bb_width_avg, bb_width_ratio
            w(i.atr_window) + 1,                                               // atr_slope
            w(i.atr_window) + w(self.config.ave_avg_atr_window) - 1,           // avg_atr
            w(i.rsi_window),                                                   // rsi
            self.stoch.d_warmup(),                                             // stoch_rsi_d
            macd + 3,                                                          // prev3_macd_hist
            w(i.vol_sma_window) - 1,                                           // vol_sma
            w(i.vol_trend_window) - 1,                                         // vol_trend_sma
            w(i.ema_slow_window) - 1 + w(self.config.slow_drift_slope_window), // ema_slow_slope_pct
            1,                                                                 // prev_close
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Validate and consume one closed candle. Rejects (without changing any state) a
    /// non-finite field, a price `<= 0` or a volume `< 0`.
    pub fn try_update(&mut self, bar: Candle) -> Result<IndicatorSnapshot, IndicatorError> {
        if let Some(e) = candle_error(&bar) {
            return Err(e);
        }
        Ok(self.update_unchecked(bar))
    }

    /// Consume one closed candle and return its snapshot.
    ///
    /// Invalid input (see [`try_update`](Self::try_update)) is ignored: no state changes and
    /// the previous snapshot is returned. Callers that need to know should use `try_update`
    /// (the kernel validates candles before calling this).
    #[inline]
    pub fn update(&mut self, bar: Candle) -> IndicatorSnapshot {
        match self.try_update(bar) {
            Ok(s) => s,
            Err(_) => self.last,
        }
    }

    #[inline]
    fn update_unchecked(&mut self, bar: Candle) -> IndicatorSnapshot {
        let Candle { t, o: open, h: high, l: low, c: close, v: volume } = bar;
        const NAN: f64 = f64::NAN;
        let last = &self.last;
        let mut s = IndicatorSnapshot::empty();
        s.t = t;
        s.open = open;
        s.high = high;
        s.low = low;
        s.close = close;
        s.volume = volume;
        s.bar_count = last.bar_count + 1;

        let o = self.outputs;
        if o.contains(Outputs::EMA_FAST) {
            s.ema_fast = self.ema_fast.update(close).unwrap_or(NAN);
        }
        if o.contains(Outputs::EMA_SLOW) {
            s.ema_slow = self.ema_slow.update(close).unwrap_or(NAN);
        }
        if o.contains(Outputs::EMA_MACRO) {
            s.ema_macro = self.ema_macro.update(close).unwrap_or(NAN);
        }

        if o.contains(Outputs::ADX) {
            if let Some(a) = self.adx.update(high, low, close) {
                s.adx_pos = a.plus_di;
                s.adx_neg = a.minus_di;
                s.adx = a.adx.unwrap_or(NAN);
            }
            s.adx_slope = s.adx - last.adx;
        }

        if o.contains(Outputs::BB) {
            if let Some(b) = self.bb.update(close) {
                s.bb_upper = b.upper;
                s.bb_middle = b.middle;
                s.bb_lower = b.lower;
                s.bb_width = (b.upper - b.lower) / close;
                if let Some(avg) = self.bb_width_avg.update(s.bb_width) {
                    s.bb_width_avg = avg;
                    s.bb_width_ratio = if avg == 0.0 { 1.0 } else { s.bb_width / avg };
                }
            }
        }

        if o.contains(Outputs::ATR) {
            if let Some(atr) = self.atr.update(high, low, close) {
                s.atr = atr;
                if o.contains(Outputs::AVG_ATR) {
                    s.avg_atr = self.avg_atr.update(atr).unwrap_or(NAN);
                }
            }
            s.atr_slope = s.atr - last.atr;
        }

        if o.contains(Outputs::RSI) {
            s.rsi = self.rsi.update(close).unwrap_or(NAN);
        }
        if o.contains(Outputs::STOCH_RSI) {
            let st = self.stoch.update(close);
            s.stoch_rsi_k = st.k.unwrap_or(NAN);
            s.stoch_rsi_d = st.d.unwrap_or(NAN);
        }

        if o.contains(Outputs::MACD) {
            if let Some(m) = self.macd.update(close) {
                s.macd = m.macd;
                s.macd_signal = m.signal;
                s.macd_hist = m.hist;
            }
            s.prev_macd_hist = last.macd_hist;
            s.prev2_macd_hist = last.prev_macd_hist;
            s.prev3_macd_hist = last.prev2_macd_hist;
        }

        if o.contains(Outputs::VOL) {
            s.vol_sma = self.vol_sma.update(volume).unwrap_or(NAN);
            s.vol_trend_sma = self.vol_trend_sma.update(volume).unwrap_or(NAN);
            s.vol_trend = s.vol_trend_sma > s.vol_sma;
        }

        s.prev_close = last.close;
        s.prev_ema_fast = last.ema_fast;
        s.prev_ema_slow = last.ema_slow;

        if o.contains(Outputs::EMA_SLOPE) && !s.ema_slow.is_nan() {
            if self.ema_slow_hist_len >= self.config.slow_drift_slope_window as u64 {
                let old = self.ema_slow_hist.oldest();
                s.ema_slow_slope_pct = (s.ema_slow - old) / old;
            }
            self.ema_slow_hist.push(s.ema_slow);
            self.ema_slow_hist_len += 1;
        }

        s.ready = s.bar_count > self.ready_index;
        self.last = s;
        s
    }
}
