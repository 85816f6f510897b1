// Host build of the decision core (what CI tests; the GPU runs the same header through sweep.cu).
#include <stddef.h>

#include "aiq_core.h"

extern "C" uint32_t aiq_host_core_abi(void) { return aiq_core_abi(); }

extern "C" uint64_t aiq_host_scratch_bytes(uint32_t n_symbols) { return aiq_scratch_bytes(n_symbols); }

// Runs combos first..first+n (one after another; the Rust side splits work across threads).
extern "C" void aiq_host_run(const AiqSweepArgs* a, uint32_t first, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) aiq_run_combo(a, first + i);
}

// ---- layout export: the Rust #[repr(C)] mirrors are checked against these ----------------------
struct AiqField {
    const char* name;
    uint64_t offset;
};

#define AIQ_F(T, f) {#f, offsetof(T, f)}
#define AIQ_PARAM_ENTRY(name) {#name, offsetof(AiqParams, name)},

static const AiqField PARAMS[] = {AIQ_PARAM_FIELDS(AIQ_PARAM_ENTRY)};
static const AiqField SNAP[] = {
    AIQ_F(AiqSnap, t), AIQ_F(AiqSnap, close), AIQ_F(AiqSnap, high), AIQ_F(AiqSnap, low),
    AIQ_F(AiqSnap, prev_close), AIQ_F(AiqSnap, volume), AIQ_F(AiqSnap, ema_fast), AIQ_F(AiqSnap, ema_slow),
    AIQ_F(AiqSnap, ema_macro), AIQ_F(AiqSnap, adx), AIQ_F(AiqSnap, adx_slope), AIQ_F(AiqSnap, bb_width_ratio),
    AIQ_F(AiqSnap, atr), AIQ_F(AiqSnap, atr_slope), AIQ_F(AiqSnap, avg_atr), AIQ_F(AiqSnap, rsi),
    AIQ_F(AiqSnap, stoch_rsi_k), AIQ_F(AiqSnap, macd_hist), AIQ_F(AiqSnap, prev_macd_hist),
    AIQ_F(AiqSnap, prev2_macd_hist), AIQ_F(AiqSnap, prev3_macd_hist), AIQ_F(AiqSnap, vol_sma),
    AIQ_F(AiqSnap, ema_slow_slope_pct), AIQ_F(AiqSnap, ready), AIQ_F(AiqSnap, vol_trend),
};
static const AiqField RESULT[] = {
    AIQ_F(AiqResult, final_equity), AIQ_F(AiqResult, cash), AIQ_F(AiqResult, fees), AIQ_F(AiqResult, funding),
    AIQ_F(AiqResult, realized), AIQ_F(AiqResult, gross_profit), AIQ_F(AiqResult, gross_loss),
    AIQ_F(AiqResult, eq_last), AIQ_F(AiqResult, eq_peak), AIQ_F(AiqResult, max_dd_usd),
    AIQ_F(AiqResult, max_dd_frac), AIQ_F(AiqResult, eq_mean), AIQ_F(AiqResult, eq_m2),
    AIQ_F(AiqResult, eq_down_sq), AIQ_F(AiqResult, eq_n), AIQ_F(AiqResult, trades), AIQ_F(AiqResult, wins),
    AIQ_F(AiqResult, liquidations), AIQ_F(AiqResult, bars), AIQ_F(AiqResult, steps),
    AIQ_F(AiqResult, sub_ticks), AIQ_F(AiqResult, entries), AIQ_F(AiqResult, adds), AIQ_F(AiqResult, events),
    AIQ_F(AiqResult, status), AIQ_F(AiqResult, open_positions),
};
static const AiqField EVENT[] = {
    AIQ_F(AiqEvent, t), AIQ_F(AiqEvent, quantity), AIQ_F(AiqEvent, price), AIQ_F(AiqEvent, fee),
    AIQ_F(AiqEvent, pnl), AIQ_F(AiqEvent, cash_after), AIQ_F(AiqEvent, symbol), AIQ_F(AiqEvent, kind),
    AIQ_F(AiqEvent, side), AIQ_F(AiqEvent, reason),
};
static const AiqField ARGS[] = {
    AIQ_F(AiqSweepArgs, abi), AIQ_F(AiqSweepArgs, n_combos), AIQ_F(AiqSweepArgs, n_symbols),
    AIQ_F(AiqSweepArgs, n_times), AIQ_F(AiqSweepArgs, n_step_items), AIQ_F(AiqSweepArgs, n_funding),
    AIQ_F(AiqSweepArgs, n_sub_ticks), AIQ_F(AiqSweepArgs, n_sub_items), AIQ_F(AiqSweepArgs, n_snaps_unused),
    AIQ_F(AiqSweepArgs, btc_symbol), AIQ_F(AiqSweepArgs, events_cap), AIQ_F(AiqSweepArgs, result_base),
    AIQ_F(AiqSweepArgs, interval_ms), AIQ_F(AiqSweepArgs, initial_balance), AIQ_F(AiqSweepArgs, scratch_stride),
    AIQ_F(AiqSweepArgs, times), AIQ_F(AiqSweepArgs, step_start), AIQ_F(AiqSweepArgs, step_symbol),
    AIQ_F(AiqSweepArgs, fund_start), AIQ_F(AiqSweepArgs, fund_symbol), AIQ_F(AiqSweepArgs, fund_time),
    AIQ_F(AiqSweepArgs, fund_rate), AIQ_F(AiqSweepArgs, sub_times), AIQ_F(AiqSweepArgs, sub_start),
    AIQ_F(AiqSweepArgs, sub_symbol), AIQ_F(AiqSweepArgs, sub_entry_px), AIQ_F(AiqSweepArgs, sub_exit_px),
    AIQ_F(AiqSweepArgs, name_order), AIQ_F(AiqSweepArgs, snaps), AIQ_F(AiqSweepArgs, combo_snap_off),
    AIQ_F(AiqSweepArgs, params), AIQ_F(AiqSweepArgs, combo_params), AIQ_F(AiqSweepArgs, results),
    AIQ_F(AiqSweepArgs, scratch), AIQ_F(AiqSweepArgs, events), AIQ_F(AiqSweepArgs, event_counts),
};

#define AIQ_N(arr) (uint32_t)(sizeof(arr) / sizeof(arr[0]))

// Struct `which` (0 params, 1 snap, 2 result, 3 event, 4 args): its size, and field `i`'s name and
// offset (name NULL past the last field).
extern "C" uint64_t aiq_host_layout(uint32_t which, uint32_t i, const char** name, uint64_t* offset) {
    const AiqField* f = 0;
    uint32_t n = 0;
    uint64_t size = 0;
    switch (which) {
        case 0: f = PARAMS; n = AIQ_N(PARAMS); size = sizeof(AiqParams); break;
        case 1: f = SNAP; n = AIQ_N(SNAP); size = sizeof(AiqSnap); break;
        case 2: f = RESULT; n = AIQ_N(RESULT); size = sizeof(AiqResult); break;
        case 3: f = EVENT; n = AIQ_N(EVENT); size = sizeof(AiqEvent); break;
        case 4: f = ARGS; n = AIQ_N(ARGS); size = sizeof(AiqSweepArgs); break;
        default: break;
    }
    if (i < n) {
        *name = f[i].name;
        *offset = f[i].offset;
    } else {
        *name = 0;
        *offset = 0;
    }
    return size;
}

// ---- the core's Rust-semantics helpers, exported for tests (NaN, ±0, infinities) ----------------
// op 0: f64::min(a, b); 1: f64::max(a, b); 2: a.clamp(b, c).
extern "C" double aiq_host_math(uint32_t op, double a, double b, double c) {
    switch (op) {
        case 0: return aiq_min(a, b);
        case 1: return aiq_max(a, b);
        default: return aiq_clamp(a, b, c);
    }
}
// `x as i64`
extern "C" int64_t aiq_host_f64_to_i64(double x) { return aiq_f64_to_i64(x); }
// A key whose integer order is f64::total_cmp's order.
extern "C" int64_t aiq_host_total_key(double x) { return aiq_total_key(x); }
