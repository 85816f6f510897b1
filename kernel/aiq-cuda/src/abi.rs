//! `#[repr(C)]` mirrors of cuda/aiq_abi.h (checked against the C++ compiler's layout in tests),
//! and the conversions from the kernel's types.

use std::sync::LazyLock;

use aiq_config::schema::FIELDS;
use aiq_config::{Section, StrategyConfig, Value};
use aiq_indicators::IndicatorSnapshot;

/// `AIQ_CORE_VERSION` of this crate's mirrors; must equal the header's.
pub const CORE_VERSION: u32 = 1;
/// `AIQ_CORE_ABI`: the version and the id of the derived parameter list ([`PARAMS_ID`]).
pub const CORE_ABI: u32 = CORE_VERSION ^ PARAMS_ID;

/// One bar's indicator snapshot (the fields the decisions read); see `AiqSnap` in aiq_abi.h.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AiqSnap {
    pub t: i64,
    pub close: f64,
    pub high: f64,
    pub low: f64,
    pub prev_close: f64,
    pub volume: f64,
    pub ema_fast: f64,
    pub ema_slow: f64,
    pub ema_macro: f64,
    pub adx: f64,
    pub adx_slope: f64,
    pub bb_width_ratio: f64,
    pub atr: f64,
    pub atr_slope: f64,
    pub avg_atr: f64,
    pub rsi: f64,
    pub stoch_rsi_k: f64,
    pub macd_hist: f64,
    pub prev_macd_hist: f64,
    pub prev2_macd_hist: f64,
    pub prev3_macd_hist: f64,
    pub vol_sma: f64,
    pub ema_slow_slope_pct: f64,
    pub ready: u32,
    pub vol_trend: u32,
}

impl AiqSnap {
    pub fn from_snapshot(s: &IndicatorSnapshot) -> Self {
        Self {
            t: s.t,
            close: s.close,
            high: s.high,
            low: s.low,
            prev_close: s.prev_close,
            volume: s.volume,
            ema_fast: s.ema_fast,
            ema_slow: s.ema_slow,
            ema_macro: s.ema_macro,
            adx: s.adx,
            adx_slope: s.adx_slope,
            bb_width_ratio: s.bb_width_ratio,
            atr: s.atr,
            atr_slope: s.atr_slope,
            avg_atr: s.avg_atr,
            rsi: s.rsi,
            stoch_rsi_k: s.stoch_rsi_k,
            macd_hist: s.macd_hist,
            prev_macd_hist: s.prev_macd_hist,
            prev2_macd_hist: s.prev2_macd_hist,
            prev3_macd_hist: s.prev3_macd_hist,
            vol_sma: s.vol_sma,
            ema_slow_slope_pct: s.ema_slow_slope_pct,
            ready: u32::from(s.ready),
            vol_trend: u32::from(s.vol_trend),
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/params_list.rs"));

/// Number of [`AiqParams`] fields.
pub const PARAM_COUNT: usize = PARAMS.len();

/// One strategy config, the fields the decision core reads (see `crate::params`): every field an
/// f64 (booleans 0/1, choices by variant index, whole numbers exactly), named and ordered as in
/// [`PARAMS`] and the X-macro list of `aiq_params.h`, both derived from the config keys by the build.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AiqParams(pub [f64; PARAM_COUNT]);

/// For each row of `aiq_config::schema::FIELDS`: its [`AiqParams`] field, if the core reads it.
static SLOTS: LazyLock<Vec<Option<usize>>> = LazyLock::new(|| {
    let slots: Vec<Option<usize>> =
        FIELDS.iter().map(|(path, _)| PARAMS.iter().position(|(_, key)| key == path)).collect();
    // The build derived PARAMS from these rows (params.rs): every field has its row.
    assert_eq!(slots.iter().flatten().count(), PARAM_COUNT, "params_list.rs and the schema disagree");
    slots
});

impl AiqParams {
    /// The decision fields of a merged config.
    pub fn from_config(c: &StrategyConfig) -> Self {
        let slots = &*SLOTS;
        let mut out = [0.0; PARAM_COUNT];
        let mut row = 0;
        c.visit(&mut |value| {
            if let Some(i) = slots[row] {
                out[i] = match value {
                    Value::Num(x) => x,
                    Value::Int(n) => f64::from(n),
                    Value::Bool(b) => f64::from(u8::from(b)),
                    Value::Choice(index) => index as f64,
                    Value::Text(_) | Value::List(_) => unreachable!("params::derive keeps text keys out"),
                };
            }
            row += 1;
        });
        Self(out)
    }

    /// The bit patterns of every field (a hashable identity for de-duplication).
    pub fn key(&self) -> Vec<u64> {
        self.0.iter().map(|x| x.to_bits()).collect()
    }
}

impl Default for AiqParams {
    fn default() -> Self {
        Self([0.0; PARAM_COUNT])
    }
}

/// One combo's result; see `AiqResult` in aiq_abi.h.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AiqResult {
    pub final_equity: f64,
    pub cash: f64,
    pub fees: f64,
    pub funding: f64,
    pub realized: f64,
    /// Sum of net PnL of the winning closed round trips.
    pub gross_profit: f64,
    /// Minus the sum of net PnL of the other closed round trips.
    pub gross_loss: f64,
    pub eq_last: f64,
    pub eq_peak: f64,
    pub max_dd_usd: f64,
    pub max_dd_frac: f64,
    pub eq_mean: f64,
    pub eq_m2: f64,
    pub eq_down_sq: f64,
    pub eq_n: u64,
    pub trades: u64,
    pub wins: u64,
    pub liquidations: u64,
    pub bars: u64,
    pub steps: u64,
    pub sub_ticks: u64,
    pub entries: u64,
    pub adds: u64,
    /// Fills and entry blocks (logged or not).
    pub events: u64,
    /// 0 ok; see [`status`].
    pub status: u32,
    pub open_positions: u32,
}

/// `AiqResult::status` values.
pub mod status {
    pub const OK: u32 = 0;
    /// A funding event with a non-finite rate (the CPU replay stops with an error there).
    pub const FUNDING: u32 = 1;
    /// A sub-bar price that is not a positive finite number.
    pub const SUB_PRICE: u32 = 2;
    /// The args were built for another ABI version.
    pub const ABI: u32 = 3;
}

/// One event of the host-only log: a fill (`kind` 0 open, 1 add, 2 reduce, 3 close, 4 reverse)
/// or a blocked entry candidate (`kind` 5); `reason` is the `ReasonCode` variant index.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AiqEvent {
    pub t: i64,
    pub quantity: f64,
    pub price: f64,
    pub fee: f64,
    pub pnl: f64,
    pub cash_after: f64,
    pub symbol: u32,
    pub kind: u32,
    pub side: u32,
    pub reason: u32,
}

/// `AiqEvent::kind` of a blocked entry.
pub const EVENT_BLOCK: u32 = 5;

/// Everything one launch reads; see `AiqSweepArgs` in aiq_abi.h. Pointers are host pointers for
/// the host backend and device pointers for the GPU one.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AiqSweepArgs {
    pub abi: u32,
    pub n_combos: u32,
    pub n_symbols: u32,
    pub n_times: u32,
    pub n_step_items: u32,
    pub n_funding: u32,
    pub n_sub_ticks: u32,
    pub n_sub_items: u32,
    pub n_snaps_unused: u32,
    pub btc_symbol: u32,
    pub events_cap: u32,
    pub result_base: u32,
    pub interval_ms: i64,
    pub initial_balance: f64,
    pub scratch_stride: u64,
    pub times: *const i64,
    pub step_start: *const u32,
    pub step_symbol: *const u32,
    pub fund_start: *const u32,
    pub fund_symbol: *const u32,
    pub fund_time: *const i64,
    pub fund_rate: *const f64,
    pub sub_times: *const i64,
    pub sub_start: *const u32,
    pub sub_symbol: *const u32,
    pub sub_entry_px: *const f64,
    pub sub_exit_px: *const f64,
    pub name_order: *const u32,
    pub snaps: *const AiqSnap,
    pub combo_snap_off: *const u64,
    pub params: *const AiqParams,
    pub combo_params: *const u32,
    pub results: *mut AiqResult,
    pub scratch: *mut u8,
    pub events: *mut AiqEvent,
    pub event_counts: *mut u32,
}
