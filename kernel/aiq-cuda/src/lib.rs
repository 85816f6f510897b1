//! The sweep's decision core in C++ (cuda/aiq_core.h), compiled for the host (build.rs, `cc`)
//! and for the GPU (NVRTC), and the backends that run it.
//!
//! * [`abi`]: `#[repr(C)]` mirrors of cuda/aiq_abi.h;
//! * [`CoreInputs`]: the host arrays a sweep chunk reads (built by `aiq_backtest::core_sweep`);
//! * [`CoreBackend`]: runs combos of a [`CoreInputs`] into [`AiqResult`]s; [`HostBackend`] is
//!   the C++ core on CPU threads.
#![allow(unsafe_code)] // FFI to the host-compiled core and, later, the CUDA driver.

pub mod abi;
pub mod gpu;
pub mod host;
pub mod inputs;
pub mod nvrtc;

pub use abi::{AiqEvent, AiqParams, AiqResult, AiqSnap, AiqSweepArgs, CORE_ABI};
pub use host::{host_core_abi, HostBackend};
pub use inputs::CoreInputs;

/// Why a backend could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CoreError {
    #[error("decision core: invalid inputs: {0}")]
    Invalid(String),
    #[error("decision core: {0}")]
    Backend(String),
}

/// Something that runs the decision core over combos.
pub trait CoreBackend {
    fn name(&self) -> &str;
    /// Runs combos `first..first + out.len()` of `inputs`, one [`AiqResult`] each.
    fn run(&mut self, inputs: &CoreInputs, first: u32, out: &mut [AiqResult]) -> Result<(), CoreError>;
}

#[cfg(test)]
mod tests {
    use super::abi::PARAM_FIELDS;
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn host_core_links_with_this_abi() {
        assert_eq!(host_core_abi(), CORE_ABI);
    }

    /// The #[repr(C)] mirrors have the C++ compiler's sizes and offsets, field by field.
    #[test]
    fn mirrors_match_the_header_layout() {
        let (size, fields) = host::host_layout(0);
        assert_eq!(size as usize, size_of::<AiqParams>());
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, PARAM_FIELDS);
        for (i, (_, off)) in fields.iter().enumerate() {
            assert_eq!(*off as usize, i * 8);
        }
        macro_rules! check {
            ($which:expr, $t:ty, [$($f:ident),* $(,)?]) => {{
                let (size, fields) = host::host_layout($which);
                assert_eq!(size as usize, size_of::<$t>(), stringify!($t));
                let ours: Vec<(String, u64)> = vec![$((stringify!($f).to_string(), offset_of!($t, $f) as u64)),*];
                assert_eq!(fields, ours, stringify!($t));
            }};
        }
        check!(
            1,
            AiqSnap,
            [
                t,
                close,
                high,
                low,
                prev_close,
                volume,
                ema_fast,
                ema_slow,
                ema_macro,
                adx,
                adx_slope,
                bb_width_ratio,
                atr,
                atr_slope,
                avg_atr,
                rsi,
                stoch_rsi_k,
                macd_hist,
                prev_macd_hist,
                prev2_macd_hist,
                prev3_macd_hist,
                vol_sma,
                ema_slow_slope_pct,
                ready,
                vol_trend
            ]
        );
        check!(
            2,
            AiqResult,
            [
                final_equity,
                cash,
                fees,
                funding,
                realized,
                gross_profit,
                gross_loss,
                eq_last,
                eq_peak,
                max_dd_usd,
                max_dd_frac,
                eq_mean,
                eq_m2,
                eq_down_sq,
                eq_n,
                trades,
                wins,
                liquidations,
                bars,
                steps,
                sub_ticks,
                entries,
                adds,
                events,
                status,
                open_positions
            ]
        );
        check!(3, AiqEvent, [t, quantity, price, fee, pnl, cash_after, symbol, kind, side, reason]);
        check!(
            4,
            AiqSweepArgs,
            [
                abi,
                n_combos,
                n_symbols,
                n_times,
                n_step_items,
                n_funding,
                n_sub_ticks,
                n_sub_items,
                n_snaps_unused,
                btc_symbol,
                events_cap,
                result_base,
                interval_ms,
                initial_balance,
                scratch_stride,
                times,
                step_start,
                step_symbol,
                fund_start,
                fund_symbol,
                fund_time,
                fund_rate,
                sub_times,
                sub_start,
                sub_symbol,
                sub_entry_px,
                sub_exit_px,
                name_order,
                snaps,
                combo_snap_off,
                params,
                combo_params,
                results,
                scratch,
                events,
                event_counts
            ]
        );
    }
}
