// The sweep's per-combo decision core: plain structs and __host__ __device__ functions only.
// Compiled twice from this one text: by the host C++ compiler (build.rs, through cc) and by NVRTC
// (sweep.cu). No __global__, no threadIdx, no allocation, no recursion, no exp/log/pow here: only
// + - * / and comparisons on doubles, so both builds round identically (docs/backtester.md,
// "The decision core in C++").
//
// It is a line-by-line port of the Rust path a sweep combo runs:
//   aiq-kernel  kernel.rs (step_snapshot, on_funding, evaluate, run_exits, close_position,
//               apply_fill, try_open, try_pyramid, check_liquidation, ema_cross_step),
//               signal.rs, exits.rs, regime.rs, sizing.rs, ema_cross.rs
//   aiq-backtest sim.rs run_src (the replay loop and its round-trip recorder), sweep.rs run_config
// Every function names its Rust original; keep them in step (tests/core_differential.rs fails
// when they drift).
#pragma once
#ifdef __CUDACC__
#define AIQ_HD __host__ __device__
#else
#define AIQ_HD
#include <stdint.h>
#endif

#include "aiq_abi.h"

AIQ_HD inline uint32_t aiq_core_abi(void) { return AIQ_CORE_ABI; }

// Bytes of scratch one combo needs.
AIQ_HD inline uint64_t aiq_scratch_bytes(uint32_t n_symbols) {
    return (uint64_t)n_symbols * (sizeof(AiqSymState) + sizeof(AiqCand));
}

// ---- Rust float semantics ----------------------------------------------------------------------
AIQ_HD inline bool aiq_isnan(double x) { return x != x; }
AIQ_HD inline bool aiq_isfinite(double x) { return x == x && x - x == 0.0; }
AIQ_HD inline double aiq_abs(double x) {
    union { double d; uint64_t u; } v;
    v.d = x;
    v.u &= 0x7fffffffffffffffULL;
    return v.d;
}
// f64::min / f64::max: a NaN operand yields the other one.
AIQ_HD inline double aiq_min(double a, double b) {
    if (aiq_isnan(a)) return b;
    if (aiq_isnan(b)) return a;
    return b < a ? b : a;
}
AIQ_HD inline double aiq_max(double a, double b) {
    if (aiq_isnan(a)) return b;
    if (aiq_isnan(b)) return a;
    return b > a ? b : a;
}
// f64::clamp: NaN passes through (callers guarantee lo <= hi, as Rust asserts).
AIQ_HD inline double aiq_clamp(double x, double lo, double hi) {
    if (x < lo) x = lo;
    if (x > hi) x = hi;
    return x;
}
// `x as i64`: saturating, NaN -> 0.
AIQ_HD inline int64_t aiq_f64_to_i64(double x) {
    if (aiq_isnan(x)) return 0;
    if (x >= 9223372036854775807.0) return (int64_t)0x7fffffffffffffffLL;
    if (x <= -9223372036854775808.0) return (int64_t)(-0x7fffffffffffffffLL - 1);
    return (int64_t)x;
}
// f64::total_cmp as a signed key: a < b in total order iff key(a) < key(b).
AIQ_HD inline int64_t aiq_total_key(double x) {
    union { double d; int64_t i; } v;
    v.d = x;
    int64_t k = v.i;
    k ^= (int64_t)(((uint64_t)(k >> 63)) >> 1);
    return k;
}
AIQ_HD inline double aiq_sign(uint32_t side) { return side == AIQ_LONG ? 1.0 : -1.0; }
AIQ_HD inline uint32_t aiq_opposite(uint32_t side) { return side == AIQ_LONG ? AIQ_SHORT : AIQ_LONG; }
AIQ_HD inline bool aiq_b(double flag) { return flag != 0.0; }
AIQ_HD inline uint32_t aiq_u(double v) { return (uint32_t)v; }

// ---- per-combo context ---------------------------------------------------------------------------
struct AiqCtx {
    const AiqSweepArgs* a;
    uint32_t combo;
    uint32_t local;  // combo - result_base
    AiqSymState* st;
    AiqCand* cands;
    AiqResult* r;
    double cash, realized, fees, funding;
    uint32_t n_pos;
};

AIQ_HD inline const AiqParams* aiq_cfg(const AiqCtx* c, uint32_t s) {
    const AiqSweepArgs* a = c->a;
    return &a->params[a->combo_params[(uint64_t)c->combo * (a->n_symbols + 1) + 1 + s]];
}
AIQ_HD inline const AiqParams* aiq_base_cfg(const AiqCtx* c) {
    const AiqSweepArgs* a = c->a;
    return &a->params[a->combo_params[(uint64_t)c->combo * (a->n_symbols + 1)]];
}
// The symbol's current snapshot (its close replaced on a sub-bar entry tick), or NULL.
AIQ_HD inline const AiqSnap* aiq_snap_at(const AiqCtx* c, uint32_t s, uint32_t back) {
    const AiqSymState* y = &c->st[s];
    if (y->bars_seen <= back) return 0;
    return &c->a->snaps[c->a->combo_snap_off[(uint64_t)c->combo * c->a->n_symbols + s] + (y->bars_seen - 1 - back)];
}
// A copy of the current snapshot as the kernel sees it (sub-bar close override applied).
AIQ_HD inline bool aiq_cur(const AiqCtx* c, uint32_t s, AiqSnap* out) {
    const AiqSnap* p = aiq_snap_at(c, s, 0);
    if (!p) return false;
    *out = *p;
    if (c->st[s].has_snap_override) out->close = c->st[s].close_override;
    return true;
}

AIQ_HD inline void aiq_log(AiqCtx* c, int64_t t, uint32_t sym, uint32_t kind, uint32_t side, uint32_t reason,
                           double qty, double price, double fee, double pnl) {
    const AiqSweepArgs* a = c->a;
    c->r->events += 1;
    if (!a->events || !a->event_counts) return;
    uint32_t n = a->event_counts[c->local];
    if (n < a->events_cap) {
        AiqEvent* e = &a->events[(uint64_t)c->local * a->events_cap + n];
        e->t = t;
        e->quantity = qty;
        e->price = price;
        e->fee = fee;
        e->pnl = pnl;
        e->cash_after = c->cash;
        e->symbol = sym;
        e->kind = kind;
        e->side = side;
        e->reason = reason;
    }
    a->event_counts[c->local] = n + 1;
}

// ---- kernel.rs: accounting -------------------------------------------------------------------------
// Position::unrealized_pnl
AIQ_HD inline double aiq_upnl(const AiqSymState* y, double px) {
    return aiq_sign(y->side) * (px - y->avg_entry) * y->qty;
}
// Position::profit_atr
AIQ_HD inline double aiq_profit_atr(const AiqSymState* y, double px) {
    if (y->entry_atr > 0.0) return aiq_sign(y->side) * (px - y->avg_entry) / y->entry_atr;
    return 0.0;
}
// Kernel::equity (positions in name order; the sum starts at -0.0 like Rust's f64 Sum)
AIQ_HD inline double aiq_equity(const AiqCtx* c) {
    double upnl = -0.0;
    for (uint32_t i = 0; i < c->a->n_symbols; ++i) {
        uint32_t s = c->a->name_order[i];
        const AiqSymState* y = &c->st[s];
        if (!y->has_pos) continue;
        double px = y->last_price;
        upnl += px > 0.0 ? aiq_upnl(y, px) : 0.0;
    }
    return c->cash + upnl;
}
// Kernel::used_margin
AIQ_HD inline double aiq_used_margin(const AiqCtx* c) {
    double m = -0.0;
    for (uint32_t i = 0; i < c->a->n_symbols; ++i) {
        const AiqSymState* y = &c->st[c->a->name_order[i]];
        if (y->has_pos) m += y->qty * y->avg_entry / y->leverage;
    }
    return m;
}

// signal.rs dynamic_tp_mult
AIQ_HD inline double aiq_dynamic_tp_mult(double adx, const AiqParams* p) {
    if (adx > p->adx_strong_gt) return p->tp_mult_strong;
    if (adx < p->adx_weak_lt) return p->tp_mult_weak;
    return p->tp_atr_mult;
}

// A finished round trip with net PnL `net` (realized - fees + funding): the trade and win counts.
AIQ_HD inline void aiq_close_trip(AiqResult* r, double net) {
    r->trades += 1;
    if (net > 0.0) {
        r->wins += 1;
        r->gross_profit += net;
    } else {
        r->gross_loss -= net;
    }
}

// The replay loop's Recorder::on_fill (round trips) for one fill.
AIQ_HD inline void aiq_record_fill(AiqCtx* c, uint32_t s, uint32_t kind, uint32_t reason, double fee, double pnl) {
    AiqSymState* y = &c->st[s];
    bool closing = kind == AIQ_EV_CLOSE || kind == AIQ_EV_REDUCE || kind == AIQ_EV_REVERSE;
    if (closing) {
        if (reason == AIQ_RC_LIQUIDATION) c->r->liquidations += 1;
        bool full = kind != AIQ_EV_REDUCE;
        if (y->trip_open) {
            y->trip_realized += pnl;
            y->trip_fees += fee;
            if (full) {
                y->trip_open = 0;
                aiq_close_trip(c->r, y->trip_realized - y->trip_fees + y->trip_funding);
            }
        } else {
            // A position restored from a state (not possible in a sweep): a trip of its own.
            double net = pnl - fee;
            if (full) {
                aiq_close_trip(c->r, net);
            } else {
                y->trip_open = 1;
                y->trip_realized = pnl;
                y->trip_fees = fee;
                y->trip_funding = 0.0;
            }
        }
    } else if (y->trip_open) {
        y->trip_fees += fee;
        c->r->adds += 1;
    } else {
        c->r->entries += 1;
        y->trip_open = 1;
        y->trip_realized = 0.0;
        y->trip_fees = fee;
        y->trip_funding = 0.0;
    }
}

// Kernel::apply_fill for a simulated fill (then the recorder and the log).
AIQ_HD inline void aiq_apply_fill(AiqCtx* c, uint32_t s, uint32_t kind, uint32_t side, double qty, double price,
                                  double fee, uint32_t reason, int64_t ts, uint32_t confidence, double leverage) {
    AiqSymState* y = &c->st[s];
    double pnl = 0.0;
    c->cash -= fee;
    c->fees += fee;
    if (y->has_pos && y->side != side) {
        double q = aiq_min(qty, y->qty);
        pnl = aiq_sign(y->side) * (price - y->avg_entry) * q;
        c->cash += pnl;
        c->realized += pnl;
        y->qty -= q;
        if (y->qty <= aiq_abs(y->qty) * 1e-12 || y->qty * price < 1e-9) {
            y->has_pos = 0;
            c->n_pos -= 1;
            y->has_last_close = 1;
            y->last_close_ms = ts;
            y->last_close_side = y->side;
            y->last_close_reason = reason;
        }
    } else if (y->has_pos) {
        double total = y->qty + qty;
        y->avg_entry = (y->avg_entry * y->qty + price * qty) / total;
        y->qty = total;
        y->adds_count += 1;
        y->last_add_ms = ts;
        y->has_last_entry = 1;
        y->last_entry_ms = ts;
    } else {
        const AiqParams* p = aiq_cfg(c, s);
        AiqSnap sn;
        double atr = 0.0, adx = 0.0;
        if (aiq_cur(c, s, &sn)) {
            atr = aiq_max(sn.atr, sn.close * p->min_atr_pct);
            adx = sn.adx;
        }
        y->has_pos = 1;
        c->n_pos += 1;
        y->side = side;
        y->qty = qty;
        y->avg_entry = price;
        y->entry_atr = atr;
        y->leverage = leverage;
        y->confidence = confidence;
        y->opened_at_ms = ts;
        y->last_add_ms = ts;
        y->adds_count = 0;
        y->tp1_taken = 0;
        y->has_trailing = 0;
        y->trailing_sl = 0.0;
        y->tp_mult = aiq_dynamic_tp_mult(adx, p);
        y->has_last_entry = 1;
        y->last_entry_ms = ts;
    }
    aiq_record_fill(c, s, kind, reason, fee, pnl);
    aiq_log(c, ts, s, kind, side, reason, qty, price, fee, pnl);
}

// Kernel::slipped
AIQ_HD inline double aiq_slipped(const AiqParams* p, uint32_t side, double px) {
    return px * (1.0 + aiq_sign(side) * p->slippage_bps / 10000.0);
}

// Kernel::close_position
AIQ_HD inline void aiq_close_position(AiqCtx* c, uint32_t s, double fraction, double px, int64_t now,
                                      uint32_t reason, uint32_t kind) {
    AiqSymState* y = &c->st[s];
    if (!y->has_pos) return;
    const AiqParams* p = aiq_cfg(c, s);
    double qty = fraction >= 1.0 ? y->qty : y->qty * fraction;
    uint32_t order_side = aiq_opposite(y->side);
    double fill_px = aiq_slipped(p, order_side, px);
    double fee = qty * fill_px * p->taker_fee_bps / 10000.0;
    aiq_apply_fill(c, s, kind, order_side, qty, fill_px, fee, reason, now, y->confidence, y->leverage);
}

// Kernel::execute_open
AIQ_HD inline void aiq_execute_open(AiqCtx* c, uint32_t s, uint32_t side, double notional, double leverage,
                                    uint32_t confidence, double px, int64_t now, uint32_t kind) {
    const AiqParams* p = aiq_cfg(c, s);
    double qty = notional / px;
    double fill_px = aiq_slipped(p, side, px);
    double fee = qty * fill_px * p->taker_fee_bps / 10000.0;
    uint32_t reason = kind == AIQ_EV_ADD ? AIQ_RC_PYRAMID_ADD : AIQ_RC_ENTRY_SIGNAL;
    aiq_apply_fill(c, s, kind, side, qty, fill_px, fee, reason, now, confidence, leverage);
}

// Kernel::check_liquidation (`px` is symbol `sym`'s mark; others at their last price)
AIQ_HD inline void aiq_check_liquidation(AiqCtx* c, uint32_t sym, double px, int64_t t) {
    if (c->n_pos == 0) return;
    const AiqSweepArgs* a = c->a;
    double equity = c->cash;
    double maintenance = 0.0;
    for (uint32_t i = 0; i < a->n_symbols; ++i) {
        uint32_t s = a->name_order[i];
        const AiqSymState* y = &c->st[s];
        if (!y->has_pos) continue;
        double mark = s == sym ? px : y->last_price;
        equity += aiq_upnl(y, mark);
        maintenance += y->qty * mark * aiq_cfg(c, s)->maintenance_margin_pct;
    }
    if (equity >= maintenance) return;
    for (uint32_t i = 0; i < a->n_symbols; ++i) {
        uint32_t s = a->name_order[i];
        if (!c->st[s].has_pos) continue;
        double mark = s == sym ? px : c->st[s].last_price;
        aiq_close_position(c, s, 1.0, mark, t, AIQ_RC_LIQUIDATION, AIQ_EV_CLOSE);
    }
}

// ---- exits.rs ---------------------------------------------------------------------------------------
AIQ_HD inline double aiq_low_conf_or(const AiqSymState* y, double low_conf_value, double main) {
    return (y->confidence == AIQ_CONF_LOW && low_conf_value > 0.0) ? low_conf_value : main;
}
AIQ_HD inline double aiq_favour(const AiqSymState* y, double atr_mult) {
    return y->avg_entry + aiq_sign(y->side) * atr_mult * y->entry_atr;
}
AIQ_HD inline bool aiq_stop_hit(uint32_t side, double px, double level) {
    return side == AIQ_LONG ? px <= level : px >= level;
}
AIQ_HD inline bool aiq_target_hit(uint32_t side, double px, double level) {
    return side == AIQ_LONG ? px >= level : px <= level;
}
// stop_loss_level; returns the level, sets *breakeven.
AIQ_HD inline double aiq_stop_loss_level(const AiqSymState* y, const AiqSnap* s, double px, const AiqParams* t,
                                         bool* breakeven) {
    double profit_atr = aiq_profit_atr(y, px);
    double mult = t->sl_atr_mult;
    if (s->adx_slope < 0.0 && profit_atr < 0.0) mult *= 0.80;
    if (s->adx > 40.0 && profit_atr > 0.0) mult *= 1.15;
    if (s->adx > 45.0) mult *= 1.10;
    double sl = aiq_favour(y, -mult);
    if (aiq_b(t->enable_breakeven_stop) && profit_atr >= t->breakeven_start_atr) {
        double be = aiq_favour(y, t->breakeven_buffer_atr);
        bool tighter = y->side == AIQ_LONG ? be > sl : be < sl;
        if (tighter) {
            *breakeven = true;
            return be;
        }
    }
    *breakeven = false;
    return sl;
}
// trailing_candidate; false = not armed.
AIQ_HD inline bool aiq_trailing_candidate(const AiqSymState* y, const AiqSnap* s, double px, const AiqParams* t,
                                          double* out) {
    double profit_atr = aiq_profit_atr(y, px);
    double start = aiq_low_conf_or(y, t->trailing_start_atr_low_conf, t->trailing_start_atr);
    if (profit_atr < start) return false;
    double dist = aiq_low_conf_or(y, t->trailing_distance_atr_low_conf, t->trailing_distance_atr);
    if (aiq_b(t->enable_vol_buffered_trailing) && s->bb_width_ratio > 1.2) dist *= 1.25;
    if (profit_atr > 2.0) {
        if (s->adx > 35.0 && s->adx_slope > 0.0) {
            // keep the distance while the trend strengthens
        } else if (s->atr_slope > 0.0) {
            dist *= 0.75;
        } else {
            dist *= 0.5;
        }
    }
    if (s->adx < 25.0) dist *= 0.7;
    bool rsi_favourable = y->side == AIQ_LONG ? s->rsi > 50.0 : s->rsi < 50.0;
    double floor = rsi_favourable ? 0.7 : 0.5;
    dist = aiq_max(dist, floor);
    *out = px - aiq_sign(y->side) * dist * y->entry_atr;
    return true;
}
// ratchet
AIQ_HD inline double aiq_ratchet(uint32_t side, bool has_current, double current, double candidate) {
    if (!has_current) return candidate;
    return side == AIQ_LONG ? aiq_max(current, candidate) : aiq_min(current, candidate);
}
AIQ_HD inline bool aiq_macd_falling(const AiqSnap* s, uint32_t side, int bars) {
    double h[4] = {s->macd_hist, s->prev_macd_hist, s->prev2_macd_hist, s->prev3_macd_hist};
    for (int i = 0; i < bars; ++i) {
        bool ok = side == AIQ_LONG ? h[i] < h[i + 1] : h[i] > h[i + 1];
        if (!ok) return false;
    }
    return true;
}
// smart_exit; returns a reason code or -1.
AIQ_HD inline int aiq_smart_exit(const AiqSymState* y, const AiqSnap* s, double px, const AiqParams* t) {
    uint32_t side = y->side;
    double profit_atr = aiq_profit_atr(y, px);
    bool crossed_against = side == AIQ_LONG ? s->ema_fast < s->ema_slow : s->ema_fast > s->ema_slow;
    bool weak_cross = aiq_abs(s->ema_fast - s->ema_slow) / s->ema_slow < 0.001 && s->adx > 25.0;
    if (crossed_against && !weak_cross) return AIQ_RC_TREND_BREAKDOWN;
    double exhaustion = aiq_low_conf_or(y, t->smart_exit_adx_exhaustion_lt_low_conf, t->smart_exit_adx_exhaustion_lt);
    if (s->adx < exhaustion) return AIQ_RC_ADX_EXHAUSTION;
    if (aiq_b(t->require_macro_alignment)) {
        bool broken = side == AIQ_LONG ? s->close < s->ema_macro : s->close > s->ema_macro;
        if (broken) return AIQ_RC_MACRO_BREAKDOWN;
    }
    if (s->atr < 0.7 * y->entry_atr && profit_atr < 0.0) return AIQ_RC_STAGNATION;
    if (s->adx > 50.0 && profit_atr >= t->tsme_min_profit_atr &&
        (!aiq_b(t->tsme_require_adx_slope_negative) || s->adx_slope < 0.0) && aiq_macd_falling(s, side, 2))
        return AIQ_RC_TSME;
    if (profit_atr > 1.5 && s->adx > 35.0 && aiq_macd_falling(s, side, 3)) return AIQ_RC_MMDE;
    if (aiq_b(t->enable_rsi_overextension_exit)) {
        double ub, lb;
        if (profit_atr < t->rsi_exit_profit_atr_switch) {
            ub = aiq_low_conf_or(y, t->rsi_exit_ub_lo_profit_low_conf, t->rsi_exit_ub_lo_profit);
            lb = aiq_low_conf_or(y, t->rsi_exit_lb_lo_profit_low_conf, t->rsi_exit_lb_lo_profit);
        } else {
            ub = aiq_low_conf_or(y, t->rsi_exit_ub_hi_profit_low_conf, t->rsi_exit_ub_hi_profit);
            lb = aiq_low_conf_or(y, t->rsi_exit_lb_hi_profit_low_conf, t->rsi_exit_lb_hi_profit);
        }
        bool over = side == AIQ_LONG ? s->rsi > ub : s->rsi < lb;
        if (over) return AIQ_RC_RSI_OVEREXTENSION;
    }
    return -1;
}
// check_exit: returns a reason code or -1; *fraction; updates the trailing stop in `up_*`.
AIQ_HD inline int aiq_check_exit(const AiqSymState* y, const AiqSnap* s, double px, const AiqParams* t,
                                 double* fraction, bool* up_has, double* up_sl) {
    *up_has = y->has_trailing != 0;
    *up_sl = y->trailing_sl;
    *fraction = 1.0;
    if (aiq_b(t->block_exits_on_extreme_dev) &&
        (aiq_abs(px / s->close - 1.0) > t->glitch_price_dev_pct || aiq_abs(px - s->close) > t->glitch_atr_mult * s->atr))
        return -1;
    bool breakeven = false;
    double sl = aiq_stop_loss_level(y, s, px, t, &breakeven);
    if (aiq_stop_hit(y->side, px, sl)) return breakeven ? AIQ_RC_BREAKEVEN_STOP : AIQ_RC_STOP_LOSS;
    double cand;
    if (aiq_trailing_candidate(y, s, px, t, &cand)) {
        *up_sl = aiq_ratchet(y->side, *up_has, *up_sl, cand);
        *up_has = true;
    }
    if (*up_has && aiq_stop_hit(y->side, px, *up_sl)) return AIQ_RC_TRAILING_STOP;
    double tp = aiq_favour(y, y->tp_mult);
    if (aiq_b(t->enable_partial_tp) && !y->tp1_taken) {
        double level = t->tp_partial_atr_mult > 0.0 ? aiq_favour(y, t->tp_partial_atr_mult) : tp;
        if (aiq_target_hit(y->side, px, level)) {
            double part = y->qty * t->tp_partial_pct * px;
            double rest = y->qty * (1.0 - t->tp_partial_pct) * px;
            if (part < t->tp_partial_min_notional_usd || rest < t->tp_partial_min_notional_usd) return AIQ_RC_TAKE_PROFIT;
            double be = aiq_favour(y, t->breakeven_buffer_atr);
            *up_sl = aiq_ratchet(y->side, *up_has, *up_sl, be);
            *up_has = true;
            *fraction = t->tp_partial_pct;
            return AIQ_RC_TAKE_PROFIT_PARTIAL;
        }
    } else if ((!aiq_b(t->enable_partial_tp) || t->tp_partial_atr_mult > 0.0) && aiq_target_hit(y->side, px, tp)) {
        return AIQ_RC_TAKE_PROFIT;
    }
    return aiq_smart_exit(y, s, px, t);
}

// Kernel::run_exits
AIQ_HD inline void aiq_run_exits(AiqCtx* c, uint32_t s, double px, int64_t now) {
    const AiqParams* p = aiq_cfg(c, s);
    if (aiq_u(p->strategy) != AIQ_STRAT_MEI_ALPHA_V1) return;
    int64_t exit_cooldown_ms = aiq_f64_to_i64(p->exit_cooldown_s * 1000.0);
    AiqSymState* y = &c->st[s];
    if (!y->has_pos) return;
    AiqSnap sn;
    if (!aiq_cur(c, s, &sn)) return;
    int64_t since = y->last_add_ms > y->opened_at_ms ? y->last_add_ms : y->opened_at_ms;
    if (now - since < exit_cooldown_ms) return;
    double fraction;
    bool up_has;
    double up_sl;
    int code = aiq_check_exit(y, &sn, px, p, &fraction, &up_has, &up_sl);
    y->has_trailing = up_has ? 1 : 0;
    y->trailing_sl = up_has ? up_sl : 0.0;
    if (code < 0) return;
    uint32_t kind = fraction < 1.0 ? AIQ_EV_REDUCE : AIQ_EV_CLOSE;
    aiq_close_position(c, s, fraction, px, now, (uint32_t)code, kind);
    if (code == AIQ_RC_TAKE_PROFIT_PARTIAL && y->has_pos) y->tp1_taken = 1;
}

// ---- signal.rs ----------------------------------------------------------------------------------------
struct AiqGates {
    bool is_anomaly, all_gates_pass, bullish_alignment, bearish_alignment, btc_ok_long, btc_ok_short;
    double rsi_long_limit, rsi_short_limit;
};

// gates; btc_bullish: -1 none, 0 false, 1 true.
AIQ_HD inline AiqGates aiq_gates(const AiqSnap* s, const AiqSnap* p, const AiqParams* f, bool is_btc, int btc_bullish) {
    AiqGates g;
    bool is_ranging = false;
    if (aiq_b(f->enable_ranging_filter)) {
        uint32_t n = (uint32_t)(s->adx < f->ranging_adx_below) + (uint32_t)(s->bb_width_ratio < f->ranging_bb_width_ratio_below) +
                     (uint32_t)(f->ranging_rsi_low < s->rsi && s->rsi < f->ranging_rsi_high);
        is_ranging = n >= aiq_u(f->ranging_min_signals);
    }
    double ema_dev = aiq_abs(s->close - s->ema_fast) / s->ema_fast;
    g.is_anomaly = aiq_b(f->enable_anomaly_filter) &&
                   (aiq_abs(s->close / s->prev_close - 1.0) > f->anomaly_price_change_pct_gt || ema_dev > f->anomaly_ema_fast_dev_pct_gt);
    bool is_extended = aiq_b(f->enable_extension_filter) && ema_dev > f->max_dist_ema_fast;
    double min_adx = f->min_adx;
    if (s->adx_slope > 0.5) min_adx = aiq_min(min_adx, 25.0);
    if (aiq_b(f->ave_enabled) && s->avg_atr > 0.0 && s->atr / s->avg_atr > f->ave_atr_ratio_gt) min_adx *= f->ave_adx_mult;
    bool adx_above_min = s->adx > min_adx;
    bool trending_up = !aiq_b(f->require_adx_rising) || s->adx > p->adx || s->adx > f->adx_rising_saturation;
    bool vol_confirm = !aiq_b(f->require_volume_confirmation) ||
                       ((s->volume > s->vol_sma || (aiq_b(f->vol_confirm_include_prev) && p->volume > p->vol_sma)) && s->vol_trend);
    g.all_gates_pass = adx_above_min && !is_ranging && !g.is_anomaly && !is_extended && vol_confirm && trending_up;
    bool macro_long = !aiq_b(f->require_macro_alignment) || s->ema_slow > s->ema_macro;
    bool macro_short = !aiq_b(f->require_macro_alignment) || s->ema_slow < s->ema_macro;
    g.bullish_alignment = s->ema_fast > s->ema_slow && macro_long;
    g.bearish_alignment = s->ema_fast < s->ema_slow && macro_short;
    bool btc_free = !aiq_b(f->require_btc_alignment) || is_btc || s->adx > f->btc_adx_override;
    g.btc_ok_long = btc_free || btc_bullish != 0;
    g.btc_ok_short = btc_free || btc_bullish != 1;
    double denom = f->adx_strong_gt - f->min_adx;
    double w;
    if (denom > 0.0) {
        w = aiq_clamp((s->adx - f->min_adx) / denom, 0.0, 1.0);
    } else if (s->adx >= f->adx_strong_gt) {
        w = 1.0;
    } else {
        w = 0.0;
    }
    g.rsi_long_limit = f->rsi_long_weak + w * (f->rsi_long_strong - f->rsi_long_weak);
    g.rsi_short_limit = f->rsi_short_weak + w * (f->rsi_short_strong - f->rsi_short_weak);
    return g;
}

AIQ_HD inline bool aiq_macd_ok(const AiqSnap* s, uint32_t mode, bool long_) {
    if (mode == AIQ_MACD_ACCEL) return long_ ? s->macd_hist > s->prev_macd_hist : s->macd_hist < s->prev_macd_hist;
    if (mode == AIQ_MACD_SIGN) return long_ ? s->macd_hist > 0.0 : s->macd_hist < 0.0;
    return true;
}
AIQ_HD inline bool aiq_macd_sign_ok(const AiqSnap* s, bool required, bool long_) {
    return !required || (long_ ? s->macd_hist > 0.0 : s->macd_hist < 0.0);
}

// Signal: 0 neutral, 1 buy (long), 2 sell (short).
enum { AIQ_SIG_NEUTRAL = 0, AIQ_SIG_BUY = 1, AIQ_SIG_SELL = 2 };

// analyze (Mei Alpha v1)
AIQ_HD inline uint32_t aiq_analyze(const AiqSnap* s, const AiqSnap* p, const AiqParams* f, bool is_btc, int btc_bullish,
                                   uint32_t* confidence) {
    *confidence = AIQ_CONF_LOW;
    if (!s->ready || !p->ready) return AIQ_SIG_NEUTRAL;
    AiqGates g = aiq_gates(s, p, f, is_btc, btc_bullish);
    bool use_stoch = aiq_b(f->use_stoch_rsi_filter);
    uint32_t signal = AIQ_SIG_NEUTRAL;
    uint32_t conf = AIQ_CONF_LOW;
    uint32_t mode = aiq_u(f->macd_hist_entry_mode);
    if (g.all_gates_pass) {
        bool lg = g.bullish_alignment && s->close > s->ema_fast && s->rsi > g.rsi_long_limit && aiq_macd_ok(s, mode, true) &&
                  !(use_stoch && s->stoch_rsi_k > f->stoch_block_long_if_k_gt) && g.btc_ok_long;
        bool sh = g.bearish_alignment && s->close < s->ema_fast && s->rsi < g.rsi_short_limit && aiq_macd_ok(s, mode, false) &&
                  !(use_stoch && s->stoch_rsi_k < f->stoch_block_short_if_k_lt) && g.btc_ok_short;
        if (lg || sh) {
            signal = lg ? AIQ_SIG_BUY : AIQ_SIG_SELL;
            conf = s->volume > s->vol_sma * f->high_conf_volume_mult ? AIQ_CONF_HIGH : AIQ_CONF_MEDIUM;
        }
    }
    if (signal == AIQ_SIG_NEUTRAL && aiq_b(f->enable_pullback_entries) && s->adx > f->pullback_min_adx && !g.is_anomaly) {
        bool req = aiq_b(f->pullback_require_macd_sign);
        bool lg = g.bullish_alignment && p->close <= p->ema_fast && s->close > s->ema_fast && s->rsi >= f->pullback_rsi_long_min &&
                  aiq_macd_sign_ok(s, req, true) && g.btc_ok_long;
        bool sh = g.bearish_alignment && p->close >= p->ema_fast && s->close < s->ema_fast && s->rsi <= f->pullback_rsi_short_max &&
                  aiq_macd_sign_ok(s, req, false) && g.btc_ok_short;
        if (lg || sh) {
            signal = lg ? AIQ_SIG_BUY : AIQ_SIG_SELL;
            conf = aiq_u(f->pullback_confidence);
        }
    }
    if (signal == AIQ_SIG_NEUTRAL && aiq_b(f->enable_slow_drift_entries) && s->adx >= f->slow_drift_min_adx && !g.is_anomaly) {
        double slope = s->ema_slow_slope_pct;
        bool req = aiq_b(f->slow_drift_require_macd_sign);
        bool lg = slope >= f->slow_drift_min_slope_pct && s->close > s->ema_slow && s->rsi >= f->slow_drift_rsi_long_min &&
                  aiq_macd_sign_ok(s, req, true) && g.btc_ok_long;
        bool sh = slope <= -f->slow_drift_min_slope_pct && s->close < s->ema_slow && s->rsi <= f->slow_drift_rsi_short_max &&
                  aiq_macd_sign_ok(s, req, false) && g.btc_ok_short;
        if (lg || sh) {
            signal = lg ? AIQ_SIG_BUY : AIQ_SIG_SELL;
            conf = AIQ_CONF_LOW;
        }
    }
    if (aiq_b(f->reverse_entry_signal)) {
        if (signal == AIQ_SIG_BUY) signal = AIQ_SIG_SELL;
        else if (signal == AIQ_SIG_SELL) signal = AIQ_SIG_BUY;
    }
    *confidence = conf;
    return signal;
}

// ema_cross.rs analyze
AIQ_HD inline uint32_t aiq_ema_cross(const AiqSnap* s, const AiqSnap* p) {
    if (!(aiq_isfinite(s->ema_fast) && aiq_isfinite(s->ema_slow) && aiq_isfinite(p->ema_fast) && aiq_isfinite(p->ema_slow)))
        return AIQ_SIG_NEUTRAL;
    if (p->ema_fast <= p->ema_slow && s->ema_fast > s->ema_slow) return AIQ_SIG_BUY;
    if (p->ema_fast >= p->ema_slow && s->ema_fast < s->ema_slow) return AIQ_SIG_SELL;
    return AIQ_SIG_NEUTRAL;
}

// ---- sizing.rs ----------------------------------------------------------------------------------------
AIQ_HD inline double aiq_tier_leverage(const AiqParams* t, uint32_t conf) {
    return conf == AIQ_CONF_LOW ? t->leverage_low : conf == AIQ_CONF_MEDIUM ? t->leverage_medium : t->leverage_high;
}
AIQ_HD inline double aiq_confidence_mult(const AiqParams* t, uint32_t conf) {
    return conf == AIQ_CONF_LOW ? t->confidence_mult_low : conf == AIQ_CONF_MEDIUM ? t->confidence_mult_medium : t->confidence_mult_high;
}
AIQ_HD inline double aiq_entry_margin(const AiqParams* t, const AiqSnap* s, uint32_t conf, double equity) {
    double k = 1.0;
    if (aiq_b(t->enable_dynamic_sizing)) {
        double atr_eff = aiq_max(s->atr, s->close * t->min_atr_pct);
        double adx_scalar = aiq_clamp(s->adx / t->adx_sizing_full_adx, t->adx_sizing_min_mult, 1.0);
        double atr_pct = atr_eff / s->close;
        double vol_scalar = atr_pct > 0.0 ? aiq_clamp(t->vol_baseline_pct / atr_pct, t->vol_scalar_min, t->vol_scalar_max) : t->vol_scalar_max;
        k = aiq_confidence_mult(t, conf) * adx_scalar * vol_scalar;
    }
    return aiq_max(equity * t->allocation_pct * t->size_multiplier * k, 0.0);
}
AIQ_HD inline double aiq_pesc_cooldown_minutes(double adx, double min_mins, double max_mins) {
    if (adx >= 40.0) return min_mins;
    if (adx <= 25.0) return max_mins;
    return max_mins + (adx - 25.0) / 15.0 * (min_mins - max_mins);
}

// ---- kernel.rs: entries ------------------------------------------------------------------------------
// Kernel::try_open; returns -1 when it opened, else the block reason.
AIQ_HD inline int aiq_try_open(AiqCtx* c, uint32_t s, uint32_t side, uint32_t conf, int64_t now) {
    const AiqParams* t = aiq_cfg(c, s);
    AiqSymState* y = &c->st[s];
    AiqSnap sn;
    if (!aiq_cur(c, s, &sn)) return AIQ_RC_NOT_READY;
    if (conf < aiq_u(t->entry_min_confidence)) return AIQ_RC_LOW_CONFIDENCE;
    if (aiq_b(t->enable_reef_filter)) {
        bool extreme = sn.adx >= t->reef_adx_threshold;
        bool blocked = side == AIQ_LONG ? sn.rsi > (extreme ? t->reef_long_rsi_extreme_gt : t->reef_long_rsi_block_gt)
                                        : sn.rsi < (extreme ? t->reef_short_rsi_extreme_lt : t->reef_short_rsi_block_lt);
        if (blocked) return AIQ_RC_REEF;
    }
    if (aiq_b(t->enable_ssf_filter)) {
        bool blocked = side == AIQ_LONG ? sn.macd_hist < 0.0 : sn.macd_hist > 0.0;
        if (blocked) return AIQ_RC_SSF;
    }
    if (y->has_last_entry && (double)(now - y->last_entry_ms) < t->entry_cooldown_s * 1000.0) return AIQ_RC_ENTRY_COOLDOWN;
    if (y->has_last_close && y->last_close_side == side && y->last_close_reason != AIQ_RC_SIGNAL_FLIP) {
        double mins = aiq_pesc_cooldown_minutes(sn.adx, t->reentry_cooldown_min_mins, t->reentry_cooldown_max_mins);
        if ((double)(now - y->last_close_ms) < mins * 60000.0) return AIQ_RC_PESC;
    }
    if (c->n_pos >= aiq_u(t->max_open_positions)) return AIQ_RC_MAX_POSITIONS;
    double equity = aiq_equity(c);
    double headroom = equity * t->max_total_margin_pct - aiq_used_margin(c);
    double leverage = aiq_tier_leverage(t, conf);
    double margin = aiq_min(aiq_entry_margin(t, &sn, conf, equity), headroom);
    if (margin <= 0.0) return AIQ_RC_MARGIN_CAP;
    if (margin * leverage < t->min_notional_usd) {
        double needed = t->min_notional_usd / leverage;
        if (aiq_b(t->bump_to_min_notional) && needed <= headroom) {
            margin = needed;
        } else {
            return AIQ_RC_MIN_NOTIONAL;
        }
    }
    aiq_execute_open(c, s, side, margin * leverage, leverage, conf, sn.close, now, AIQ_EV_OPEN);
    return -1;
}

// Kernel::try_pyramid
AIQ_HD inline void aiq_try_pyramid(AiqCtx* c, uint32_t s, uint32_t conf, double px, int64_t now) {
    const AiqParams* t = aiq_cfg(c, s);
    AiqSymState* y = &c->st[s];
    AiqSnap sn;
    if (!y->has_pos || !aiq_cur(c, s, &sn)) return;
    if (!aiq_b(t->enable_pyramiding) || y->adds_count >= aiq_u(t->max_adds_per_symbol) || conf < aiq_u(t->add_min_confidence)) return;
    if ((double)(now - y->last_add_ms) < t->add_cooldown_minutes * 60000.0) return;
    double min_profit = t->add_min_profit_atr;
    bool rsi_extreme = y->side == AIQ_LONG ? sn.rsi > 65.0 : sn.rsi < 35.0;
    if (sn.adx_slope > 0.75 && sn.atr_slope <= 0.0 && !rsi_extreme) min_profit *= 0.5;
    if (aiq_profit_atr(y, px) < min_profit) return;
    double leverage = y->leverage;
    uint32_t side = y->side;
    double equity = aiq_equity(c);
    double headroom = equity * t->max_total_margin_pct - aiq_used_margin(c);
    double margin = aiq_min(equity * t->allocation_pct * t->add_fraction_of_base_margin * t->size_multiplier, headroom);
    if (margin <= 0.0) return;
    if (margin * leverage < t->min_notional_usd) {
        double needed = t->min_notional_usd / leverage;
        if (aiq_b(t->bump_to_min_notional) && needed <= headroom) {
            margin = needed;
        } else {
            return;
        }
    }
    aiq_execute_open(c, s, side, margin * leverage, leverage, conf, px, now, AIQ_EV_ADD);
}

// Kernel::ema_cross_step
AIQ_HD inline void aiq_ema_cross_step(AiqCtx* c, uint32_t s, uint32_t signal, double px, int64_t now) {
    bool has = c->st[s].has_pos != 0;
    if (signal == AIQ_SIG_BUY && !has) {
        double equity = aiq_equity(c);
        const AiqParams* t = aiq_cfg(c, s);
        double notional = equity * t->allocation_pct * t->leverage;
        aiq_execute_open(c, s, AIQ_LONG, notional, t->leverage, AIQ_CONF_MEDIUM, px, now, AIQ_EV_OPEN);
    } else if (signal == AIQ_SIG_SELL && has) {
        aiq_close_position(c, s, 1.0, px, now, AIQ_RC_EMA_CROSS_DOWN, AIQ_EV_CLOSE);
    }
}

// regime.rs
AIQ_HD inline bool aiq_regime_any(const AiqParams* r) {
    return aiq_b(r->enable_auto_reverse) || aiq_b(r->enable_regime_filter) || aiq_b(r->enable_regime_gate);
}
// regime_action: returns -1 to enter (side updated), else the block reason.
AIQ_HD inline int aiq_regime_action(uint32_t* side, bool has_breadth, double b, const AiqParams* r, const AiqSnap* btc) {
    if (has_breadth && aiq_b(r->enable_auto_reverse)) {
        if (r->auto_reverse_breadth_low <= b && b <= r->auto_reverse_breadth_high) *side = aiq_opposite(*side);
    }
    if (has_breadth && aiq_b(r->enable_regime_filter)) {
        if (*side == AIQ_LONG && b < r->breadth_block_long_below) return AIQ_RC_BREADTH_LONG;
        if (*side == AIQ_SHORT && b > r->breadth_block_short_above) return AIQ_RC_BREADTH_SHORT;
    }
    if (aiq_b(r->enable_regime_gate)) {
        if (has_breadth && btc && btc->ready) {
            double atr_frac = btc->close > 0.0 ? btc->atr / btc->close : 0.0;
            bool chop = r->regime_gate_breadth_low <= b && b <= r->regime_gate_breadth_high;
            if (chop && (btc->adx < r->regime_gate_btc_adx_min || atr_frac < r->regime_gate_btc_atr_pct_min)) return AIQ_RC_REGIME_GATE;
        } else if (!aiq_b(r->regime_gate_fail_open)) {
            return AIQ_RC_REGIME_GATE_NO_DATA;
        }
    }
    return -1;
}

AIQ_HD inline void aiq_block(AiqCtx* c, uint32_t s, uint32_t side, uint32_t code, int64_t now) {
    aiq_log(c, now, s, AIQ_EV_BLOCK, side, code, 0.0, 0.0, 0.0, 0.0);
}

// Kernel::evaluate_inner: exits (when `exits`), then ranked entries, for every dirty symbol.
AIQ_HD inline void aiq_evaluate(AiqCtx* c, int64_t now, bool exits) {
    const AiqSweepArgs* a = c->a;
    uint32_t n = a->n_symbols;
    int btc_bullish = -1;
    if (a->btc_symbol < n) {
        AiqSnap b;
        if (aiq_cur(c, a->btc_symbol, &b) && b.ready) btc_bullish = b.ema_fast > b.ema_slow ? 1 : 0;
    }
    uint32_t n_cand = 0;
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t s = a->name_order[i];
        AiqSymState* y = &c->st[s];
        if (!y->dirty) continue;
        y->dirty = 0;
        const AiqParams* cfg = aiq_cfg(c, s);
        uint32_t strategy = aiq_u(cfg->strategy);
        bool allow_reverse = aiq_b(cfg->allow_reverse);
        AiqSnap sn;
        if (!aiq_cur(c, s, &sn)) continue;
        double px = sn.close, adx = sn.adx;
        const AiqSnap* prev = aiq_snap_at(c, s, 1);
        if (!prev) continue;
        if (exits) aiq_run_exits(c, s, px, now);
        uint32_t conf = AIQ_CONF_MEDIUM;
        uint32_t signal;
        if (strategy == AIQ_STRAT_EMA_CROSS) {
            signal = aiq_ema_cross(&sn, prev);
            aiq_ema_cross_step(c, s, signal, px, now);
            continue;
        }
        signal = aiq_analyze(&sn, prev, cfg, s == a->btc_symbol, btc_bullish, &conf);
        if (signal == AIQ_SIG_NEUTRAL) continue;
        uint32_t side = signal == AIQ_SIG_BUY ? AIQ_LONG : AIQ_SHORT;
        double score = (double)conf * 100.0 + adx;
        bool push = false;
        if (y->has_pos && y->side == side) {
            aiq_try_pyramid(c, s, conf, px, now);
        } else if (y->has_pos) {
            aiq_close_position(c, s, 1.0, px, now, AIQ_RC_SIGNAL_FLIP, allow_reverse ? AIQ_EV_REVERSE : AIQ_EV_CLOSE);
            push = allow_reverse;
        } else {
            push = true;
        }
        if (push) {
            // Insertion keeps the order stable: score descending (total order), then name order.
            AiqCand cd;
            cd.score = score;
            cd.symbol = s;
            cd.side = side;
            cd.confidence = conf;
            cd._pad = 0;
            int64_t key = aiq_total_key(score);
            uint32_t j = n_cand;
            while (j > 0 && aiq_total_key(c->cands[j - 1].score) < key) {
                c->cands[j] = c->cands[j - 1];
                --j;
            }
            c->cands[j] = cd;
            n_cand += 1;
        }
    }
    if (n_cand == 0) return;
    uint32_t max_orders = aiq_u(aiq_base_cfg(c)->max_entry_orders_per_loop);
    uint32_t executed = 0;
    // regime_breadth: share of ready snapshots with fast EMA above slow (only read when a rule is on).
    bool has_breadth = false;
    double breadth = 0.0;
    bool breadth_done = false;
    for (uint32_t k = 0; k < n_cand; ++k) {
        AiqCand cd = c->cands[k];
        const AiqParams* cfg = aiq_cfg(c, cd.symbol);
        if (aiq_regime_any(cfg)) {
            if (!breadth_done) {
                uint32_t ready = 0, bullish = 0;
                for (uint32_t s = 0; s < n; ++s) {
                    AiqSnap b;
                    if (aiq_cur(c, s, &b) && b.ready) {
                        ready += 1;
                        bullish += b.ema_fast > b.ema_slow ? 1 : 0;
                    }
                }
                has_breadth = ready > 0;
                if (has_breadth) breadth = 100.0 * (double)bullish / (double)ready;
                breadth_done = true;
            }
            AiqSnap bs;
            const AiqSnap* btc = 0;
            if (a->btc_symbol < n && aiq_cur(c, a->btc_symbol, &bs)) btc = &bs;
            int code = aiq_regime_action(&cd.side, has_breadth, breadth, cfg, btc);
            if (code >= 0) {
                aiq_block(c, cd.symbol, cd.side, (uint32_t)code, now);
                continue;
            }
        }
        if (executed >= max_orders) {
            aiq_block(c, cd.symbol, cd.side, AIQ_RC_MAX_POSITIONS, now);
            continue;
        }
        int code = aiq_try_open(c, cd.symbol, cd.side, cd.confidence, now);
        if (code < 0) {
            executed += 1;
        } else {
            aiq_block(c, cd.symbol, cd.side, (uint32_t)code, now);
        }
    }
}

// Kernel::on_funding + sim.rs apply_funding (only called for a symbol holding a position at px > 0).
AIQ_HD inline bool aiq_funding(AiqCtx* c, uint32_t s, double rate, double px) {
    if (!aiq_isfinite(rate) || !aiq_isfinite(px) || px <= 0.0) return false;
    AiqSymState* y = &c->st[s];
    if (!aiq_b(aiq_cfg(c, s)->enable_funding)) {
        if (y->trip_open) y->trip_funding += 0.0;
        return true;
    }
    double payment = -aiq_sign(y->side) * y->qty * px * rate;
    c->cash += payment;
    c->funding += payment;
    if (y->trip_open) y->trip_funding += payment;
    return true;
}

// sim.rs apply_funding: funding event `f` on its symbol when that holds a position with a price.
AIQ_HD inline bool aiq_book_funding(AiqCtx* c, uint32_t f) {
    const AiqSweepArgs* a = c->a;
    uint32_t s = a->fund_symbol[f];
    if (c->st[s].last_px > 0.0 && c->st[s].has_pos) return aiq_funding(c, s, a->fund_rate[f], c->st[s].last_px);
    return true;
}

// metrics.rs EquityStats::push
AIQ_HD inline void aiq_stats_push(AiqResult* r, double eq) {
    double rr = r->eq_last != 0.0 ? eq / r->eq_last - 1.0 : 0.0;
    r->eq_n += 1;
    double d = rr - r->eq_mean;
    r->eq_mean += d / (double)r->eq_n;
    r->eq_m2 += d * (rr - r->eq_mean);
    if (rr < 0.0) r->eq_down_sq += rr * rr;
    r->eq_last = eq;
    if (eq > r->eq_peak) r->eq_peak = eq;
    double dd = r->eq_peak - eq;
    if (dd > r->max_dd_usd) r->max_dd_usd = dd;
    if (r->eq_peak > 0.0 && dd / r->eq_peak > r->max_dd_frac) r->max_dd_frac = dd / r->eq_peak;
}

// sim.rs run_src over the whole timeline for one combo, reduced as sweep.rs run_config does.
AIQ_HD inline void aiq_run_combo(const AiqSweepArgs* a, uint32_t combo) {
    uint32_t local = combo - a->result_base;
    AiqResult* r = &a->results[local];
    AiqResult zero = {};
    *r = zero;
    if (a->abi != AIQ_CORE_ABI) {
        r->status = AIQ_ERR_ABI;
        return;
    }
    uint32_t n = a->n_symbols;
    AiqCtx c;
    c.a = a;
    c.combo = combo;
    c.local = local;
    c.st = (AiqSymState*)(a->scratch + (uint64_t)local * a->scratch_stride);
    c.cands = (AiqCand*)(c.st + n);
    c.r = r;
    c.cash = a->initial_balance;
    c.realized = 0.0;
    c.fees = 0.0;
    c.funding = 0.0;
    c.n_pos = 0;
    AiqSymState zs = {};
    for (uint32_t s = 0; s < n; ++s) c.st[s] = zs;
    if (a->event_counts) a->event_counts[local] = 0;
    r->eq_last = a->initial_balance;
    r->eq_peak = a->initial_balance;

    uint32_t sub_j = 0;
    bool has_last_eval = false;
    int64_t last_eval = 0;
    uint32_t fcur = 0;
    for (uint32_t k = 0; k < a->n_times; ++k) {
        int64_t t = a->times[k];
        int64_t t_close = t + a->interval_ms;
        uint32_t fb = a->fund_start[k + 1];
        if (a->fund_start[k] > fcur) fcur = a->fund_start[k];
        // Sub-bar ticks of (last decision, t_close).
        while (sub_j < a->n_sub_ticks && a->sub_times[sub_j] < t_close) {
            int64_t tau = a->sub_times[sub_j];
            if (has_last_eval && tau > last_eval) {
                uint32_t i0 = a->sub_start[sub_j], i1 = a->sub_start[sub_j + 1];
                while (fcur < fb && a->fund_time[fcur] <= tau) {
                    if (!aiq_book_funding(&c, fcur)) {
                        r->status = AIQ_ERR_FUNDING;
                        return;
                    }
                    fcur += 1;
                }
                // Exit sub-bars: Kernel::on_mid for symbols holding a position.
                for (uint32_t i = i0; i < i1; ++i) {
                    double px = a->sub_exit_px[i];
                    if (aiq_isnan(px)) continue;
                    uint32_t s = a->sub_symbol[i];
                    c.st[s].last_px = px;
                    if (!c.st[s].has_pos) continue;
                    if (!aiq_isfinite(px) || px <= 0.0) {
                        r->status = AIQ_ERR_SUB_PRICE;
                        return;
                    }
                    c.st[s].last_price = px;
                    aiq_check_liquidation(&c, s, px, tau);
                    aiq_run_exits(&c, s, px, tau);
                }
                // Entry sub-bars: Kernel::evaluate_sub_bar.
                bool any = false;
                for (uint32_t i = i0; i < i1; ++i) {
                    double px = a->sub_entry_px[i];
                    if (aiq_isnan(px)) continue;
                    if (!aiq_isfinite(px) || px <= 0.0) {
                        r->status = AIQ_ERR_SUB_PRICE;
                        return;
                    }
                    any = true;
                }
                if (any) {
                    for (uint32_t i = i0; i < i1; ++i) {
                        double px = a->sub_entry_px[i];
                        if (aiq_isnan(px)) continue;
                        uint32_t s = a->sub_symbol[i];
                        c.st[s].last_px = px;
                        if (c.st[s].bars_seen == 0) continue;
                        c.st[s].has_snap_override = 1;
                        c.st[s].close_override = px;
                        c.st[s].last_price = px;
                        c.st[s].dirty = 1;
                    }
                    aiq_evaluate(&c, tau, false);
                    for (uint32_t s = 0; s < n; ++s) c.st[s].has_snap_override = 0;
                }
                r->sub_ticks += 1;
            }
            sub_j += 1;
        }
        uint32_t i0 = a->step_start[k], i1 = a->step_start[k + 1];
        uint32_t stepped = 0;
        for (uint32_t i = i0; i < i1; ++i) {
            uint32_t s = a->step_symbol[i];
            AiqSymState* y = &c.st[s];
            y->bars_seen += 1;
            const AiqSnap* sn = aiq_snap_at(&c, s, 0);
            y->last_price = sn->close;
            y->dirty = 1;
            if (y->has_pos) {
                double worst = y->side == AIQ_LONG ? sn->low : sn->high;
                aiq_check_liquidation(&c, s, worst, sn->t);
            }
            y->last_px = sn->close;
            stepped += 1;
        }
        if (stepped == 0) continue;
        r->bars += stepped;
        while (fcur < fb) {
            if (!aiq_book_funding(&c, fcur)) {
                r->status = AIQ_ERR_FUNDING;
                return;
            }
            fcur += 1;
        }
        aiq_evaluate(&c, t_close, true);
        has_last_eval = true;
        last_eval = t_close;
        r->steps += 1;
        aiq_stats_push(r, aiq_equity(&c));
    }
    r->final_equity = aiq_equity(&c);
    r->cash = c.cash;
    r->fees = c.fees;
    r->funding = c.funding;
    r->realized = c.realized;
    r->open_positions = c.n_pos;
}
