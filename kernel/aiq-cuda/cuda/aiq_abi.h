// The ABI between the host (Rust, kernel/aiq-cuda/src/abi.rs) and the decision core: plain
// structs of fixed-width fields, no padding surprises (every struct is a multiple of 8 bytes and
// its 8-byte fields come first). Rust mirrors each one with #[repr(C)]; a test compares sizes and
// offsets with the ones this compiler reports (aiq_host_layout in host.cpp).
// Change anything here: bump AIQ_CORE_VERSION. AiqParams is derived from the config keys
// (aiq_params.h, written by build.rs into the build's OUT_DIR; kernel/aiq-cuda/src/params.rs).
#pragma once
#ifndef __CUDACC__
#include <stdint.h>
#endif

#include "aiq_params.h"

#define AIQ_CORE_VERSION 1u
// What the host and the core check (AiqSweepArgs.abi): the version of the structs written here
// and the id of the derived parameter list, so a kernel compiled for other keys refuses to run.
#define AIQ_CORE_ABI (AIQ_CORE_VERSION ^ AIQ_PARAMS_ID)

// ---- enums (values are the index of the Rust enum variant) --------------------------------------
enum { AIQ_LONG = 0, AIQ_SHORT = 1 };
enum { AIQ_CONF_LOW = 0, AIQ_CONF_MEDIUM = 1, AIQ_CONF_HIGH = 2 };
enum { AIQ_MACD_ACCEL = 0, AIQ_MACD_SIGN = 1, AIQ_MACD_NONE = 2 };
enum { AIQ_STRAT_MEI_ALPHA_V1 = 0, AIQ_STRAT_EMA_CROSS = 1 };
// IntentKind, plus AIQ_EV_BLOCK for a blocked entry candidate (diagnostics).
enum { AIQ_EV_OPEN = 0, AIQ_EV_ADD = 1, AIQ_EV_REDUCE = 2, AIQ_EV_CLOSE = 3, AIQ_EV_REVERSE = 4, AIQ_EV_BLOCK = 5 };
// aiq_kernel::ReasonCode, in declaration order.
enum {
    AIQ_RC_ENTRY_SIGNAL = 0,
    AIQ_RC_PYRAMID_ADD,
    AIQ_RC_SIGNAL_FLIP,
    AIQ_RC_STOP_LOSS,
    AIQ_RC_BREAKEVEN_STOP,
    AIQ_RC_TRAILING_STOP,
    AIQ_RC_TAKE_PROFIT_PARTIAL,
    AIQ_RC_TAKE_PROFIT,
    AIQ_RC_TREND_BREAKDOWN,
    AIQ_RC_ADX_EXHAUSTION,
    AIQ_RC_MACRO_BREAKDOWN,
    AIQ_RC_STAGNATION,
    AIQ_RC_TSME,
    AIQ_RC_MMDE,
    AIQ_RC_RSI_OVEREXTENSION,
    AIQ_RC_LIQUIDATION,
    AIQ_RC_EMA_CROSS_DOWN,
    AIQ_RC_LOW_CONFIDENCE,
    AIQ_RC_REEF,
    AIQ_RC_SSF,
    AIQ_RC_ENTRY_COOLDOWN,
    AIQ_RC_PESC,
    AIQ_RC_MAX_POSITIONS,
    AIQ_RC_MARGIN_CAP,
    AIQ_RC_MIN_NOTIONAL,
    AIQ_RC_NOT_READY,
    AIQ_RC_BREADTH_LONG,
    AIQ_RC_BREADTH_SHORT,
    AIQ_RC_REGIME_GATE,
    AIQ_RC_REGIME_GATE_NO_DATA,
    AIQ_RC_COUNT
};
// AiqResult.status
enum { AIQ_OK = 0, AIQ_ERR_FUNDING = 1, AIQ_ERR_SUB_PRICE = 2, AIQ_ERR_ABI = 3 };

// ---- one bar's indicator snapshot (the fields the decisions read) -------------------------------
// Built on the host from aiq_indicators::SnapshotSource::snapshot, one array per
// (symbol, indicator config); `close/high/low` are the bar's candle.
typedef struct AiqSnap {
    int64_t t;
    double close, high, low, prev_close, volume;
    double ema_fast, ema_slow, ema_macro;
    double adx, adx_slope, bb_width_ratio;
    double atr, atr_slope, avg_atr;
    double rsi, stoch_rsi_k;
    double macd_hist, prev_macd_hist, prev2_macd_hist, prev3_macd_hist;
    double vol_sma, ema_slow_slope_pct;
    uint32_t ready, vol_trend;
} AiqSnap;

// ---- one strategy config (StrategyConfig, decision fields only) ---------------------------------
// Every field is a double: booleans 0/1, enums by variant index, u32 counts exactly.
// AIQ_PARAM_FIELDS(X) (aiq_params.h) is the one list the struct, the layout export and the Rust
// mirror are built from; it is derived from the config keys at build time, never copied by hand.
#define AIQ_PARAM_DECL(name) double name;
typedef struct AiqParams {
    AIQ_PARAM_FIELDS(AIQ_PARAM_DECL)
} AiqParams;
#undef AIQ_PARAM_DECL

// ---- per-combo output ---------------------------------------------------------------------------
// The reduction `sweep::run_config` makes, plus the raw EquityStats accumulators (the host turns
// them into Sharpe with the same `EquityStats` code the CPU sweep uses).
typedef struct AiqResult {
    double final_equity, cash, fees, funding, realized;
    double gross_profit, gross_loss;  // sums of net PnL of winning / losing closed round trips
    double eq_last, eq_peak, max_dd_usd, max_dd_frac, eq_mean, eq_m2, eq_down_sq;
    uint64_t eq_n, trades, wins, liquidations, bars, steps, sub_ticks, entries, adds, events;
    uint32_t status, open_positions;
} AiqResult;

// ---- one event of the (host-only) log: a fill, or a blocked entry candidate ---------------------
typedef struct AiqEvent {
    int64_t t;
    double quantity, price, fee, pnl, cash_after;
    uint32_t symbol, kind, side, reason;
} AiqEvent;

// ---- per-combo scratch (state the core mutates; `scratch_stride` bytes per combo) ---------------
typedef struct AiqSymState {
    // position
    double qty, avg_entry, entry_atr, leverage, trailing_sl, tp_mult;
    int64_t opened_at_ms, last_add_ms;
    uint32_t has_pos, side, confidence, adds_count, tp1_taken, has_trailing;
    // symbol state
    double last_price, last_px;  // kernel's last price; replay loop's funding price
    int64_t last_entry_ms, last_close_ms;
    uint32_t has_last_entry, has_last_close, last_close_side, last_close_reason;
    uint32_t bars_seen;  // snapshots consumed: current = bars_seen - 1, previous = bars_seen - 2
    uint32_t dirty;
    uint32_t has_snap_override, _pad0;  // sub-bar entry: current close replaced by `close_override`
    double close_override;
    // the replay loop's open round trip on this symbol
    double trip_realized, trip_fees, trip_funding;
    uint32_t trip_open, _pad1;
} AiqSymState;

typedef struct AiqCand {
    double score;
    uint32_t symbol, side, confidence, _pad;
} AiqCand;

// ---- everything one launch reads (counts and plain pointers only) -------------------------------
typedef struct AiqSweepArgs {
    uint32_t abi;  // AIQ_CORE_ABI of the host that built it
    uint32_t n_combos;   // combos described by combo_snap_off / combo_params
    uint32_t n_symbols;
    uint32_t n_times;
    uint32_t n_step_items;
    uint32_t n_funding;
    uint32_t n_sub_ticks;
    uint32_t n_sub_items;
    uint32_t n_snaps_unused;  // informative (length of `snaps`), not read by the core
    uint32_t btc_symbol;      // index of "BTC" among the symbols, or UINT32_MAX
    uint32_t events_cap;      // events per combo in `events` (0 = no log)
    uint32_t result_base;     // results / scratch / events / event_counts are indexed combo - result_base
    int64_t interval_ms;
    double initial_balance;
    uint64_t scratch_stride;  // bytes per combo in `scratch` (aiq_scratch_bytes(n_symbols) or more)
    // timeline (data::Timeline): step k = bar open time times[k]; its symbols step_symbol[step_start[k]..step_start[k+1]]
    const int64_t* times;          // [n_times]
    const uint32_t* step_start;    // [n_times + 1]
    const uint32_t* step_symbol;   // [n_step_items]
    // funding events due at step k: fund_start[k]..fund_start[k+1]
    const uint32_t* fund_start;    // [n_times + 1]
    const uint32_t* fund_symbol;   // [n_funding]
    const int64_t* fund_time;      // [n_funding]
    const double* fund_rate;       // [n_funding]
    // sub-bar ticks (data::SubTicks): tick j at sub_times[j], items sub_start[j]..sub_start[j+1]; NaN = none
    const int64_t* sub_times;      // [n_sub_ticks]
    const uint32_t* sub_start;     // [n_sub_ticks + 1]
    const uint32_t* sub_symbol;    // [n_sub_items]
    const double* sub_entry_px;    // [n_sub_items]
    const double* sub_exit_px;     // [n_sub_items]
    const uint32_t* name_order;    // [n_symbols] symbol indices sorted by name (bytes)
    const AiqSnap* snaps;          // every (symbol, indicator config) series, concatenated
    const uint64_t* combo_snap_off;  // [n_combos * n_symbols]: start in `snaps` of symbol s's series
    const AiqParams* params;         // distinct configs
    const uint32_t* combo_params;    // [n_combos * (n_symbols + 1)]: slot 0 base config, 1 + s symbol s
    AiqResult* results;              // [combo - result_base]
    uint8_t* scratch;                // [(combo - result_base) * scratch_stride]
    AiqEvent* events;                // NULL on the GPU; [(combo - result_base) * events_cap + i]
    uint32_t* event_counts;          // NULL on the GPU; events written (may exceed events_cap: then truncated)
} AiqSweepArgs;
