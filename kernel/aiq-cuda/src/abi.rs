//! `#[repr(C)]` mirrors of cuda/aiq_abi.h (checked against the C++ compiler's layout in tests),
//! and the conversions from the kernel's types.

use aiq_config::{Confidence, MacdMode, StrategyConfig, StrategyName};
use aiq_indicators::IndicatorSnapshot;

/// `AIQ_CORE_ABI` of this crate's mirrors; must equal the header's.
pub const CORE_ABI: u32 = 1;

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

/// Declares `AiqParams` (every field f64, in the header's `AIQ_PARAM_FIELDS` order) and the list
/// of its field names (the layout test compares it with the header's).
macro_rules! params {
    ($($f:ident),* $(,)?) => {
        /// One strategy config, decision fields only (booleans 0/1, enums by variant index).
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct AiqParams {
            $(pub $f: f64,)*
        }
        /// Field names of [`AiqParams`] in layout order.
        pub const PARAM_FIELDS: &[&str] = &[$(stringify!($f)),*];
    };
}

params!(
    strategy,
    allocation_pct,
    leverage,
    leverage_low,
    leverage_medium,
    leverage_high,
    slippage_bps,
    min_notional_usd,
    bump_to_min_notional,
    max_total_margin_pct,
    enable_dynamic_sizing,
    confidence_mult_high,
    confidence_mult_medium,
    confidence_mult_low,
    adx_sizing_min_mult,
    adx_sizing_full_adx,
    vol_baseline_pct,
    vol_scalar_min,
    vol_scalar_max,
    size_multiplier,
    taker_fee_bps,
    maintenance_margin_pct,
    enable_funding,
    entry_min_confidence,
    add_min_confidence,
    enable_pyramiding,
    max_adds_per_symbol,
    add_fraction_of_base_margin,
    add_cooldown_minutes,
    add_min_profit_atr,
    allow_reverse,
    sl_atr_mult,
    tp_atr_mult,
    enable_partial_tp,
    tp_partial_pct,
    tp_partial_atr_mult,
    tp_partial_min_notional_usd,
    trailing_start_atr,
    trailing_distance_atr,
    trailing_start_atr_low_conf,
    trailing_distance_atr_low_conf,
    enable_vol_buffered_trailing,
    enable_breakeven_stop,
    breakeven_start_atr,
    breakeven_buffer_atr,
    enable_rsi_overextension_exit,
    rsi_exit_profit_atr_switch,
    rsi_exit_ub_lo_profit,
    rsi_exit_lb_lo_profit,
    rsi_exit_ub_hi_profit,
    rsi_exit_lb_hi_profit,
    rsi_exit_ub_lo_profit_low_conf,
    rsi_exit_lb_lo_profit_low_conf,
    rsi_exit_ub_hi_profit_low_conf,
    rsi_exit_lb_hi_profit_low_conf,
    smart_exit_adx_exhaustion_lt,
    smart_exit_adx_exhaustion_lt_low_conf,
    tsme_min_profit_atr,
    tsme_require_adx_slope_negative,
    block_exits_on_extreme_dev,
    glitch_price_dev_pct,
    glitch_atr_mult,
    enable_reef_filter,
    reef_long_rsi_block_gt,
    reef_short_rsi_block_lt,
    reef_adx_threshold,
    reef_long_rsi_extreme_gt,
    reef_short_rsi_extreme_lt,
    enable_ssf_filter,
    reentry_cooldown_min_mins,
    reentry_cooldown_max_mins,
    min_atr_pct,
    reverse_entry_signal,
    max_open_positions,
    entry_cooldown_s,
    exit_cooldown_s,
    max_entry_orders_per_loop,
    enable_ranging_filter,
    enable_anomaly_filter,
    enable_extension_filter,
    require_adx_rising,
    adx_rising_saturation,
    require_volume_confirmation,
    vol_confirm_include_prev,
    use_stoch_rsi_filter,
    require_btc_alignment,
    require_macro_alignment,
    min_adx,
    high_conf_volume_mult,
    btc_adx_override,
    max_dist_ema_fast,
    ave_enabled,
    ave_atr_ratio_gt,
    ave_adx_mult,
    macd_hist_entry_mode,
    enable_pullback_entries,
    pullback_confidence,
    pullback_min_adx,
    pullback_rsi_long_min,
    pullback_rsi_short_max,
    pullback_require_macd_sign,
    enable_slow_drift_entries,
    slow_drift_min_slope_pct,
    slow_drift_min_adx,
    slow_drift_rsi_long_min,
    slow_drift_rsi_short_max,
    slow_drift_require_macd_sign,
    ranging_min_signals,
    ranging_adx_below,
    ranging_bb_width_ratio_below,
    ranging_rsi_low,
    ranging_rsi_high,
    anomaly_price_change_pct_gt,
    anomaly_ema_fast_dev_pct_gt,
    adx_strong_gt,
    adx_weak_lt,
    tp_mult_strong,
    tp_mult_weak,
    rsi_long_strong,
    rsi_long_weak,
    rsi_short_strong,
    rsi_short_weak,
    stoch_block_long_if_k_gt,
    stoch_block_short_if_k_lt,
    enable_regime_filter,
    breadth_block_short_above,
    breadth_block_long_below,
    enable_auto_reverse,
    auto_reverse_breadth_low,
    auto_reverse_breadth_high,
    enable_regime_gate,
    regime_gate_breadth_low,
    regime_gate_breadth_high,
    regime_gate_btc_adx_min,
    regime_gate_btc_atr_pct_min,
    regime_gate_fail_open,
);

fn b(x: bool) -> f64 {
    f64::from(u8::from(x))
}

fn conf(c: Confidence) -> f64 {
    f64::from(c.rank())
}

impl AiqParams {
    /// The decision fields of a merged config.
    pub fn from_config(c: &StrategyConfig) -> Self {
        let t = &c.trade;
        let f = &c.filters;
        let e = &c.thresholds.entry;
        let r = &c.thresholds.ranging;
        let a = &c.thresholds.anomaly;
        let tp = &c.thresholds.tp_and_momentum;
        let sr = &c.thresholds.stoch_rsi;
        let m = &c.market_regime;
        Self {
            strategy: match c.strategy {
                StrategyName::MeiAlphaV1 => 0.0,
                StrategyName::EmaCross => 1.0,
            },
            allocation_pct: t.allocation_pct,
            leverage: t.leverage,
            leverage_low: t.leverage_low,
            leverage_medium: t.leverage_medium,
            leverage_high: t.leverage_high,
            slippage_bps: t.slippage_bps,
            min_notional_usd: t.min_notional_usd,
            bump_to_min_notional: b(t.bump_to_min_notional),
            max_total_margin_pct: t.max_total_margin_pct,
            enable_dynamic_sizing: b(t.enable_dynamic_sizing),
            confidence_mult_high: t.confidence_mult_high,
            confidence_mult_medium: t.confidence_mult_medium,
            confidence_mult_low: t.confidence_mult_low,
            adx_sizing_min_mult: t.adx_sizing_min_mult,
            adx_sizing_full_adx: t.adx_sizing_full_adx,
            vol_baseline_pct: t.vol_baseline_pct,
            vol_scalar_min: t.vol_scalar_min,
            vol_scalar_max: t.vol_scalar_max,
            size_multiplier: t.size_multiplier,
            taker_fee_bps: t.taker_fee_bps,
            maintenance_margin_pct: t.maintenance_margin_pct,
            enable_funding: b(t.enable_funding),
            entry_min_confidence: conf(t.entry_min_confidence),
            add_min_confidence: conf(t.add_min_confidence),
            enable_pyramiding: b(t.enable_pyramiding),
            max_adds_per_symbol: f64::from(t.max_adds_per_symbol),
            add_fraction_of_base_margin: t.add_fraction_of_base_margin,
            add_cooldown_minutes: t.add_cooldown_minutes,
            add_min_profit_atr: t.add_min_profit_atr,
            allow_reverse: b(t.allow_reverse),
            sl_atr_mult: t.sl_atr_mult,
            tp_atr_mult: t.tp_atr_mult,
            enable_partial_tp: b(t.enable_partial_tp),
            tp_partial_pct: t.tp_partial_pct,
            tp_partial_atr_mult: t.tp_partial_atr_mult,
            tp_partial_min_notional_usd: t.tp_partial_min_notional_usd,
            trailing_start_atr: t.trailing_start_atr,
            trailing_distance_atr: t.trailing_distance_atr,
            trailing_start_atr_low_conf: t.trailing_start_atr_low_conf,
            trailing_distance_atr_low_conf: t.trailing_distance_atr_low_conf,
            enable_vol_buffered_trailing: b(t.enable_vol_buffered_trailing),
            enable_breakeven_stop: b(t.enable_breakeven_stop),
            breakeven_start_atr: t.breakeven_start_atr,
            breakeven_buffer_atr: t.breakeven_buffer_atr,
            enable_rsi_overextension_exit: b(t.enable_rsi_overextension_exit),
            rsi_exit_profit_atr_switch: t.rsi_exit_profit_atr_switch,
            rsi_exit_ub_lo_profit: t.rsi_exit_ub_lo_profit,
            rsi_exit_lb_lo_profit: t.rsi_exit_lb_lo_profit,
            rsi_exit_ub_hi_profit: t.rsi_exit_ub_hi_profit,
            rsi_exit_lb_hi_profit: t.rsi_exit_lb_hi_profit,
            rsi_exit_ub_lo_profit_low_conf: t.rsi_exit_ub_lo_profit_low_conf,
            rsi_exit_lb_lo_profit_low_conf: t.rsi_exit_lb_lo_profit_low_conf,
            rsi_exit_ub_hi_profit_low_conf: t.rsi_exit_ub_hi_profit_low_conf,
            rsi_exit_lb_hi_profit_low_conf: t.rsi_exit_lb_hi_profit_low_conf,
            smart_exit_adx_exhaustion_lt: t.smart_exit_adx_exhaustion_lt,
            smart_exit_adx_exhaustion_lt_low_conf: t.smart_exit_adx_exhaustion_lt_low_conf,
            tsme_min_profit_atr: t.tsme_min_profit_atr,
            tsme_require_adx_slope_negative: b(t.tsme_require_adx_slope_negative),
            block_exits_on_extreme_dev: b(t.block_exits_on_extreme_dev),
            glitch_price_dev_pct: t.glitch_price_dev_pct,
            glitch_atr_mult: t.glitch_atr_mult,
            enable_reef_filter: b(t.enable_reef_filter),
            reef_long_rsi_block_gt: t.reef_long_rsi_block_gt,
            reef_short_rsi_block_lt: t.reef_short_rsi_block_lt,
            reef_adx_threshold: t.reef_adx_threshold,
            reef_long_rsi_extreme_gt: t.reef_long_rsi_extreme_gt,
            reef_short_rsi_extreme_lt: t.reef_short_rsi_extreme_lt,
            enable_ssf_filter: b(t.enable_ssf_filter),
            reentry_cooldown_min_mins: t.reentry_cooldown_min_mins,
            reentry_cooldown_max_mins: t.reentry_cooldown_max_mins,
            min_atr_pct: t.min_atr_pct,
            reverse_entry_signal: b(t.reverse_entry_signal),
            max_open_positions: f64::from(t.max_open_positions),
            entry_cooldown_s: t.entry_cooldown_s,
            exit_cooldown_s: t.exit_cooldown_s,
            max_entry_orders_per_loop: f64::from(t.max_entry_orders_per_loop),
            enable_ranging_filter: b(f.enable_ranging_filter),
            enable_anomaly_filter: b(f.enable_anomaly_filter),
            enable_extension_filter: b(f.enable_extension_filter),
            require_adx_rising: b(f.require_adx_rising),
            adx_rising_saturation: f.adx_rising_saturation,
            require_volume_confirmation: b(f.require_volume_confirmation),
            vol_confirm_include_prev: b(f.vol_confirm_include_prev),
            use_stoch_rsi_filter: b(f.use_stoch_rsi_filter),
            require_btc_alignment: b(f.require_btc_alignment),
            require_macro_alignment: b(f.require_macro_alignment),
            min_adx: e.min_adx,
            high_conf_volume_mult: e.high_conf_volume_mult,
            btc_adx_override: e.btc_adx_override,
            max_dist_ema_fast: e.max_dist_ema_fast,
            ave_enabled: b(e.ave_enabled),
            ave_atr_ratio_gt: e.ave_atr_ratio_gt,
            ave_adx_mult: e.ave_adx_mult,
            macd_hist_entry_mode: match e.macd_hist_entry_mode {
                MacdMode::Accel => 0.0,
                MacdMode::Sign => 1.0,
                MacdMode::None => 2.0,
            },
            enable_pullback_entries: b(e.enable_pullback_entries),
            pullback_confidence: conf(e.pullback_confidence),
            pullback_min_adx: e.pullback_min_adx,
            pullback_rsi_long_min: e.pullback_rsi_long_min,
            pullback_rsi_short_max: e.pullback_rsi_short_max,
            pullback_require_macd_sign: b(e.pullback_require_macd_sign),
            enable_slow_drift_entries: b(e.enable_slow_drift_entries),
            slow_drift_min_slope_pct: e.slow_drift_min_slope_pct,
            slow_drift_min_adx: e.slow_drift_min_adx,
            slow_drift_rsi_long_min: e.slow_drift_rsi_long_min,
            slow_drift_rsi_short_max: e.slow_drift_rsi_short_max,
            slow_drift_require_macd_sign: b(e.slow_drift_require_macd_sign),
            ranging_min_signals: f64::from(r.min_signals),
            ranging_adx_below: r.adx_below,
            ranging_bb_width_ratio_below: r.bb_width_ratio_below,
            ranging_rsi_low: r.rsi_low,
            ranging_rsi_high: r.rsi_high,
            anomaly_price_change_pct_gt: a.price_change_pct_gt,
            anomaly_ema_fast_dev_pct_gt: a.ema_fast_dev_pct_gt,
            adx_strong_gt: tp.adx_strong_gt,
            adx_weak_lt: tp.adx_weak_lt,
            tp_mult_strong: tp.tp_mult_strong,
            tp_mult_weak: tp.tp_mult_weak,
            rsi_long_strong: tp.rsi_long_strong,
            rsi_long_weak: tp.rsi_long_weak,
            rsi_short_strong: tp.rsi_short_strong,
            rsi_short_weak: tp.rsi_short_weak,
            stoch_block_long_if_k_gt: sr.block_long_if_k_gt,
            stoch_block_short_if_k_lt: sr.block_short_if_k_lt,
            enable_regime_filter: b(m.enable_regime_filter),
            breadth_block_short_above: m.breadth_block_short_above,
            breadth_block_long_below: m.breadth_block_long_below,
            enable_auto_reverse: b(m.enable_auto_reverse),
            auto_reverse_breadth_low: m.auto_reverse_breadth_low,
            auto_reverse_breadth_high: m.auto_reverse_breadth_high,
            enable_regime_gate: b(m.enable_regime_gate),
            regime_gate_breadth_low: m.regime_gate_breadth_low,
            regime_gate_breadth_high: m.regime_gate_breadth_high,
            regime_gate_btc_adx_min: m.regime_gate_btc_adx_min,
            regime_gate_btc_atr_pct_min: m.regime_gate_btc_atr_pct_min,
            regime_gate_fail_open: b(m.regime_gate_fail_open),
        }
    }

    /// The bit patterns of every field (a hashable identity for de-duplication).
    pub fn key(&self) -> Vec<u64> {
        let n = PARAM_FIELDS.len();
        // SAFETY: AiqParams is #[repr(C)] with only f64 fields (checked by the layout test).
        let s = unsafe { std::slice::from_raw_parts(self as *const Self as *const f64, n) };
        s.iter().map(|x| x.to_bits()).collect()
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
