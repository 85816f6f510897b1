//! The sweep's decision core in C++ (cuda/aiq_core.h), compiled for the host (build.rs, `cc`)
//! and for the GPU (NVRTC), and the backends that run it.
//!
//! * [`abi`]: `#[repr(C)]` mirrors of cuda/aiq_abi.h;
//! * [`CoreInputs`]: the host arrays a sweep chunk reads (built by `aiq_backtest::core_sweep`);
//! * [`CoreBackend`]: runs combos of a [`CoreInputs`] into [`AiqResult`]s; [`HostBackend`] is
//!   the C++ core on CPU threads.
#![allow(unsafe_code)] // FFI to the host-compiled core and, later, the CUDA driver.

pub mod abi;
pub mod error;
pub mod gpu;
pub mod host;
pub mod inputs;
pub mod nvrtc;
pub mod params;

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
    use super::abi::PARAMS;
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The core's float helpers follow Rust's semantics where C's differ: `f64::min`/`max`
    /// return the non-NaN operand, `clamp` passes NaN through, `as i64` saturates (NaN -> 0),
    /// and candidates rank by `f64::total_cmp` (-NaN < -inf < -0 < +0 < +inf < NaN).
    #[test]
    fn float_helpers_have_rust_semantics() {
        use host::ffi;
        let vals = [
            f64::NAN,
            -f64::NAN,
            f64::NEG_INFINITY,
            -1e308,
            -2.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            5e-324,
            1.0,
            2.5,
            9.3e18,
            -9.3e18,
            f64::INFINITY,
        ];
        let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b;
        for &a in &vals {
            // SAFETY: pure functions of their arguments.
            let (ci, ck) = unsafe { (ffi::aiq_host_f64_to_i64(a), ffi::aiq_host_total_key(a)) };
            assert_eq!(ci, a as i64, "{a} as i64");
            for &b in &vals {
                // SAFETY: as above.
                let (mn, mx) =
                    unsafe { (ffi::aiq_host_math(0, a, b, 0.0), ffi::aiq_host_math(1, a, b, 0.0)) };
                assert!(same(mn, a.min(b)), "min({a}, {b}): {mn}");
                assert!(same(mx, a.max(b)), "max({a}, {b}): {mx}");
                // SAFETY: as above.
                let kb = unsafe { ffi::aiq_host_total_key(b) };
                assert_eq!(ck.cmp(&kb), a.total_cmp(&b), "total_cmp({a}, {b})");
            }
            for (lo, hi) in [(0.0, 1.0), (-2.0, 3.0), (0.5, 0.5)] {
                // SAFETY: as above.
                let c = unsafe { ffi::aiq_host_math(2, a, lo, hi) };
                assert!(same(c, a.clamp(lo, hi)), "{a}.clamp({lo}, {hi}): {c}");
            }
        }
    }

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
        assert_eq!(names, PARAMS.iter().map(|(n, _)| *n).collect::<Vec<_>>());
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
