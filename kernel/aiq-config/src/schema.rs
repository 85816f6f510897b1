//! The schema of a merged config: the type and range of every key, in declaration order, and
//! the rules between keys. The one copy: the kernel's `validate`, the layered loader
//! (`layered::resolve`, used by the daemon through `bt_runtime` and by the backtester) and the
//! layout check all read this table. Field names match the structs in `lib.rs` (a test holds
//! them together).

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Incl(f64),
    Excl(f64),
}

use Bound::{Excl, Incl};

/// What a leaf key holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A finite number (an integer is accepted).
    Float {
        lo: Option<Bound>,
        hi: Option<Bound>,
    },
    /// A whole number (never a float, never a boolean).
    Int {
        lo: Option<Bound>,
        hi: Option<Bound>,
    },
    Bool,
    Choice(&'static [&'static str]),
    /// An interval name from `intervals.txt`; `allow_empty`: "" means "same as engine.interval".
    Interval {
        allow_empty: bool,
    },
    StrList,
}

const fn float(lo: Option<Bound>, hi: Option<Bound>) -> Kind {
    Kind::Float { lo, hi }
}
const fn int(lo: Option<Bound>, hi: Option<Bound>) -> Kind {
    Kind::Int { lo, hi }
}

const U32_MAX: f64 = 4_294_967_295.0;
const NUM: Kind = float(None, None);
const POSITIVE: Kind = float(Some(Excl(0.0)), None);
const NON_NEGATIVE: Kind = float(Some(Incl(0.0)), None);
const FRACTION: Kind = float(Some(Incl(0.0)), Some(Incl(1.0)));
const LEVERAGE: Kind = float(Some(Incl(1.0)), Some(Incl(50.0)));
/// An RSI or ADX threshold: both indicators live on 0..100, so a level outside never fires (or
/// always does) without saying so.
const LEVEL: Kind = float(Some(Incl(0.0)), Some(Incl(100.0)));
const U32: Kind = int(Some(Incl(0.0)), Some(Incl(U32_MAX)));
/// A window in bars.
const WINDOW: Kind = int(Some(Incl(1.0)), Some(Incl(5000.0)));
const BOOL: Kind = Kind::Bool;
const CONFIDENCE: Kind = Kind::Choice(&["low", "medium", "high"]);
const MACD_MODE: Kind = Kind::Choice(&["accel", "sign", "none"]);
const STRATEGY_NAME: Kind = Kind::Choice(&["mei_alpha_v1", "ema_cross"]);
const INTERVAL: Kind = Kind::Interval { allow_empty: false };
const OPT_INTERVAL: Kind = Kind::Interval { allow_empty: true };
const STR_LIST: Kind = Kind::StrList;

/// Every leaf key (dotted path) and its kind, in declaration order: problems are reported in
/// this order.
pub static FIELDS: &[(&str, Kind)] = &[
    ("strategy", STRATEGY_NAME),
    ("trade.allocation_pct", float(Some(Excl(0.0)), Some(Incl(1.0)))),
    ("trade.leverage", LEVERAGE),
    ("trade.leverage_low", LEVERAGE),
    ("trade.leverage_medium", LEVERAGE),
    ("trade.leverage_high", LEVERAGE),
    ("trade.slippage_bps", NON_NEGATIVE),
    ("trade.use_bbo_for_fills", BOOL),
    ("trade.min_notional_usd", NON_NEGATIVE),
    ("trade.bump_to_min_notional", BOOL),
    ("trade.max_total_margin_pct", FRACTION),
    ("trade.enable_dynamic_sizing", BOOL),
    ("trade.confidence_mult_high", FRACTION),
    ("trade.confidence_mult_medium", FRACTION),
    ("trade.confidence_mult_low", FRACTION),
    ("trade.adx_sizing_min_mult", FRACTION),
    ("trade.adx_sizing_full_adx", POSITIVE),
    ("trade.vol_baseline_pct", POSITIVE),
    ("trade.vol_scalar_min", FRACTION),
    ("trade.vol_scalar_max", FRACTION),
    ("trade.size_multiplier", NON_NEGATIVE),
    ("trade.maker_fee_bps", NON_NEGATIVE),
    ("trade.taker_fee_bps", NON_NEGATIVE),
    ("trade.maintenance_margin_pct", FRACTION),
    ("trade.enable_funding", BOOL),
    ("trade.entry_min_confidence", CONFIDENCE),
    ("trade.add_min_confidence", CONFIDENCE),
    ("trade.enable_pyramiding", BOOL),
    ("trade.max_adds_per_symbol", U32),
    ("trade.add_fraction_of_base_margin", FRACTION),
    ("trade.add_cooldown_minutes", NON_NEGATIVE),
    ("trade.add_min_profit_atr", NON_NEGATIVE),
    ("trade.allow_reverse", BOOL),
    ("trade.sl_atr_mult", POSITIVE),
    ("trade.tp_atr_mult", POSITIVE),
    ("trade.enable_partial_tp", BOOL),
    ("trade.tp_partial_pct", FRACTION),
    ("trade.tp_partial_atr_mult", NON_NEGATIVE),
    ("trade.tp_partial_min_notional_usd", NON_NEGATIVE),
    ("trade.trailing_start_atr", NON_NEGATIVE),
    ("trade.trailing_distance_atr", POSITIVE),
    ("trade.trailing_start_atr_low_conf", NON_NEGATIVE),
    ("trade.trailing_distance_atr_low_conf", NON_NEGATIVE),
    ("trade.enable_vol_buffered_trailing", BOOL),
    ("trade.enable_breakeven_stop", BOOL),
    ("trade.breakeven_start_atr", NON_NEGATIVE),
    ("trade.breakeven_buffer_atr", NON_NEGATIVE),
    ("trade.enable_rsi_overextension_exit", BOOL),
    ("trade.rsi_exit_profit_atr_switch", NUM),
    ("trade.rsi_exit_ub_lo_profit", LEVEL),
    ("trade.rsi_exit_lb_lo_profit", LEVEL),
    ("trade.rsi_exit_ub_hi_profit", LEVEL),
    ("trade.rsi_exit_lb_hi_profit", LEVEL),
    ("trade.rsi_exit_ub_lo_profit_low_conf", LEVEL),
    ("trade.rsi_exit_lb_lo_profit_low_conf", LEVEL),
    ("trade.rsi_exit_ub_hi_profit_low_conf", LEVEL),
    ("trade.rsi_exit_lb_hi_profit_low_conf", LEVEL),
    ("trade.smart_exit_adx_exhaustion_lt", LEVEL),
    ("trade.smart_exit_adx_exhaustion_lt_low_conf", LEVEL),
    ("trade.tsme_min_profit_atr", NUM),
    ("trade.tsme_require_adx_slope_negative", BOOL),
    ("trade.block_exits_on_extreme_dev", BOOL),
    ("trade.glitch_price_dev_pct", NUM),
    ("trade.glitch_atr_mult", NUM),
    ("trade.enable_reef_filter", BOOL),
    ("trade.reef_long_rsi_block_gt", LEVEL),
    ("trade.reef_short_rsi_block_lt", LEVEL),
    ("trade.reef_adx_threshold", LEVEL),
    ("trade.reef_long_rsi_extreme_gt", LEVEL),
    ("trade.reef_short_rsi_extreme_lt", LEVEL),
    ("trade.enable_ssf_filter", BOOL),
    ("trade.reentry_cooldown_minutes", NON_NEGATIVE),
    ("trade.reentry_cooldown_min_mins", NON_NEGATIVE),
    ("trade.reentry_cooldown_max_mins", NON_NEGATIVE),
    ("trade.min_atr_pct", NON_NEGATIVE),
    ("trade.reverse_entry_signal", BOOL),
    ("trade.max_open_positions", int(Some(Incl(1.0)), Some(Incl(U32_MAX)))),
    ("trade.entry_cooldown_s", NON_NEGATIVE),
    ("trade.exit_cooldown_s", NON_NEGATIVE),
    ("trade.max_entry_orders_per_loop", U32),
    ("indicators.ema_slow_window", WINDOW),
    ("indicators.ema_fast_window", WINDOW),
    ("indicators.ema_macro_window", WINDOW),
    ("indicators.adx_window", WINDOW),
    ("indicators.bb_window", WINDOW),
    ("indicators.bb_std", POSITIVE),
    ("indicators.bb_width_avg_window", WINDOW),
    ("indicators.atr_window", WINDOW),
    ("indicators.rsi_window", WINDOW),
    ("indicators.vol_sma_window", WINDOW),
    ("indicators.vol_trend_window", WINDOW),
    ("indicators.stoch_rsi_window", WINDOW),
    ("indicators.stoch_rsi_smooth1", WINDOW),
    ("indicators.stoch_rsi_smooth2", WINDOW),
    ("indicators.macd_fast", WINDOW),
    ("indicators.macd_slow", WINDOW),
    ("indicators.macd_signal", WINDOW),
    ("filters.enable_ranging_filter", BOOL),
    ("filters.enable_anomaly_filter", BOOL),
    ("filters.enable_extension_filter", BOOL),
    ("filters.require_adx_rising", BOOL),
    ("filters.adx_rising_saturation", NUM),
    ("filters.require_volume_confirmation", BOOL),
    ("filters.vol_confirm_include_prev", BOOL),
    ("filters.use_stoch_rsi_filter", BOOL),
    ("filters.require_btc_alignment", BOOL),
    ("filters.require_macro_alignment", BOOL),
    ("thresholds.entry.min_adx", LEVEL),
    ("thresholds.entry.high_conf_volume_mult", NUM),
    ("thresholds.entry.btc_adx_override", LEVEL),
    ("thresholds.entry.max_dist_ema_fast", NUM),
    ("thresholds.entry.ave_enabled", BOOL),
    ("thresholds.entry.ave_atr_ratio_gt", NUM),
    ("thresholds.entry.ave_adx_mult", NUM),
    ("thresholds.entry.ave_avg_atr_window", WINDOW),
    ("thresholds.entry.macd_hist_entry_mode", MACD_MODE),
    ("thresholds.entry.enable_pullback_entries", BOOL),
    ("thresholds.entry.pullback_confidence", CONFIDENCE),
    ("thresholds.entry.pullback_min_adx", LEVEL),
    ("thresholds.entry.pullback_rsi_long_min", LEVEL),
    ("thresholds.entry.pullback_rsi_short_max", LEVEL),
    ("thresholds.entry.pullback_require_macd_sign", BOOL),
    ("thresholds.entry.enable_slow_drift_entries", BOOL),
    ("thresholds.entry.slow_drift_slope_window", WINDOW),
    ("thresholds.entry.slow_drift_min_slope_pct", NUM),
    ("thresholds.entry.slow_drift_min_adx", LEVEL),
    ("thresholds.entry.slow_drift_rsi_long_min", LEVEL),
    ("thresholds.entry.slow_drift_rsi_short_max", LEVEL),
    ("thresholds.entry.slow_drift_require_macd_sign", BOOL),
    ("thresholds.ranging.min_signals", int(Some(Incl(0.0)), Some(Incl(3.0)))),
    ("thresholds.ranging.adx_below", LEVEL),
    ("thresholds.ranging.bb_width_ratio_below", NUM),
    ("thresholds.ranging.rsi_low", LEVEL),
    ("thresholds.ranging.rsi_high", LEVEL),
    ("thresholds.anomaly.price_change_pct_gt", NUM),
    ("thresholds.anomaly.ema_fast_dev_pct_gt", NUM),
    ("thresholds.tp_and_momentum.adx_strong_gt", LEVEL),
    ("thresholds.tp_and_momentum.adx_weak_lt", LEVEL),
    ("thresholds.tp_and_momentum.tp_mult_strong", NUM),
    ("thresholds.tp_and_momentum.tp_mult_weak", NUM),
    ("thresholds.tp_and_momentum.rsi_long_strong", LEVEL),
    ("thresholds.tp_and_momentum.rsi_long_weak", LEVEL),
    ("thresholds.tp_and_momentum.rsi_short_strong", LEVEL),
    ("thresholds.tp_and_momentum.rsi_short_weak", LEVEL),
    ("thresholds.stoch_rsi.block_long_if_k_gt", FRACTION),
    ("thresholds.stoch_rsi.block_short_if_k_lt", FRACTION),
    ("market_regime.enable_regime_filter", BOOL),
    ("market_regime.breadth_block_short_above", NUM),
    ("market_regime.breadth_block_long_below", NUM),
    ("market_regime.enable_auto_reverse", BOOL),
    ("market_regime.auto_reverse_breadth_low", NUM),
    ("market_regime.auto_reverse_breadth_high", NUM),
    ("market_regime.enable_regime_gate", BOOL),
    ("market_regime.regime_gate_breadth_low", NUM),
    ("market_regime.regime_gate_breadth_high", NUM),
    ("market_regime.regime_gate_btc_adx_min", NUM),
    ("market_regime.regime_gate_btc_atr_pct_min", NUM),
    ("market_regime.regime_gate_fail_open", BOOL),
    ("engine.interval", INTERVAL),
    ("engine.entry_interval", OPT_INTERVAL),
    ("engine.exit_interval", OPT_INTERVAL),
    ("engine.loop_target_s", POSITIVE),
    ("engine.signal_on_candle_close", BOOL),
    ("engine.lookback_bars", int(Some(Incl(50.0)), Some(Incl(10000.0)))),
    ("watchlist_exclude", STR_LIST),
];

/// `low < high` (strict) or `low <= high` between two keys of one section (checked once every
/// key of the section is valid; the first broken rule of a section is reported).
pub struct OrderRule {
    pub section: &'static str,
    pub low: &'static str,
    pub high: &'static str,
    pub strict: bool,
}

pub static ORDER_RULES: &[OrderRule] = &[
    OrderRule { section: "trade", low: "vol_scalar_min", high: "vol_scalar_max", strict: false },
    OrderRule {
        section: "trade",
        low: "reentry_cooldown_min_mins",
        high: "reentry_cooldown_max_mins",
        strict: false,
    },
    OrderRule { section: "indicators", low: "ema_fast_window", high: "ema_slow_window", strict: true },
    OrderRule { section: "indicators", low: "macd_fast", high: "macd_slow", strict: true },
    OrderRule { section: "thresholds.ranging", low: "rsi_low", high: "rsi_high", strict: false },
];

/// Keys that only make sense once per daemon; a `symbols.<SYM>` block may not set them.
pub static GLOBAL_ONLY_KEYS: &[&str] = &["engine", "watchlist_exclude"];

/// A node of the key tree built from [`FIELDS`].
#[derive(Debug, Clone)]
pub enum Node {
    Section(Vec<(&'static str, Node)>),
    Leaf(Kind),
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Section(c) => c.iter().find(|(n, _)| *n == name).map(|(_, n)| n),
            Node::Leaf(_) => None,
        }
    }
}

/// The key tree of a merged config (sections in declaration order).
pub fn tree() -> &'static Node {
    static TREE: std::sync::LazyLock<Node> = std::sync::LazyLock::new(|| {
        let mut root = Node::Section(Vec::new());
        for (path, kind) in FIELDS {
            let parts: Vec<&'static str> = path.split('.').collect();
            let mut node = &mut root;
            for (i, part) in parts.iter().enumerate() {
                let Node::Section(children) = node else { unreachable!("a leaf has no children") };
                let pos = match children.iter().position(|(n, _)| n == part) {
                    Some(p) => p,
                    None => {
                        let new =
                            if i + 1 == parts.len() { Node::Leaf(*kind) } else { Node::Section(Vec::new()) };
                        children.push((part, new));
                        children.len() - 1
                    }
                };
                node = &mut children[pos].1;
            }
        }
        root
    });
    &TREE
}

/// `between 1 and 50`, `> 0 and <= 1`, `>= 0` ...
pub fn range_text(lo: Option<Bound>, hi: Option<Bound>) -> String {
    if let (Some(Incl(a)), Some(Incl(b))) = (lo, hi) {
        return format!("between {} and {}", num_text(a), num_text(b));
    }
    let mut parts = Vec::new();
    match lo {
        Some(Incl(a)) => parts.push(format!(">= {}", num_text(a))),
        Some(Excl(a)) => parts.push(format!("> {}", num_text(a))),
        None => {}
    }
    match hi {
        Some(Incl(b)) => parts.push(format!("<= {}", num_text(b))),
        Some(Excl(b)) => parts.push(format!("< {}", num_text(b))),
        None => {}
    }
    if parts.is_empty() {
        "in range".into()
    } else {
        parts.join(" and ")
    }
}

/// A number as messages show it: whole numbers without `.0`.
pub fn num_text(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        crate::raw::py_float_str(x)
    }
}

pub fn in_range(x: f64, lo: Option<Bound>, hi: Option<Bound>) -> bool {
    let lo_ok = match lo {
        Some(Incl(a)) => x >= a,
        Some(Excl(a)) => x > a,
        None => true,
    };
    let hi_ok = match hi {
        Some(Incl(b)) => x <= b,
        Some(Excl(b)) => x < b,
        None => true,
    };
    lo_ok && hi_ok
}

/// `'a', 'b' or 'c'`.
pub fn choices_text(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| crate::raw::py_repr_str(c)).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match v.as_object() {
            Some(m) => {
                for (k, sub) in m {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    leaves(sub, &path, out);
                }
            }
            None => out.push(prefix.to_string()),
        }
    }

    #[test]
    fn every_struct_field_has_exactly_one_rule() {
        let mut from_structs = Vec::new();
        leaves(&crate::defaults_json(), "", &mut from_structs);
        from_structs.sort();
        let mut from_table: Vec<String> = FIELDS.iter().map(|(p, _)| p.to_string()).collect();
        from_table.sort();
        assert_eq!(from_table, from_structs);
        for rule in ORDER_RULES {
            for key in [rule.low, rule.high] {
                let path = format!("{}.{key}", rule.section);
                assert!(FIELDS.iter().any(|(p, _)| *p == path), "{path}");
            }
        }
    }

    #[test]
    fn range_texts() {
        assert_eq!(range_text(Some(Incl(1.0)), Some(Incl(50.0))), "between 1 and 50");
        assert_eq!(range_text(Some(Excl(0.0)), Some(Incl(1.0))), "> 0 and <= 1");
        assert_eq!(range_text(Some(Excl(0.0)), None), "> 0");
        assert_eq!(choices_text(&["a", "b", "c"]), "'a', 'b' or 'c'");
    }
}
